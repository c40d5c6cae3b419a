"""Handlers of the Annotate tab: plain values in, plain values out (no gradio here).

Every action returns an ``AnnotationPage``: the query to show next and what to put in each
component. Passages are chosen by their external id (what the annotator sees).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from curator.services.annotate import (
    JudgmentError,
    QueryView,
    next_query,
    query_view,
    record_judgment,
    undo_last,
)
from db import Database

CANDIDATE_COLUMNS = [
    "fused",
    "passage",
    "proposed",
    "guide score",
    "guide rank",
    "BM25 rank",
    "QL rank",
    "RC rank",
    "seed",
    "text",
]


@dataclass
class AnnotationPage:
    """What the Annotate tab shows."""

    query_id: int | None
    header: str  # Markdown, escaped
    task: str = ""
    query: str = ""
    seed_text: str = ""
    rows: list[list] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    message: str = ""  # Markdown, escaped


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _page(view: QueryView | None, message: str = "") -> AnnotationPage:
    if view is None:
        return AnnotationPage(
            None,
            "**The queue is empty.** Choose another queue, or "
            "generate, mine and rerank more queries on the Pipeline tab.",
            message=message,
        )
    seed = next((c for c in view.candidates if c.is_seed), None)
    confidence = "" if view.confidence is None else f" · confidence {view.confidence:.2f}"
    changed = " · **proposed positive differs from the seed**" if view.positive_changed else ""
    rows = [
        [
            _cell(c.fused_rank),
            c.external_id,
            f"{c.proposed} ({c.provenance})" if c.proposed else "",
            _cell(c.guide_score),
            _cell(c.guide_rank),
            _cell(c.bm25_rank),
            _cell(c.ql_rank),
            _cell(c.rc_rank),
            "seed" if c.is_seed else "",
            f"{c.title}: {c.text}" if c.title else c.text,
        ]
        for c in view.candidates
    ]
    return AnnotationPage(
        query_id=view.query_id,
        header=f"Query #{view.query_id}{confidence}{changed}",
        task=view.task,
        query=view.query,
        seed_text=(
            f"{seed.title}\n\n{seed.text}" if seed and seed.title else seed.text if seed else ""
        ),
        rows=rows,
        choices=[c.external_id for c in view.candidates],
        message=message,
    )


def show(
    database: Database,
    project: str,
    annotator: str,
    queue: str,
    after: int | None = None,
    message: str = "",
) -> AnnotationPage:
    """The next query in ``queue`` for ``annotator`` (after query ``after``)."""
    try:
        query_id = next_query(database, project, annotator, queue, after=after)
    except (JudgmentError, LookupError) as exc:
        return AnnotationPage(None, "", message=f"**{html.escape(str(exc))}**")
    return _page(query_view(database, query_id) if query_id else None, message)


def _ids(database: Database, query_id: int, external_ids: list[str] | None) -> list[int]:
    by_external = {c.external_id: c.passage_id for c in query_view(database, query_id).candidates}
    return [by_external[e] for e in external_ids or [] if e in by_external]


def act(
    database: Database,
    project: str,
    annotator: str,
    queue: str,
    query_id: int | None,
    action: str,
    *,
    edited_query: str = "",
    positives: list[str] | None = None,
    negatives: list[str] | None = None,
    false_negatives: list[str] | None = None,
    reject_reason: str = "unanswerable",
) -> AnnotationPage:
    """Apply ``action`` (accept, override, reject, skip, undo) and show what comes next.

    After accept / override / reject / skip the next query of the queue is shown; after
    undo, the query whose judgment was taken back. A refused action leaves the page on the
    same query with the reason.
    """
    if action == "undo":
        try:
            undone = undo_last(database, annotator, project=project)
        except JudgmentError as exc:
            return show(database, project, annotator, queue, message=f"**{html.escape(str(exc))}**")
        if undone is None:
            return show(database, project, annotator, queue, message="Nothing to undo.")
        from db.models import Judgment

        with database.sessions() as session:
            target = session.get(Judgment, undone).query_id
        return _page(query_view(database, target), f"Judgment #{undone} undone.")
    if query_id is None:
        return show(database, project, annotator, queue)
    if action == "skip":
        return show(database, project, annotator, queue, after=query_id, message="Skipped.")
    try:
        judgment = record_judgment(
            database,
            query_id,
            annotator,
            action,
            positives=_ids(database, query_id, positives),
            negatives=_ids(database, query_id, negatives),
            false_negatives=_ids(database, query_id, false_negatives),
            edited_query=edited_query,
            reject_reason=reject_reason if action == "reject" else None,
        )
    except JudgmentError as exc:
        return _page(query_view(database, query_id), f"**Not saved:** {html.escape(str(exc))}")
    # queues that do not drop a judged query by themselves move past it
    after = None if queue in ("not_judged", "fewer_than_n") else query_id
    return show(
        database,
        project,
        annotator,
        queue,
        after=after,
        message=f"Saved judgment #{judgment} ({action}) on query #{query_id}.",
    )


def agreement_tables(database: Database, project: str) -> tuple[str, list[list], list[list]]:
    """(summary Markdown, per-annotator rows, annotator-pair rows) for the Agreement tab."""
    from curator.services.annotate import agreement_report

    report = agreement_report(database, project)

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    summary = (
        f"Krippendorff's alpha (nominal; a judgment = reject or its set of positives): "
        f"**{number(report.alpha)}** over {report.queries_with_several} queries judged by "
        f"several annotators. The LLM's proposed positive was kept in "
        f"**{number(report.llm_accepted)}** of the judgments on reranked queries."
    )
    # Dataframe cells render as text, so names go in as they are (no HTML escaping)
    people = [
        [name, judged, with_llm, number(rate)] for name, judged, with_llm, rate in report.annotators
    ]
    pairs = [[a, b, number(kappa), shared] for a, b, kappa, shared in report.pairs]
    return summary, people, pairs
