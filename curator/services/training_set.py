"""Read the curated training set out of the database (the rules are in
``curator.pipeline.training_set``).

``load_training_set(database, project, policy=...)`` reads every generated query of the
project that parsed, its latest proposal, its effective judgments and the passages they
name, builds the examples, and stores the split of any query that has none yet for the
seed (``query_splits``), so a later run with the same seed sees the same split.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, insert, select

from curator.pipeline.training_set import (
    DEFAULT_EVAL_FRACTION,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_SEED,
    Example,
    JudgmentRecord,
    PassageRecord,
    QueryRecord,
    TrainingSet,
    build_examples,
    generated_held_out,
)
from curator.services.annotate import effective_judgments
from curator.services.projects import require_project
from db import Database
from db.models import (
    Candidate,
    GeneratedQuery,
    JudgedLabel,
    LabelKind,
    LLMScore,
    Passage,
    ProposedLabel,
    QueryFlag,
    QuerySplit,
    QueryStatus,
)

CHUNK = 900  # SQLite bound-parameter batches


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_training_set(
    database: Database,
    project: str,
    policy: str = "none",
    *,
    seed: int = DEFAULT_SEED,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    with_scores: bool = False,
    store_split: bool = True,
) -> TrainingSet:
    """The project's training set under ``policy`` (``none`` / ``high_confidence`` /
    ``all``), split by ``seed``. ``with_scores`` also loads guide and LLM (QL) scores of
    the labelled pairs (for MarginMSE and FlagEmbedding's score fields)."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        records = _query_records(session, project_id)
        stored = _stored_splits(session, project_id, seed)
        snapshot = _snapshot(session, project_id, records)
    examples, dropped = build_examples(
        list(records.values()),
        policy,
        seed=seed,
        eval_fraction=eval_fraction,
        min_confidence=min_confidence,
        stored_splits=stored,
    )
    if store_split:
        _store_new_splits(database, examples, stored, seed)
    with database.sessions() as session:
        passages = _passages(session, examples)
        if with_scores:
            _attach_scores(session, examples)
    return TrainingSet(
        examples=examples,
        passages=passages,
        policy=policy,
        seed=seed,
        eval_fraction=eval_fraction,
        min_confidence=min_confidence,
        project=project,
        snapshot=snapshot,
        dropped=dropped,
    )


def load_generated_held_out(
    database: Database,
    project: str,
    *,
    seed: int = DEFAULT_SEED,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
) -> list[Example]:
    """The held-out unreviewed generated queries of ``project`` with their seed passage as
    the relevant one (rules: :func:`curator.pipeline.training_set.generated_held_out`)."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        records = _query_records(session, project_id)
        stored = _stored_splits(session, project_id, seed)
    return generated_held_out(
        list(records.values()), seed=seed, eval_fraction=eval_fraction, stored_splits=stored
    )


def _stored_splits(session, project_id: int, seed: int) -> dict[int, str]:
    """query id -> stored split (``train`` / ``eval``) for ``seed``."""
    return dict(
        session.execute(
            select(QuerySplit.query_id, QuerySplit.split)
            .join(GeneratedQuery, GeneratedQuery.id == QuerySplit.query_id)
            .where(GeneratedQuery.project_id == project_id, QuerySplit.seed == seed)
        ).all()
    )


def _query_records(session, project_id: int) -> dict[int, QueryRecord]:
    """query id -> record, for every query of the project that parsed, with its latest
    proposal, flags and effective judgments attached."""
    records: dict[int, QueryRecord] = {}
    for row in session.execute(
        select(
            GeneratedQuery.id,
            GeneratedQuery.seed_passage_id,
            GeneratedQuery.task,
            GeneratedQuery.query,
            GeneratedQuery.model,
            GeneratedQuery.prompt_version,
        )
        .where(
            GeneratedQuery.project_id == project_id,
            GeneratedQuery.status == QueryStatus.OK.value,
        )
        .order_by(GeneratedQuery.id)
    ):
        records[row.id] = QueryRecord(
            query_id=row.id,
            seed_passage_id=row.seed_passage_id,
            task=row.task,
            query=row.query,
            model=row.model,
            prompt_version=row.prompt_version,
        )
    _attach_proposals(session, project_id, records)
    _attach_flags(session, project_id, records)
    _attach_judgments(session, project_id, records)
    return records


def _snapshot(session, project_id: int, records: dict[int, QueryRecord]) -> dict:
    """What the set was built from: the newest judgment and proposal run, the query count."""
    return {
        "max_judgment_id": max(
            (j.judgment_id for r in records.values() for j in r.judgments), default=None
        ),
        "max_proposal_run_id": session.scalar(
            select(func.max(ProposedLabel.run_id))
            .join(GeneratedQuery, GeneratedQuery.id == ProposedLabel.query_id)
            .where(GeneratedQuery.project_id == project_id)
        ),
        "queries": len(records),
    }


def _store_new_splits(
    database: Database, examples: list[Example], stored: dict[int, str], seed: int
) -> None:
    """Store the split of each example that has none yet for ``seed``."""
    new = [
        {"query_id": e.query_id, "seed": seed, "split": e.split}
        for e in examples
        if e.query_id not in stored
    ]
    if new:
        with database.sessions() as session, session.begin():
            for part in _chunks(new):
                session.execute(insert(QuerySplit), part)


def _passages(session, examples: list[Example]) -> dict[int, PassageRecord]:
    """Every passage the examples name (labels and seeds), by id."""
    needed = sorted(
        {
            p
            for e in examples
            for p in (*e.positives, *e.negatives, *e.false_negatives, e.seed_passage_id)
        }
    )
    passages: dict[int, PassageRecord] = {}
    for ids in _chunks(needed):
        for row in session.execute(
            select(Passage.id, Passage.external_id, Passage.title, Passage.text).where(
                Passage.id.in_(ids)
            )
        ):
            passages[row.id] = PassageRecord(row.id, row.external_id, row.title, row.text)
    return passages


def _attach_proposals(session, project_id: int, records: dict[int, QueryRecord]) -> None:
    """Each query's labels from the newest run that proposed any for it."""
    newest = (
        select(ProposedLabel.query_id, func.max(ProposedLabel.run_id).label("run_id"))
        .join(GeneratedQuery, GeneratedQuery.id == ProposedLabel.query_id)
        .where(GeneratedQuery.project_id == project_id)
        .group_by(ProposedLabel.query_id)
        .subquery()
    )
    rows = session.execute(
        select(
            ProposedLabel.query_id,
            ProposedLabel.passage_id,
            ProposedLabel.label,
            ProposedLabel.provenance,
            ProposedLabel.confidence,
            ProposedLabel.fused_rank,
        )
        .join(
            newest,
            (newest.c.query_id == ProposedLabel.query_id)
            & (newest.c.run_id == ProposedLabel.run_id),
        )
        .order_by(ProposedLabel.query_id, ProposedLabel.fused_rank, ProposedLabel.id)
    )
    for row in rows:
        record = records.get(row.query_id)
        if record is None:
            continue
        if row.label == LabelKind.POSITIVE.value:
            record.proposed_positives.append(row.passage_id)
            record.confidence = row.confidence
            record.proposal_provenance = row.provenance
        else:
            record.proposed_negatives.append(row.passage_id)


def _attach_flags(session, project_id: int, records: dict[int, QueryRecord]) -> None:
    """Each query's quality flag kinds (copy, junk, duplicate, inconsistent)."""
    rows = session.execute(
        select(QueryFlag.query_id, QueryFlag.kind)
        .join(GeneratedQuery, GeneratedQuery.id == QueryFlag.query_id)
        .where(GeneratedQuery.project_id == project_id)
    )
    for row in rows:
        record = records.get(row.query_id)
        if record is not None:
            record.flags.append(row.kind)


def _attach_judgments(session, project_id: int, records: dict[int, QueryRecord]) -> None:
    effective = effective_judgments(session, GeneratedQuery.project_id == project_id)
    for query_id, by_annotator in effective.items():
        record = records.get(query_id)
        if record is None:
            continue
        for username, judgment in by_annotator.items():
            labels: dict[str, list[int]] = defaultdict(list)
            edited: dict[int, str] = {}
            for marked in judgment.passages:
                labels[marked.label].append(marked.passage_id)
                if marked.edited_text is not None:
                    edited[marked.passage_id] = marked.edited_text
            record.judgments.append(
                JudgmentRecord(
                    judgment_id=judgment.id,
                    annotator=username,
                    decision=judgment.decision,
                    provenance=judgment.provenance,
                    created_at=judgment.created_at,
                    edited_query=judgment.edited_query,
                    reject_reason=judgment.reject_reason,
                    positives=sorted(labels[JudgedLabel.POSITIVE.value]),
                    negatives=sorted(labels[JudgedLabel.NEGATIVE.value]),
                    false_negatives=sorted(labels[JudgedLabel.FALSE_NEGATIVE.value]),
                    edited_texts=edited,
                )
            )


def _attach_scores(session, examples) -> None:
    """Guide scores (candidates) and QL log-likelihoods (llm_scores) of labelled pairs."""
    by_query = {e.query_id: e for e in examples}
    query_ids = sorted(by_query)
    for ids in _chunks(query_ids):
        for row in session.execute(
            select(Candidate.query_id, Candidate.passage_id, Candidate.guide_score).where(
                Candidate.query_id.in_(ids)
            )
        ):
            if row.guide_score is not None:
                by_query[row.query_id].guide_scores[row.passage_id] = row.guide_score
        for row in session.execute(
            select(LLMScore.query_id, LLMScore.passage_id, LLMScore.score)
            .where(LLMScore.query_id.in_(ids), LLMScore.method == "ql")
            .order_by(LLMScore.id)
        ):
            if row.score is not None:
                by_query[row.query_id].llm_scores[row.passage_id] = row.score
