"""What a pipeline button shows for a stage's outcome: the plain results of
``curator.services.app_stages`` (the worker stores them with the job) and their refusals
(:class:`curator.services.errors.StageRefused`) as Markdown, every value escaped. No
gradio here."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from curator.services.errors import StageRefused


def refusal_markdown(title: str, reason: str = "") -> str:
    """``**title:** reason`` (``**title**`` alone without a reason), escaped."""
    if not reason:
        return f"**{html.escape(title)}**"
    return f"**{html.escape(title)}:** {html.escape(reason)}"


def summary_markdown(result: dict[str, Any]) -> str:
    """A stage's one-line summary (generate, rerank, ingest), escaped."""
    return html.escape(result.get("summary") or result.get("status", "done"))


def mining_markdown(result: dict[str, Any]) -> str:
    """The mining summary and the false-negative guard's effect on every mined query."""
    guard = result["guard"]
    dropped = ", ".join(f"{n} by {reason}" for reason, n in sorted(guard["dropped"].items()))
    return "\n\n".join(
        [
            html.escape(result["summary"]),
            f"False-negative guard on all {guard['queries']} mined queries: "
            f"{guard['kept']} of {guard['candidates']} candidates admissible as negatives "
            f"(dropped: {html.escape(dropped or 'none')}); "
            f"{guard['queries_without_negative']} queries without an admissible negative.",
        ]
    )


def export_markdown(result: dict[str, Any]) -> str:
    """The export's summary, its counts and rows, and the folder kept on the server."""
    counts = result["counts"]
    rows = ", ".join(f"{html.escape(str(k))}: {v:,}" for k, v in result["rows"].items())
    score = result.get("score_source")
    teacher = (
        f"; teacher scores: {html.escape(str(score))} (for margin and FlagEmbedding)"
        if score
        else ""
    )
    return (
        f"{html.escape(result['summary'])}\n\n"
        f"**{counts['examples']:,}** queries ({counts['train']:,} train, "
        f"{counts['eval']:,} test); rows {rows}{teacher}"
        f"\n\nSaved on the server in `{html.escape(result['folder'])}`."
    )


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "mine": mining_markdown,
    "export": export_markdown,
}


def result_markdown(kind: str, result: dict[str, Any]) -> str:
    """What the button of a ``kind`` job shows for its result. A job stored by an older
    version carries its Markdown already."""
    if "markdown" in result:
        return result["markdown"]
    return FORMATS.get(kind, summary_markdown)(result)


def stage_markdown(kind: str, stage: Callable[..., dict[str, Any]], *args, **kwargs) -> str:
    """Run ``stage(*args, **kwargs)`` here and return its result's Markdown, or the
    refusal's."""
    try:
        result = stage(*args, **kwargs)
    except StageRefused as refusal:
        return refusal_markdown(refusal.title, refusal.reason)
    return result_markdown(kind, result)
