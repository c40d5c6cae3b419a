"""A ``curator.progress.Progress`` that drives a ``gr.Progress`` bar and writes the rate's
ETA into its text, so every long job in the app shows how long is left."""

from __future__ import annotations

import time


def eta_text(done: int, total: int | None, elapsed: float) -> str:
    """ "ETA 1:05" from the rate so far; "" before the first item or without a total."""
    if not total or done <= 0 or elapsed <= 0:
        return ""
    left = max(0.0, elapsed / done * (total - done))
    minutes, seconds = divmod(round(left), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"ETA {clock}"


class BarProgress:
    """Reports to ``bar`` (a ``gr.Progress``, or any callable taking
    ``(progress, desc=..., unit=...)``): ``(done, total)`` with "<desc> · ETA m:ss", or an
    indeterminate bar while the total is unknown."""

    def __init__(self, bar, unit: str = "steps", clock=time.monotonic) -> None:
        self._bar, self._unit, self._clock = bar, unit, clock
        self._start = clock()
        self._total: int | None = None
        self._done = self._base = 0
        self._desc = ""

    def start(self, total: int | None, unit: str, desc: str) -> None:
        self._start, self._total, self._done, self._desc = self._clock(), total, 0, desc
        self._base = 0
        self._unit = unit or self._unit
        self._report()

    def advance(self, amount: int) -> None:
        self._done += amount
        self._report()

    def update(self, done: int, total: int | None, desc: str) -> None:
        """Set the count directly (e.g. a training step of ``total``); the rate is taken
        from the first update on, so loading time before it does not count."""
        if self._total is None and total:
            self._start, self._base = self._clock(), done
        self._total, self._desc = total, desc
        self._done = done
        self._report()

    def finish(self) -> None:
        pass

    def _report(self) -> None:
        total = None if self._total is None else self._total - self._base
        eta = eta_text(self._done - self._base, total, self._clock() - self._start)
        desc = f"{self._desc} · {eta}" if eta else self._desc
        progress = (self._done, self._total) if self._total else None
        self._bar(progress, desc=desc, unit=self._unit)
