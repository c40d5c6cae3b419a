"""Mining service: guide-model candidates, BM25 alongside, hard negatives with a guard.

For each generated query (status ``ok``) that has no candidates yet:

1. passage embeddings come from the on-disk store (``<data>/embeddings/<model key>/``);
   only passages never encoded with this model setting are encoded, in chunks that are
   saved as they finish (an interrupted encoding resumes);
2. a FAISS index over the project's passages (``<data>/index/<project>/<model key>/``) and
   a BM25 index (``<data>/index/<project>/``) are loaded, or built once and saved;
3. the top-N passages by guide score become ``candidates`` rows with guide score and rank,
   plus BM25 score and rank of the same query over the whole corpus; the seed passage is
   always a candidate (its guide rank is empty when it is not in the top N);
4. ``proposed_labels``: the seed passage as the provisional positive (provenance ``seed``)
   and the hardest admissible negatives under the false-negative guard (``guide``);
5. round-trip consistency (Promptagator): a query whose seed passage is not in the
   guide's top ``consistency_k`` is flagged ``inconsistent`` (``query_flags``), so the
   label-free policy leaves it out; a person can still judge it.

Queries are written in batches, one transaction each, so a killed run resumes with the
next batch.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import delete, exists, insert, select

from curator.pipeline.negatives import (
    Diagnostics,
    GuideCandidate,
    NegativeFilter,
    diagnose,
    select_negatives,
)
from curator.pipeline.negatives import (
    guard_histogram as guard_histogram,  # re-exported for the app
)
from curator.progress import NullProgress, Progress
from curator.retrieval.guide import GuideSettings
from curator.services.projects import require_project
from curator.services.runs import exclusive, recorded_run
from db import Database
from db.models import (
    Candidate,
    FlagKind,
    GeneratedQuery,
    LabelKind,
    Passage,
    ProposedLabel,
    Provenance,
    QueryFlag,
    QueryStatus,
    Stage,
)
from db.queries import insert_or_ignore

ENCODE_CHUNK = 512


@dataclass(frozen=True)
class MineOptions:
    guide: GuideSettings = field(default_factory=GuideSettings)
    top_n: int = 30
    index_kind: str = "auto"
    negative_filter: NegativeFilter = field(default_factory=NegativeFilter)
    negatives_per_query: int = 1
    limit: int | None = None
    query_batch: int = 256
    consistency_k: int | None = 10  # above top_n, it means "in the top N"

    def __post_init__(self) -> None:
        if self.top_n < 1:
            raise ValueError("top-n must be at least 1")
        if self.consistency_k is not None and self.consistency_k < 1:
            raise ValueError("consistency-k must be at least 1 (or None: no check)")
        if self.negatives_per_query < 0:
            raise ValueError("negatives per query must be >= 0")


@dataclass
class MineReport:
    run_id: int
    guide: str
    passages: int = 0
    encoded: int = 0
    reused: int = 0
    index_kind: str = ""
    index_built: bool = False
    bm25_built: bool = False
    queries_planned: int = 0
    queries_mined: int = 0
    candidates: int = 0
    negatives: int = 0
    queries_without_negative: int = 0
    inconsistent: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("run_id", "guide")}

    def summary(self) -> str:
        return (
            f"mined {self.queries_mined} queries: {self.candidates} candidates, "
            f"{self.negatives} hard negatives proposed, {self.queries_without_negative} "
            f"queries left without an admissible negative; {self.inconsistent} flagged "
            f"inconsistent (seed not in the guide's top k); passages encoded {self.encoded} "
            f"(reused {self.reused}) with {self.guide}; index {self.index_kind}"
            f"{' (built)' if self.index_built else ' (loaded)'}"
        )


def project_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "project"


def mine_candidates(
    database: Database,
    project: str,
    data_dir: Path,
    options: MineOptions = MineOptions(),
    progress: Progress | None = None,
    guide=None,
) -> MineReport:
    """Mine candidates and propose labels for the project's unmined queries.

    ``guide`` may pass an already loaded GuideModel (tests and the app reuse one).
    """
    from curator.retrieval.bm25 import load_or_build_bm25
    from curator.retrieval.guide import GuideModel
    from curator.retrieval.index import load_or_build
    from curator.retrieval.store import EmbeddingStore

    progress = progress or NullProgress()
    project_id = require_project(database, project)
    guide = guide or GuideModel(options.guide, work_dir=data_dir / "models")
    settings = {
        "guide": vars(options.guide),
        "backend": guide.backend,
        "top_n": options.top_n,
        "index_kind": options.index_kind,
        "negative_filter": vars(options.negative_filter),
        "negatives_per_query": options.negatives_per_query,
        "limit": options.limit,
        "consistency_k": options.consistency_k,
    }
    with (
        exclusive(data_dir / "mine.lock", "`curator mine`"),
        recorded_run(database, project_id, Stage.MINE, settings, model=guide.key) as run,
    ):
        report = MineReport(run_id=run.run_id, guide=guide.key)
        run.counts = report.counts
        clock = time.monotonic()
        ids, hashes = _passage_keys(database, project_id)
        report.passages = len(ids)
        if not len(ids):
            raise ValueError(f"project {project!r} has no passages; run `curator ingest` first")
        store = EmbeddingStore(data_dir / "embeddings" / guide.key, guide.dim)
        missing = store.missing(hashes)
        report.reused = len(set(hashes)) - len(missing)
        if missing:
            progress.start(len(missing), "passages", f"encode ({guide.key})")
            for start in range(0, len(missing), ENCODE_CHUNK):
                chunk = missing[start : start + ENCODE_CHUNK]
                texts = _texts_for_hashes(database, project_id, chunk)
                store.add(chunk, guide.encode(texts, progress=progress.advance))
                report.encoded += len(chunk)
            progress.finish()
        report.seconds["encode"] = round(time.monotonic() - clock, 2)

        clock = time.monotonic()
        folder = data_dir / "index" / project_slug(project)
        index, report.index_built = load_or_build(
            folder / guide.key, lambda: store.view(hashes), ids, guide.key, options.index_kind
        )
        report.index_kind = index.kind
        bm25, report.bm25_built = load_or_build_bm25(
            folder, ids, lambda: _texts_for_ids(database, ids)
        )
        report.seconds["index"] = round(time.monotonic() - clock, 2)

        clock = time.monotonic()
        queries = _pending_queries(database, project_id, options.limit)
        report.queries_planned = len(queries)
        hash_of = dict(zip(ids.tolist(), hashes, strict=True))
        progress.start(len(queries), "queries", "mine")
        for start in range(0, len(queries), options.query_batch):
            batch = queries[start : start + options.query_batch]
            _mine_batch(
                database, run.run_id, guide, store, index, bm25, hash_of, batch, options, report
            )
            progress.advance(len(batch))
            run.checkpoint()
        progress.finish()
        report.seconds["mine"] = round(time.monotonic() - clock, 2)
    return report


def _passage_keys(database: Database, project_id: int) -> tuple[np.ndarray, list[str]]:
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.id, Passage.content_hash)
            .where(Passage.project_id == project_id)
            .order_by(Passage.id)
        ).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def passage_text(title: str, text: str) -> str:
    """What the guide model and BM25 see of a passage: title and text."""
    return f"{title} {text}".strip() if title else text


def _texts_for_hashes(database: Database, project_id: int, hashes: list[str]) -> list[str]:
    with database.sessions() as session:
        rows = dict(
            (h, passage_text(t, x))
            for h, t, x in session.execute(
                select(Passage.content_hash, Passage.title, Passage.text).where(
                    Passage.project_id == project_id, Passage.content_hash.in_(hashes)
                )
            )
        )
    return [rows[h] for h in hashes]


def _texts_for_ids(database: Database, ids: np.ndarray) -> list[str]:
    texts: dict[int, str] = {}
    id_list = ids.tolist()
    with database.sessions() as session:
        for start in range(0, len(id_list), 1000):
            for pid, title, text in session.execute(
                select(Passage.id, Passage.title, Passage.text).where(
                    Passage.id.in_(id_list[start : start + 1000])
                )
            ):
                texts[pid] = passage_text(title, text)
    return [texts[i] for i in id_list]


@dataclass(frozen=True)
class _Query:
    id: int
    text: str
    seed_passage_id: int


def _pending_queries(database: Database, project_id: int, limit: int | None) -> list[_Query]:
    with database.sessions() as session:
        statement = (
            select(GeneratedQuery.id, GeneratedQuery.query, GeneratedQuery.seed_passage_id)
            .where(
                GeneratedQuery.project_id == project_id,
                GeneratedQuery.status == QueryStatus.OK.value,
                ~exists().where(Candidate.query_id == GeneratedQuery.id),
            )
            .order_by(GeneratedQuery.id)
        )
        if limit is not None:
            statement = statement.limit(limit)
        return [_Query(*row) for row in session.execute(statement)]


def _mine_batch(database, run_id, guide, store, index, bm25, hash_of, batch, options, report):
    vectors = guide.encode([q.text for q in batch])
    scores, found = index.search(vectors, options.top_n)
    seed_vectors = store.get([hash_of[q.seed_passage_id] for q in batch])
    seed_scores = (vectors * seed_vectors).sum(axis=1)
    candidate_rows, label_rows, flag_rows, counts = [], [], [], {}
    for row, query in enumerate(batch):
        ranked = [
            (int(p), float(s), rank)
            for rank, (p, s) in enumerate(zip(found[row], scores[row], strict=True), start=1)
            if p >= 0
        ]
        seed_rank = next((r for p, _, r in ranked if p == query.seed_passage_id), None)
        if seed_rank is None:
            ranked.append((query.seed_passage_id, float(seed_scores[row]), None))
        if options.consistency_k is not None and (
            seed_rank is None or seed_rank > options.consistency_k
        ):
            where = f"rank {seed_rank}" if seed_rank else f"not in the top {options.top_n}"
            flag_rows.append(
                {
                    "query_id": query.id,
                    "kind": FlagKind.INCONSISTENT.value,
                    "reason": f"inconsistent: the guide ranks the seed passage {where} "
                    f"(wanted in the top {options.consistency_k})",
                    "run_id": run_id,
                }
            )
        passage_ids = np.array([p for p, _, _ in ranked], dtype=np.int64)
        bm25_scores, bm25_ranks = bm25.score_and_rank(query.text, passage_ids)
        for (pid, score, rank), b_score, b_rank in zip(
            ranked, bm25_scores, bm25_ranks, strict=True
        ):
            candidate_rows.append(
                {
                    "query_id": query.id,
                    "passage_id": pid,
                    "guide_model": guide.key,
                    "guide_score": score,
                    "guide_rank": rank,
                    "bm25_score": float(b_score),
                    "bm25_rank": int(b_rank) or None,
                    "run_id": run_id,
                }
            )
        selection = select_negatives(
            [GuideCandidate(p, s, r) for p, s, r in ranked if r is not None],
            {query.seed_passage_id: float(seed_scores[row])},
            options.negative_filter,
            limit=options.negatives_per_query,
        )
        label_rows.append(
            {
                "query_id": query.id,
                "passage_id": query.seed_passage_id,
                "label": LabelKind.POSITIVE.value,
                "provenance": Provenance.SEED.value,
                "run_id": run_id,
            }
        )
        label_rows.extend(
            {
                "query_id": query.id,
                "passage_id": c.passage_id,
                "label": LabelKind.NEGATIVE.value,
                "provenance": Provenance.GUIDE.value,
                "run_id": run_id,
            }
            for c in selection.negatives
        )
        counts[query.id] = (len(ranked), len(selection.negatives))
    mined = _store_batch(database, run_id, candidate_rows, label_rows, flag_rows)
    report.inconsistent += sum(row["query_id"] in mined for row in flag_rows)
    for query_id in mined:
        candidates, negatives = counts[query_id]
        report.candidates += candidates
        report.negatives += negatives
        report.queries_without_negative += not negatives
    report.queries_mined += len(mined)


def _store_batch(database, run_id: int, candidate_rows, label_rows, flag_rows) -> set[int]:
    """Store one batch's candidates, proposed labels and consistency flags; returns the ids
    of the queries stored. A query another run (a second ``curator mine`` on the same
    data) has mined meanwhile is left to that run: its rows are not stored twice, and
    nothing fails."""
    query_ids = {row["query_id"] for row in candidate_rows}
    with database.sessions() as session, session.begin():
        # the insert comes first, so this transaction holds the write lock from here on
        insert_or_ignore(session, Candidate, candidate_rows)
        taken = set(
            session.scalars(
                select(Candidate.query_id)
                .where(Candidate.query_id.in_(query_ids), Candidate.run_id != run_id)
                .distinct()
            )
        )
        if taken:
            session.execute(
                delete(Candidate).where(Candidate.run_id == run_id, Candidate.query_id.in_(taken))
            )
        labels = [row for row in label_rows if row["query_id"] not in taken]
        if labels:
            session.execute(insert(ProposedLabel), labels)
        flags = [row for row in flag_rows if row["query_id"] not in taken]
        if flags:
            session.execute(insert(QueryFlag), flags)
    return query_ids - taken


def mining_diagnostics(
    database: Database, project: str, flt: NegativeFilter | None = None
) -> Diagnostics:
    """What ``flt`` would do to the project's mined queries, the seed passage as positive."""
    project_id = require_project(database, project)
    per_query: dict[int, tuple[list[GuideCandidate], dict[int, float]]] = {}
    with database.sessions() as session:
        rows = session.execute(
            select(
                Candidate.query_id,
                Candidate.passage_id,
                Candidate.guide_score,
                Candidate.guide_rank,
                GeneratedQuery.seed_passage_id,
            )
            .join(GeneratedQuery, GeneratedQuery.id == Candidate.query_id)
            .where(GeneratedQuery.project_id == project_id)
        )
        for query_id, passage_id, score, rank, seed in rows:
            candidates, positives = per_query.setdefault(query_id, ([], {}))
            if passage_id == seed:
                positives[passage_id] = score
            if rank is not None:
                candidates.append(GuideCandidate(passage_id, score, rank))
    return diagnose(((c, p) for c, p in per_query.values() if p), flt or NegativeFilter())
