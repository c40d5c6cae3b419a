"""Handlers of the Annotate tab: plain values in, plain values out (no gradio here).

Every action returns an ``AnnotationPage``: the query to show next, its candidates as card
rows (``card_html`` renders them, escaped) and the queue position. Passages are named by
their external id (what the annotator sees); the marks the page sends are checked against
the query shown, so marks left from another card are refused, never stored.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from curator.services import Database
from curator.services.annotate import (
    CandidateView,
    JudgmentError,
    QueryView,
    judgment_query_id,
    next_query,
    query_view,
    queue_position,
    record_judgment,
    undo_last,
)

MARKS = ("positive", "negative", "false_negative")
MARK_LABELS = {"positive": "pos", "negative": "neg", "false_negative": "false neg", "": "·"}
KEYED_ROWS = 10  # rows 1..9 and 0 take digit keys


@dataclass
class CardRow:
    """One candidate on the card, in the order shown (the seed first, then the proposed
    passages, then the rest by fused rank)."""

    key: str  # "1".."9", "0" or ""
    external_id: str
    title: str
    text: str
    mark: str  # the pre-filled mark: the proposal ("positive", "negative") or ""
    proposed: str  # "positive (llm)" or ""
    scores: str  # compact: "fused 1 · guide 0.46 #3 · bm25 #8 · ql #1"
    is_seed: bool = False


@dataclass
class AnnotationPage:
    """What the Annotate tab shows."""

    query_id: int | None
    header: str  # Markdown, escaped
    task: str = ""
    query: str = ""
    rows: list[CardRow] = field(default_factory=list)
    left: int = 0
    total: int = 0
    message: str = ""  # Markdown, escaped

    @property
    def position(self) -> str:
        """ "N of M left in this queue" (Markdown)."""
        if self.query_id is None:
            return f"0 of {self.total} left in this queue"
        return f"**{self.left} of {self.total}** left in this queue"

    @property
    def choices(self) -> list[str]:
        return [r.external_id for r in self.rows]


def _scores(c: CandidateView) -> str:
    parts = []
    if c.fused_rank is not None:
        parts.append(f"fused #{c.fused_rank}")
    if c.guide_score is not None:
        rank = f" #{c.guide_rank}" if c.guide_rank is not None else ""
        parts.append(f"guide {c.guide_score:.2f}{rank}")
    for name, rank in (("bm25", c.bm25_rank), ("ql", c.ql_rank), ("rc", c.rc_rank)):
        if rank is not None:
            parts.append(f"{name} #{rank}")
    return " · ".join(parts)


def card_rows(view: QueryView) -> list[CardRow]:
    """The candidates as card rows: the seed first, then the proposed passages, then the
    others (each group by fused rank); the first ten get the keys 1..9, 0."""
    ordered = sorted(
        view.candidates,
        key=lambda c: 0 if c.is_seed else 1 if c.proposed else 2,
    )  # stable: keeps the view's fused order within each group
    rows = []
    for index, c in enumerate(ordered):
        key = str((index + 1) % 10) if index < KEYED_ROWS else ""
        rows.append(
            CardRow(
                key=key,
                external_id=c.external_id,
                title=c.title or "",
                text=c.text,
                mark=c.proposed if c.proposed in MARKS else "",
                proposed=f"{c.proposed} ({c.provenance})" if c.proposed else "",
                scores=_scores(c),
                is_seed=c.is_seed,
            )
        )
    return rows


def card_html(page: AnnotationPage) -> str:
    """The card's candidate rows as HTML: every value from the corpus or the database is
    escaped; each row carries its passage id (``data-pid``) and mark (``data-mark``), which
    the page's script changes on key presses and clicks and reads back on save."""
    if page.query_id is None:
        return '<div class="cc-card cc-empty" data-query=""></div>'
    esc = html.escape
    body = []
    for row in page.rows:
        badges = []
        if row.is_seed:
            badges.append('<span class="cc-badge cc-seed">seed</span>')
        if row.proposed:
            badges.append(f'<span class="cc-badge cc-proposed">proposed {esc(row.proposed)}</span>')
        title = f"<b>{esc(row.title)}</b> " if row.title else ""
        body.append(
            f'<tr data-pid="{esc(row.external_id, quote=True)}" data-mark="{row.mark}"'
            f' data-key="{row.key}">'
            f'<td class="cc-key">{row.key}</td>'
            f'<td class="cc-markcell"><button type="button" class="cc-mark"'
            f' title="click to change the mark">{MARK_LABELS[row.mark]}</button></td>'
            f'<td class="cc-main"><div class="cc-meta"><span class="cc-pid">'
            f"{esc(row.external_id)}</span> {' '.join(badges)}"
            f' <span class="cc-scores">{esc(row.scores)}</span>'
            ' <button type="button" class="cc-edit" title="correct this passage\'s text: the'
            ' edit is kept with your judgment, the original stays">edit</button></div>'
            f'<div class="cc-text">{title}<span class="cc-body">{esc(row.text)}</span></div>'
            "</td></tr>"
        )
    return (
        f'<div class="cc-card" data-query="{page.query_id}">'
        f'<div class="cc-task"><b>Task:</b> {esc(page.task)}</div><div class="cc-scroll">'
        '<table class="cc-rows"><tbody>' + "".join(body) + "</tbody></table></div></div>"
    )


def _page(
    view: QueryView | None, message: str = "", position: tuple[int, int] = (0, 0)
) -> AnnotationPage:
    left, total = position
    if view is None:
        return AnnotationPage(
            None,
            "**The queue is empty.** Choose another queue, or "
            "generate, mine and rerank more queries on the Pipeline tab.",
            left=0,
            total=total,
            message=message,
        )
    confidence = "" if view.confidence is None else f" · confidence {view.confidence:.2f}"
    changed = " · **proposed positive differs from the seed**" if view.positive_changed else ""
    return AnnotationPage(
        query_id=view.query_id,
        header=f"Query #{view.query_id}{confidence}{changed}",
        task=view.task,
        query=view.query,
        rows=card_rows(view),
        left=left,
        total=total,
        message=message,
    )


def _shown(
    database: Database, project: str, annotator: str, queue: str, query_id: int, message: str
) -> AnnotationPage:
    position = queue_position(database, project, annotator, queue, query_id)
    return _page(query_view(database, query_id), message, position)


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
        if query_id is None:
            position = queue_position(database, project, annotator, queue, None)
            return _page(None, message, position)
        return _shown(database, project, annotator, queue, query_id, message)
    except (JudgmentError, LookupError) as exc:
        return AnnotationPage(None, "", message=f"**{html.escape(str(exc))}**")


def parse_marks(marks: str | None, query_id: int | None) -> dict:
    """The card's marks, ``{"query": id, "positive": [...], "negative": [...],
    "false_negative": [...], "edits": {passage id: text}}`` as JSON, as lists of passage
    ids per mark plus ``"edits"``: the passages whose text the annotator corrected.

    Raises JudgmentError when they belong to another query than ``query_id`` (a card
    replaced while a key press was on its way) or are not of that shape."""
    if not marks:
        return {**{m: [] for m in MARKS}, "edits": {}}
    try:
        data = json.loads(marks)
        if not isinstance(data, dict):
            raise TypeError
        marked = {m: [str(p) for p in data.get(m) or []] for m in MARKS}
        marked["edits"] = {str(p): str(t) for p, t in (data.get("edits") or {}).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise JudgmentError(f"the marks are not readable: {marks[:80]!r}") from exc
    if str(data.get("query")) != str(query_id):
        raise JudgmentError(
            f"the marks are for query #{data.get('query')}, not the query shown (#{query_id}); "
            "nothing saved, look again"
        )
    return marked


def _ids(view: QueryView, external_ids: list[str] | None) -> list[int]:
    """Passage ids of the query's candidates named by ``external_ids`` (a name that is not
    one of its candidates is refused, never dropped)."""
    by_external = {c.external_id: c.passage_id for c in view.candidates}
    unknown = [e for e in external_ids or [] if e not in by_external]
    if unknown:
        raise JudgmentError(f"{', '.join(unknown)} not among query #{view.query_id}'s candidates")
    return [by_external[e] for e in external_ids or []]


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
    marks: str | None = None,
    reject_reason: str = "unanswerable",
    edits: dict[str, str] | None = None,
) -> AnnotationPage:
    """Apply ``action`` (accept, override, reject, skip, undo) and show what comes next.

    An override saves the passages marked on the card (``marks``, the JSON the page
    sends; see ``parse_marks``) or the ``positives`` / ``negatives`` / ``false_negatives``
    given; marks that are exactly the proposal are stored as an accept. Passage texts the
    annotator corrected (``edits`` or the marks' ``"edits"``, by passage id) are kept with
    the judgment. After accept / override / reject / skip the next query of the queue is
    shown; after undo, the query whose judgment was taken back. A refused action leaves
    the page on the same query with the reason.
    """
    if action == "undo":
        return _undo(database, project, annotator, queue)
    if query_id is None:
        return show(database, project, annotator, queue)
    if action == "skip":
        return show(database, project, annotator, queue, after=query_id, message="Skipped.")
    try:
        named = {"positive": positives, "negative": negatives, "false_negative": false_negatives}
        named["edits"] = edits or {}
        if marks is not None and action in ("override", "accept"):
            parsed = parse_marks(marks, query_id)
            keep = MARKS if action == "override" else ("false_negative",)
            named.update({m: parsed[m] for m in keep}, edits=parsed["edits"])
        judgment, action = _record(
            database, query_id, annotator, action, named, edited_query, reject_reason
        )
    except JudgmentError as exc:
        message = f"**Not saved:** {html.escape(str(exc))}"
        return _shown(database, project, annotator, queue, query_id, message)
    # queues that do not drop a judged query by themselves move past it
    after = None if queue in ("not_judged", "fewer_than_n", "flagged") else query_id
    message = f"Saved judgment #{judgment} ({action}) on query #{query_id}."
    return show(database, project, annotator, queue, after=after, message=message)


def _undo(database: Database, project: str, annotator: str, queue: str) -> AnnotationPage:
    """Retract the annotator's last judgment in ``project`` and show its query again."""
    try:
        undone = undo_last(database, annotator, project=project)
    except JudgmentError as exc:
        return show(database, project, annotator, queue, message=f"**{html.escape(str(exc))}**")
    if undone is None:
        return show(database, project, annotator, queue, message="Nothing to undo.")
    target = judgment_query_id(database, undone)
    return _shown(database, project, annotator, queue, target, f"Judgment #{undone} undone.")


def _record(
    database: Database,
    query_id: int,
    annotator: str,
    action: str,
    named: dict,
    edited_query: str,
    reject_reason: str,
) -> tuple[int, str]:
    """Store ``action`` with the passages ``named`` by external id (``positive``,
    ``negative``, ``false_negative``, ``edits``); returns (judgment id, the action stored:
    an override equal to the proposal is an accept)."""
    view = query_view(database, query_id)
    ids = {
        "positives": _ids(view, named["positive"]),
        "negatives": _ids(view, named["negative"]),
        "false_negatives": _ids(view, named["false_negative"]),
    }
    edits = named.get("edits") or {}
    edited_texts = dict(zip(_ids(view, list(edits)), edits.values(), strict=True))
    marked = (set(ids["positives"]), set(ids["negatives"]))
    if action == "override" and not ids["false_negatives"]:
        action = "accept" if marked == tuple(map(set, view.proposal())) else action
    if action == "accept":  # the proposal is stored as it is, plus false negatives
        ids = {"false_negatives": ids["false_negatives"]}
    judgment = record_judgment(
        database,
        query_id,
        annotator,
        action,
        **ids,
        edited_query=edited_query,
        reject_reason=reject_reason if action == "reject" else None,
        edited_texts=edited_texts,
    )
    return judgment, action
