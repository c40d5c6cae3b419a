"""Annotation service: what an annotator sees for a query, and their judgments.

Judgments are append-only. Each one is self-contained: the passages it marks positive,
negative or false negative are stored with it (``judgment_passages``), also for an
*accept*, which copies the proposal the annotator saw. Undo appends a ``retract``
judgment naming the one it takes back; nothing is updated or deleted, so the history of
who decided what, and when, is complete.

The *effective* judgment of an annotator on a query is their latest judgment that is not
a retraction and has not been retracted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import case, exists, func, select
from sqlalchemy.orm import Session, aliased

from curator.services.projects import require_project
from db import Database
from db.limits import (
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PASSAGE_EDIT_CHARS,
    MAX_QUERY_CHARS,
    TextTooLong,
    check_length,
)
from db.models import (
    Annotator,
    Candidate,
    Decision,
    GeneratedQuery,
    JudgedLabel,
    Judgment,
    JudgmentPassage,
    LLMScore,
    Passage,
    ProposedLabel,
    Provenance,
    QueryFlag,
    QueryStatus,
)
from db.queries import get_or_raise, insert_or_ignore

REJECT_REASONS = ("unanswerable", "bad_query", "other")
QUEUE_FILTERS = (
    "not_judged",
    "positive_changed",
    "low_confidence",
    "fewer_than_n",
    "judged_by_me",
    "flagged",
    "all",
)


class JudgmentError(ValueError):
    """A judgment that cannot be stored as asked (the message says why)."""


@dataclass
class CandidateView:
    passage_id: int
    external_id: str
    title: str
    text: str
    guide_score: float | None
    guide_rank: int | None
    bm25_rank: int | None
    ql_rank: int | None = None
    rc_rank: int | None = None
    fused_rank: int | None = None
    proposed: str | None = None
    provenance: str | None = None
    is_seed: bool = False


@dataclass
class QueryView:
    """Everything the annotation page shows for one query (plain values)."""

    query_id: int
    task: str
    query: str
    seed_passage_id: int
    candidates: list[CandidateView] = field(default_factory=list)
    confidence: float | None = None
    positive_changed: bool = False

    def proposal(self) -> tuple[list[int], list[int]]:
        """(proposed positives, proposed negatives) as passage ids."""
        positives = [c.passage_id for c in self.candidates if c.proposed == "positive"]
        negatives = [c.passage_id for c in self.candidates if c.proposed == "negative"]
        return positives, negatives


def _check(what: str, value: str | None, limit: int) -> None:
    """A JudgmentError (which the app shows in one line) for a text over its limit."""
    try:
        check_length(what, value, limit)
    except TextTooLong as exc:
        raise JudgmentError(str(exc)) from None


def annotator_id(database: Database, username: str, display_name: str = "") -> int:
    """The id of annotator ``username``, created on first use."""
    name = (username or "").strip()
    if not name:
        raise JudgmentError("an annotator name is required")
    _check("the annotator name", name, MAX_NAME_CHARS)
    with database.sessions() as session, session.begin():
        found = session.scalar(select(Annotator.id).where(Annotator.username == name))
        if found is not None:
            return found
        # two first judgments under one new name at once: the second insert is skipped
        insert_or_ignore(
            session, Annotator, [{"username": name, "display_name": display_name or name}]
        )
        return session.scalar(select(Annotator.id).where(Annotator.username == name))


def _latest_proposals(session: Session, query_id: int) -> dict[int, tuple]:
    """passage -> (label, provenance, fused rank, confidence, differs from seed) from the
    newest run that proposed labels for the query (the reranker's after reranking, the
    miner's before)."""
    newest = session.scalar(
        select(func.max(ProposedLabel.run_id)).where(ProposedLabel.query_id == query_id)
    )
    if newest is None:
        return {}
    rows = session.execute(
        select(
            ProposedLabel.passage_id,
            ProposedLabel.label,
            ProposedLabel.provenance,
            ProposedLabel.fused_rank,
            ProposedLabel.confidence,
            ProposedLabel.differs_from_seed,
        ).where(ProposedLabel.query_id == query_id, ProposedLabel.run_id == newest)
    ).all()
    return {
        r.passage_id: (r.label, r.provenance, r.fused_rank, r.confidence, r.differs_from_seed)
        for r in rows
    }


def query_view(database: Database, query_id: int) -> QueryView:
    """The query, its seed, and its candidates with every score and the proposal."""
    with database.sessions() as session:
        query = get_or_raise(
            session, GeneratedQuery, query_id, JudgmentError(f"no query with id {query_id}")
        )
        view = QueryView(query.id, query.task, query.query, query.seed_passage_id)
        proposals = _latest_proposals(session, query_id)
        llm_ranks: dict[tuple[int, str], int | None] = {}
        for passage_id, method, rank in session.execute(
            select(LLMScore.passage_id, LLMScore.method, LLMScore.rank)
            .where(LLMScore.query_id == query_id)
            .order_by(LLMScore.id)
        ):
            llm_ranks[(passage_id, method)] = rank  # the newest setting wins
        rows = session.execute(
            select(
                Candidate.passage_id,
                Passage.external_id,
                Passage.title,
                Passage.text,
                Candidate.guide_score,
                Candidate.guide_rank,
                Candidate.bm25_rank,
            )
            .join(Passage, Passage.id == Candidate.passage_id)
            .where(Candidate.query_id == query_id)
        ).all()
        if not any(r.passage_id == query.seed_passage_id for r in rows):
            seed = session.get(Passage, query.seed_passage_id)
            rows.append((seed.id, seed.external_id, seed.title, seed.text, None, None, None))
    for passage_id, external_id, title, text, score, rank, bm25_rank in rows:
        label, provenance, fused_rank, confidence, changed = proposals.get(
            passage_id, (None, None, None, None, None)
        )
        if label == "positive":
            view.confidence, view.positive_changed = confidence, bool(changed)
        view.candidates.append(
            CandidateView(
                passage_id,
                external_id,
                title,
                text,
                score,
                rank,
                bm25_rank,
                ql_rank=llm_ranks.get((passage_id, "ql")),
                rc_rank=llm_ranks.get((passage_id, "rc")),
                fused_rank=llm_ranks.get((passage_id, "rrf"), fused_rank),
                proposed=label,
                provenance=provenance,
                is_seed=passage_id == query.seed_passage_id,
            )
        )
    view.candidates.sort(key=lambda c: (c.fused_rank or 10**6, c.guide_rank or 10**6, c.passage_id))
    return view


def record_judgment(
    database: Database,
    query_id: int,
    annotator: str,
    decision: str,
    *,
    positives: Iterable[int] = (),
    negatives: Iterable[int] = (),
    false_negatives: Iterable[int] = (),
    edited_query: str | None = None,
    reject_reason: str | None = None,
    note: str | None = None,
    edited_texts: dict[int, str] | None = None,
) -> int:
    """Append one judgment and return its id.

    - ``accept``: the current proposal is stored as the judgment's positives/negatives
      (plus any ``false_negatives`` marked).
    - ``override``: the given positives (at least one), negatives and false negatives.
    - ``reject``: the query is unanswerable or bad (``reject_reason``); no passages.
    An ``edited_query`` replaces the query text for training and export.
    ``edited_texts`` (passage id -> the annotator's corrected passage text, without its
    title) is kept with the judgment's passages (``judgment_passages.edited_text``, as the
    models see it: title line, then the corrected text); the passage's own text is never
    changed. Only passages the judgment marks can carry an edit; an edit equal to the
    original is not stored.
    """
    _check("the edited query", edited_query, MAX_QUERY_CHARS)
    _check("the note", note, MAX_NOTE_CHARS)
    positives, negatives, false_negatives = _checked_labels(
        database, query_id, decision, positives, negatives, false_negatives, reject_reason
    )
    marked = positives + negatives + false_negatives
    edited = " ".join(edited_query.split()) if edited_query else None
    who = annotator_id(database, annotator)
    with database.sessions() as session, session.begin():
        query = get_or_raise(
            session, GeneratedQuery, query_id, JudgmentError(f"no query with id {query_id}")
        )
        if marked:
            known = set(
                session.scalars(
                    select(Passage.id).where(
                        Passage.id.in_(marked), Passage.project_id == query.project_id
                    )
                )
            )
            unknown = sorted(set(marked) - known)
            if unknown:
                raise JudgmentError(f"passages {unknown} are not in this query's project")
        judgment = Judgment(
            query_id=query_id,
            annotator_id=who,
            decision=str(decision),
            edited_query=edited if edited and edited != query.query else None,
            reject_reason=reject_reason if decision == Decision.REJECT else None,
            note=note,
            provenance=Provenance.HUMAN.value,
        )
        edits = _passage_edits(session, edited_texts or {}, marked)
        judgment.passages = [
            JudgmentPassage(passage_id=p, label=label.value, edited_text=edits.get(p))
            for label, ids in (
                (JudgedLabel.POSITIVE, positives),
                (JudgedLabel.NEGATIVE, negatives),
                (JudgedLabel.FALSE_NEGATIVE, false_negatives),
            )
            for p in ids
        ]
        session.add(judgment)
        session.flush()
        return judgment.id


def _checked_labels(
    database: Database,
    query_id: int,
    decision: str,
    positives: Iterable[int],
    negatives: Iterable[int],
    false_negatives: Iterable[int],
    reject_reason: str | None,
) -> tuple[list[int], list[int], list[int]]:
    """(positives, negatives, false negatives) a judgment of ``decision`` stores: for an
    accept, the current proposal; raises :class:`JudgmentError` for a combination that
    cannot be stored (no reason for a reject, no positive for an override, a passage with
    two labels)."""
    if decision not in (Decision.ACCEPT, Decision.OVERRIDE, Decision.REJECT):
        raise JudgmentError(f"decision must be accept, override or reject, got {decision!r}")
    positives, negatives, false_negatives = list(positives), list(negatives), list(false_negatives)
    if decision == Decision.REJECT:
        if reject_reason not in REJECT_REASONS:
            raise JudgmentError(f"a rejection needs a reason: one of {REJECT_REASONS}")
        if positives or negatives or false_negatives:
            raise JudgmentError("a rejected query has no positives or negatives")
    if decision == Decision.ACCEPT:
        view = query_view(database, query_id)
        positives, negatives = view.proposal()
        # a proposed negative the annotator marks a false negative is stored as that
        negatives = [n for n in negatives if n not in set(false_negatives)]
        if not positives:
            raise JudgmentError("there is no proposal to accept yet: mine or rerank first")
    if decision == Decision.OVERRIDE and not positives:
        raise JudgmentError("an override needs at least one positive passage")
    marked = positives + negatives + false_negatives
    if len(set(marked)) != len(marked):
        raise JudgmentError("a passage can have only one label in a judgment")
    return positives, negatives, false_negatives


def _passage_edits(session: Session, edited: dict[int, str], marked: list[int]) -> dict[int, str]:
    """passage id -> the text to store as ``edited_text`` (title line, then the edited
    text) for the edits that change a marked passage; an edit of an unmarked passage or
    an empty one is refused."""
    stray = sorted(set(edited) - set(marked))
    if stray:
        raise JudgmentError(
            f"passages {stray} are edited but not marked in this judgment: mark them, or "
            "drop the edit"
        )
    out = {}
    for passage_id, text in edited.items():
        body = (text or "").strip()
        if not body:
            raise JudgmentError(f"the edit of passage {passage_id} is empty")
        _check(f"the edit of passage {passage_id}", body, MAX_PASSAGE_EDIT_CHARS)
        passage = session.get(Passage, passage_id)
        if body == passage.text.strip():
            continue
        out[passage_id] = f"{passage.title}\n{body}" if passage.title else body
    return out


def undo_last(database: Database, annotator: str, *, project: str) -> int | None:
    """Retract the annotator's latest effective judgment on a query of ``project``
    (appends a ``retract``); returns the retracted judgment's id, or None when there is
    nothing to undo there. Judgments in other projects are never touched."""
    who = annotator_id(database, annotator)
    project_id = require_project(database, project)
    with database.sessions() as session, session.begin():
        retracted = (
            select(Judgment.retracts_judgment_id)
            .where(Judgment.retracts_judgment_id.is_not(None))
            .scalar_subquery()
        )
        target = session.scalars(
            select(Judgment)
            .join(GeneratedQuery, GeneratedQuery.id == Judgment.query_id)
            .where(
                GeneratedQuery.project_id == project_id,
                Judgment.annotator_id == who,
                Judgment.decision != Decision.RETRACT.value,
                Judgment.id.not_in(retracted),
            )
            .order_by(Judgment.id.desc())
            .limit(1)
        ).first()
        if target is None:
            return None
        session.add(
            Judgment(
                query_id=target.query_id,
                annotator_id=who,
                decision=Decision.RETRACT.value,
                retracts_judgment_id=target.id,
                provenance=Provenance.HUMAN.value,
            )
        )
        return target.id


def judgment_query_id(database: Database, judgment_id: int) -> int:
    """The query judgment ``judgment_id`` is about (e.g. the one an undo brings back)."""
    with database.sessions() as session:
        missing = JudgmentError(f"no judgment with id {judgment_id}")
        return get_or_raise(session, Judgment, judgment_id, missing).query_id


def effective_judgments(session: Session, condition) -> dict[int, dict[str, Judgment]]:
    """query -> annotator username -> effective (latest, not retracted) judgment, with its
    passages loaded, among the judgments matching ``condition``, e.g.
    ``GeneratedQuery.project_id == id`` (a retraction carries its judgment's query, so both
    are in the set)."""
    from sqlalchemy.orm import selectinload

    rows = session.execute(
        select(Judgment, Annotator.username)
        .join(Annotator, Annotator.id == Judgment.annotator_id)
        .join(GeneratedQuery, GeneratedQuery.id == Judgment.query_id)
        .where(condition)
        .options(selectinload(Judgment.passages))
        .order_by(Judgment.id)
    ).all()
    retracted = {j.retracts_judgment_id for j, _ in rows if j.retracts_judgment_id is not None}
    effective: dict[int, dict[str, Judgment]] = {}
    for judgment, username in rows:
        if judgment.decision == Decision.RETRACT.value or judgment.id in retracted:
            continue
        effective.setdefault(judgment.query_id, {})[username] = judgment
    return effective


def _queue_statement(
    database: Database, project: str, annotator: str, queue: str, min_annotators: int
) -> tuple:
    """(the select of the queue's query ids, its order by columns, whether it is by id)."""
    if queue not in QUEUE_FILTERS:
        raise JudgmentError(f"queue must be one of {QUEUE_FILTERS}, got {queue!r}")
    project_id = require_project(database, project)
    who = annotator_id(database, annotator)
    retracted = (
        select(Judgment.retracts_judgment_id)
        .where(Judgment.retracts_judgment_id.is_not(None))
        .scalar_subquery()
    )
    effective = select(Judgment.query_id, Judgment.annotator_id).where(
        Judgment.decision != Decision.RETRACT.value, Judgment.id.not_in(retracted)
    )
    judged = effective.subquery()
    mined = exists().where(Candidate.query_id == GeneratedQuery.id)  # uses the index
    statement = select(GeneratedQuery.id).where(
        GeneratedQuery.project_id == project_id,
        GeneratedQuery.status == QueryStatus.OK.value,
    )
    if queue not in ("positive_changed", "low_confidence"):
        # those two join the reranker's proposal, which only mined queries have
        statement = statement.where(mined)
    order = [GeneratedQuery.id]
    if queue == "not_judged":
        statement = statement.where(GeneratedQuery.id.not_in(select(judged.c.query_id)))
    elif queue == "flagged":  # a stage flagged it (copy, junk, ...) and nobody judged it
        statement = statement.where(
            exists().where(QueryFlag.query_id == GeneratedQuery.id),
            GeneratedQuery.id.not_in(select(judged.c.query_id)),
        )
    elif queue == "judged_by_me":
        statement = statement.where(
            GeneratedQuery.id.in_(select(judged.c.query_id).where(judged.c.annotator_id == who))
        )
    elif queue == "fewer_than_n":
        counts = (
            select(judged.c.query_id)
            .group_by(judged.c.query_id)
            .having(func.count(func.distinct(judged.c.annotator_id)) >= min_annotators)
        )
        statement = statement.where(
            GeneratedQuery.id.not_in(counts),
            GeneratedQuery.id.not_in(select(judged.c.query_id).where(judged.c.annotator_id == who)),
        )
    elif queue in ("positive_changed", "low_confidence"):
        # the query's latest LLM positive, looked up per query through the index on
        # (provenance, label, query_id): a join to a grouped subquery was answered, on
        # PostgreSQL before autovacuum had analysed freshly written proposed_labels, by
        # re-grouping every label for each query (8.6 s on 10,000 queries against 30 ms)
        other = aliased(ProposedLabel)
        latest = (
            select(func.max(other.id))
            .where(
                other.query_id == GeneratedQuery.id,
                other.label == "positive",
                other.provenance == Provenance.LLM.value,
            )
            .scalar_subquery()
        )
        statement = statement.join(ProposedLabel, ProposedLabel.id == latest)
        if queue == "positive_changed":
            statement = statement.where(ProposedLabel.differs_from_seed.is_(True))
        else:
            order = [ProposedLabel.confidence, GeneratedQuery.id]
    return statement, order, order == [GeneratedQuery.id]


def next_query(
    database: Database,
    project: str,
    annotator: str,
    queue: str = "not_judged",
    *,
    min_annotators: int = 2,
    after: int | None = None,
) -> int | None:
    """The next query id for ``annotator`` in ``queue`` (after query ``after``, if given).

    Queues: ``not_judged`` (by anyone), ``positive_changed`` (the reranker's positive is
    not the seed), ``low_confidence`` (lowest fusion confidence first), ``fewer_than_n``
    (effective judgments by fewer than ``min_annotators`` people, not by me),
    ``judged_by_me``, ``flagged`` (a stage flagged it as a copy, junk, a duplicate or
    inconsistent, and nobody has judged it: confirm or fix), ``all``. Only mined queries
    with status ``ok`` are queued.
    """
    statement, order, by_id = _queue_statement(database, project, annotator, queue, min_annotators)
    if after is not None and by_id:
        statement = statement.where(GeneratedQuery.id > after)
    with database.sessions() as session:
        if by_id:  # the database stops at the first match
            return session.scalar(statement.order_by(*order).limit(1))
        ids = list(session.scalars(statement.order_by(*order)))
    if after is not None and after in ids:
        ids = ids[ids.index(after) + 1 :]
    return ids[0] if ids else None


def queue_position(
    database: Database,
    project: str,
    annotator: str,
    queue: str,
    query_id: int | None,
    *,
    min_annotators: int = 2,
) -> tuple[int, int]:
    """(left, total): how many queries of ``queue`` come from ``query_id`` on (it included,
    in the queue's order; 0 for None or a query not in the queue) and how many it holds."""
    statement, order, by_id = _queue_statement(database, project, annotator, queue, min_annotators)
    with database.sessions() as session:
        if by_id:  # one pass: the size, the ids from query_id on, whether it is there
            ids = statement.subquery()
            target = -1 if query_id is None else query_id
            total, left, inside = session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((ids.c.id >= target, 1), else_=0)), 0),
                    func.coalesce(func.max(case((ids.c.id == target, 1), else_=0)), 0),
                ).select_from(ids)
            ).one()
            return (left if inside else 0), total
        ordered = list(session.scalars(statement.order_by(*order)))
    if query_id is None or query_id not in ordered:
        return 0, len(ordered)
    return len(ordered) - ordered.index(query_id), len(ordered)


@dataclass
class AgreementReport:
    """Human-human and LLM-human agreement on a project's effective judgments."""

    alpha: float | None
    queries_with_several: int
    pairs: list[tuple[str, str, float | None, int]]
    annotators: list[tuple[str, int, int, float | None]]  # name, judged, with LLM, accepted
    llm_accepted: float | None


def _label(judgment: Judgment) -> str:
    if judgment.decision == Decision.REJECT.value:
        return "reject"
    positives = sorted(p.passage_id for p in judgment.passages if p.label == "positive")
    return "pos:" + ",".join(map(str, positives))


def agreement_report(database: Database, project: str) -> AgreementReport:
    """Krippendorff's alpha over all annotators, Cohen's kappa per pair, and how often each
    annotator kept the LLM's proposed positive (overall and per annotator)."""
    from curator.pipeline.agreement import krippendorff_alpha, pairwise_kappa

    project_id = require_project(database, project)
    with database.sessions() as session:
        effective = effective_judgments(session, GeneratedQuery.project_id == project_id)
        llm_positive: dict[int, int] = {}
        for query_id, passage_id in session.execute(
            select(ProposedLabel.query_id, ProposedLabel.passage_id)
            .join(GeneratedQuery, GeneratedQuery.id == ProposedLabel.query_id)
            .where(
                GeneratedQuery.project_id == project_id,
                ProposedLabel.label == "positive",
                ProposedLabel.provenance == Provenance.LLM.value,
            )
            .order_by(ProposedLabel.id)
        ):
            llm_positive[query_id] = passage_id  # the newest rerank wins
    units = {q: {name: _label(j) for name, j in by.items()} for q, by in effective.items()}
    stats: dict[str, list[int]] = {}
    for query_id, by in effective.items():
        for name, judgment in by.items():
            entry = stats.setdefault(name, [0, 0, 0])
            entry[0] += 1
            if query_id in llm_positive:
                entry[1] += 1
                positives = {p.passage_id for p in judgment.passages if p.label == "positive"}
                entry[2] += llm_positive[query_id] in positives
    with_llm = sum(v[1] for v in stats.values())
    return AgreementReport(
        alpha=krippendorff_alpha(units),
        queries_with_several=sum(1 for by in units.values() if len(by) > 1),
        pairs=[(a, b, kappa, n) for (a, b), (kappa, n) in pairwise_kappa(units).items()],
        annotators=[
            (name, v[0], v[1], v[2] / v[1] if v[1] else None) for name, v in sorted(stats.items())
        ],
        llm_accepted=sum(v[2] for v in stats.values()) / with_llm if with_llm else None,
    )
