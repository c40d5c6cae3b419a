"""What a service raises when a stage does not run or stops: the app's worker records the
job as failed with it, and the page shows it."""

from __future__ import annotations

from typing import Any


class StageRefused(Exception):
    """A stage refused to run (nothing to work on, a bad setting) or stopped (the LLM
    failed). ``title`` says what happened ("Cannot generate", "Generation stopped"),
    ``reason`` why, both plain text (empty ``reason``: the title says it all); ``detail``
    holds plain values the page shows with it (an ingest's bad records as ``errors``)."""

    def __init__(self, title: str, reason: str = "", **detail: Any) -> None:
        super().__init__(f"{title}: {reason}" if reason else title)
        self.title = title
        self.reason = reason
        self.detail = detail

    def as_result(self) -> dict[str, Any]:
        """The refusal as a job's result (JSON values): ``refused`` and the detail."""
        return {"refused": {"title": self.title, "reason": self.reason}, **self.detail}
