"""A small progress interface that services report to: tqdm in the CLI, gr.Progress in the app."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int | None, unit: str, desc: str) -> None: ...

    def advance(self, amount: int) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start(self, total: int | None, unit: str, desc: str) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


class TqdmProgress:
    """A tqdm bar on stderr with rate and ETA."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, total: int | None, unit: str, desc: str) -> None:
        from tqdm import tqdm

        self.finish()
        scale = unit == "B"
        self._bar = tqdm(
            total=total or None,
            unit=unit,
            desc=desc,
            unit_scale=scale,
            unit_divisor=1024,
            dynamic_ncols=True,
            leave=True,
        )

    def advance(self, amount: int) -> None:
        if self._bar is not None:
            self._bar.update(amount)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class CallbackProgress:
    """Reports ``(done, total, desc)`` to a callback, e.g. a ``gr.Progress`` in the app."""

    def __init__(self, callback) -> None:
        self._callback = callback
        self._total: int | None = None
        self._done = 0
        self._desc = ""
        self._unit = ""

    def start(self, total: int | None, unit: str, desc: str) -> None:
        self._total, self._done, self._desc, self._unit = total, 0, desc, unit
        self._callback(0, total, desc)

    def advance(self, amount: int) -> None:
        self._done += amount
        self._callback(self._done, self._total, self._desc)

    def finish(self) -> None:
        pass
