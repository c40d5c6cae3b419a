"""Reranking service (FRet step 2): LLM scores for each query's candidates, fused by RRF.

For each mined query not yet reranked with these settings:

1. its top-``top_k`` candidates by guide rank, plus the seed passage, are scored by the
   chosen methods: ``ql`` (query likelihood, log P(query | passage)), ``rc`` (relevance
   classification: log P(yes) - log P(no), or a parsed yes/no from a chat model) and
   ``guide`` (the stored guide score, no LLM call);
2. each method's scores become 1-based ranks, fused by Reciprocal Rank Fusion with ``k``;
3. ``llm_scores`` rows keep each method's score and rank and the fused score and rank
   (method ``rrf``); ``proposed_labels`` get the top fused passage as positive and
   negatives from fused rank ``negative_rank`` down, through the false-negative guard
   (provenance ``llm``), with the confidence and whether the positive differs from the
   seed.

Each query is one transaction; a killed run resumes with the queries that have no fused
scores for these settings.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import and_, exists, insert, select

from curator.llm.client import LLMClient
from curator.pipeline.fusion import (
    fused_order,
    propose_labels,
    rankings_from_scores,
    reciprocal_rank_fusion,
)
from curator.pipeline.generate import ParseError
from curator.pipeline.likelihood import QL_PROMPT_VERSION, build_ql_prefix, ql_continuation
from curator.pipeline.negatives import NegativeFilter
from curator.pipeline.rerank import (
    RC_PROMPT_VERSION,
    build_rc_messages,
    build_rc_prefix,
    parse_rc,
)
from curator.progress import NullProgress, Progress
from curator.services.projects import require_project
from curator.services.runs import recorded_run, report_counts
from db import Database
from db.models import (
    Candidate,
    GeneratedQuery,
    LabelKind,
    LLMScore,
    Passage,
    ProposedLabel,
    Provenance,
    Stage,
)

log = logging.getLogger(__name__)
METHODS = ("ql", "rc", "guide")
PROMPT_VERSIONS = {"ql": QL_PROMPT_VERSION, "rc": RC_PROMPT_VERSION, "guide": "guide"}


@dataclass(frozen=True)
class RerankOptions:
    methods: tuple[str, ...] = ("ql", "guide")
    k: float = 0.0
    top_k: int = 20
    negative_rank: int = 20
    negatives: int = 1
    negative_filter: NegativeFilter = field(default_factory=NegativeFilter)
    limit: int | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be some of {METHODS}, got {self.methods}")
        if self.top_k < 1:
            raise ValueError("top-k must be at least 1")

    @property
    def fusion_version(self) -> str:
        """Identifies a fusion setting (stored as the ``rrf`` rows' prompt version)."""
        parts = "+".join(f"{m}:{PROMPT_VERSIONS[m]}" for m in sorted(self.methods))
        return f"rrf:k={self.k:g}:top={self.top_k}:{parts}"


@dataclass
class RerankReport:
    run_id: int
    model: str
    queries_planned: int = 0
    queries_reranked: int = 0
    pairs: int = 0
    positive_changed: int = 0
    rc_parse_failures: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def ms_per_pair(self) -> dict[str, float]:
        return {m: round(1000 * s / self.pairs, 1) for m, s in self.seconds.items() if self.pairs}

    def counts(self) -> dict:
        counted = "queries_planned queries_reranked pairs positive_changed rc_parse_failures"
        return {**report_counts(self, counted), "ms_per_pair": self.ms_per_pair()}

    def summary(self) -> str:
        timing = ", ".join(f"{m} {ms:.0f} ms" for m, ms in self.ms_per_pair().items())
        return (
            f"reranked {self.queries_reranked} queries ({self.pairs} pairs); the proposed "
            f"positive differs from the seed for {self.positive_changed}; per pair: "
            f"{timing or 'n/a'} with {self.model}"
        )


@dataclass
class _Pair:
    passage_id: int
    title: str
    text: str
    guide_score: float | None


@dataclass
class _Query:
    id: int
    text: str
    seed: int
    pairs: list[_Pair]


def rerank_queries(
    database: Database,
    project: str,
    client: LLMClient,
    options: RerankOptions = RerankOptions(),
    progress: Progress | None = None,
) -> RerankReport:
    """Rerank the project's mined queries; see the module docstring."""
    progress = progress or NullProgress()
    project_id = require_project(database, project)
    from curator.llm.likelihood import QueryLikelihoodUnsupported, supports_query_likelihood

    if "ql" in options.methods and not supports_query_likelihood(client.settings):
        raise QueryLikelihoodUnsupported(client.settings.model)
    model = client.settings.model
    settings = {
        "llm": client.settings.public(),
        "methods": list(options.methods),
        "k": options.k,
        "top_k": options.top_k,
        "negative_rank": options.negative_rank,
        "negatives": options.negatives,
        "negative_filter": vars(options.negative_filter),
    }
    with recorded_run(
        database,
        project_id,
        Stage.RERANK,
        settings,
        model=model,
        prompt_version=options.fusion_version,
    ) as run:
        report = RerankReport(run_id=run.run_id, model=model)
        run.counts, run.usage = report.counts, client.usage.as_dict
        queries = _pending(database, project_id, model, options)
        report.queries_planned = len(queries)
        progress.start(sum(len(q.pairs) for q in queries), "pairs", f"rerank ({model})")
        last = time.monotonic()
        for query in queries:
            scores = _score(client, query, options, report, progress)
            _store(database, run.run_id, model, query, scores, options, report)
            if time.monotonic() - last > 10:
                last = time.monotonic()
                run.checkpoint()
        progress.finish()
    return report


def _pending(
    database: Database, project_id: int, model: str, options: RerankOptions
) -> list[_Query]:
    done = exists().where(
        and_(
            LLMScore.query_id == GeneratedQuery.id,
            LLMScore.method == "rrf",
            LLMScore.model == model,
            LLMScore.prompt_version == options.fusion_version,
        )
    )
    mined = exists().where(Candidate.query_id == GeneratedQuery.id)
    with database.sessions() as session:
        statement = (
            select(GeneratedQuery.id, GeneratedQuery.query, GeneratedQuery.seed_passage_id)
            .where(GeneratedQuery.project_id == project_id, mined, ~done)
            .order_by(GeneratedQuery.id)
        )
        if options.limit is not None:
            statement = statement.limit(options.limit)
        queries = [_Query(qid, text, seed, []) for qid, text, seed in session.execute(statement)]
        by_id = {q.id: q for q in queries}
        ids = list(by_id)
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(
                    Candidate.query_id,
                    Candidate.passage_id,
                    Candidate.guide_score,
                    Candidate.guide_rank,
                    Passage.title,
                    Passage.text,
                )
                .join(Passage, Passage.id == Candidate.passage_id)
                .where(Candidate.query_id.in_(ids[start : start + 500]))
                .order_by(Candidate.query_id, Candidate.guide_rank)
            )
            for qid, pid, score, rank, title, text in rows:
                query = by_id[qid]
                if (rank is not None and rank <= options.top_k) or pid == query.seed:
                    query.pairs.append(_Pair(pid, title, text, score))
    return [q for q in queries if q.pairs]


def _score(
    client: LLMClient,
    query: _Query,
    options: RerankOptions,
    report: RerankReport,
    progress: Progress,
) -> dict[str, dict[int, float | None]]:
    from curator.llm.likelihood import log_likelihood

    scores: dict[str, dict[int, float | None]] = {m: {} for m in options.methods}
    for pair in query.pairs:
        if "ql" in options.methods:
            start = time.perf_counter()
            total, _ = log_likelihood(
                client.settings, build_ql_prefix(pair.title, pair.text), ql_continuation(query.text)
            )
            scores["ql"][pair.passage_id] = total
            report.seconds["ql"] = report.seconds.get("ql", 0.0) + time.perf_counter() - start
        if "rc" in options.methods:
            start = time.perf_counter()
            scores["rc"][pair.passage_id] = _rc_score(client, pair, query.text, report)
            report.seconds["rc"] = report.seconds.get("rc", 0.0) + time.perf_counter() - start
        if "guide" in options.methods:
            scores["guide"][pair.passage_id] = pair.guide_score
        report.pairs += 1
        progress.advance(1)
    return scores


def _rc_score(client: LLMClient, pair: _Pair, query: str, report: RerankReport) -> float | None:
    if client.settings.is_local:
        from curator.llm.likelihood import yes_no_log_odds

        return yes_no_log_odds(client.settings, build_rc_prefix(pair.title, pair.text, query))
    reply = client.complete(build_rc_messages(pair.title, pair.text, query), max_tokens=3)
    try:
        return parse_rc(reply.text)
    except ParseError:
        report.rc_parse_failures += 1
        return None


def _store(
    database: Database,
    run_id: int,
    model: str,
    query: _Query,
    scores: dict[str, dict[int, float | None]],
    options: RerankOptions,
    report: RerankReport,
) -> None:
    """Fuse one query's scores, propose its labels, and store scores and labels."""
    rankings = rankings_from_scores(scores)
    fused = reciprocal_rank_fusion(rankings, options.k)
    guide_scores = {p.passage_id: p.guide_score for p in query.pairs}
    order = fused_order(
        fused, {p: s for p, s in guide_scores.items() if s is not None}, seed=query.seed
    )
    proposal = propose_labels(
        order,
        fused,
        query.seed,
        guide_scores,
        options.negative_filter,
        options.negative_rank,
        options.negatives,
    )
    score_rows = _score_rows(query.id, run_id, model, scores, rankings, options)
    fused_scores = {"rrf": {pid: fused[pid] for pid in order}}
    score_rows += _score_rows(
        query.id, run_id, model, fused_scores, {"rrf": proposal.fused_rank}, options
    )
    label_rows = _label_rows(query.id, run_id, proposal)
    _write_scores_and_labels(database, query.id, model, score_rows, label_rows)
    report.queries_reranked += 1
    report.positive_changed += proposal.differs_from_seed


def _score_rows(
    query_id: int,
    run_id: int,
    model: str,
    scores: dict[str, dict[int, float | None]],
    ranks: dict[str, dict[int, int]],
    options: RerankOptions,
) -> list[dict]:
    """``llm_scores`` rows of one query: each method's score and rank of each passage
    (the guide's own scores are stored by mining, not here); ``rrf`` carries the fusion
    setting as its prompt version."""
    return [
        {
            "query_id": query_id,
            "passage_id": pid,
            "method": method,
            "score": score,
            "rank": ranks[method].get(pid),
            "model": model,
            "prompt_version": options.fusion_version
            if method == "rrf"
            else PROMPT_VERSIONS[method],
            "run_id": run_id,
        }
        for method, by_passage in scores.items()
        if method != "guide"
        for pid, score in by_passage.items()
    ]


def _label_rows(query_id: int, run_id: int, proposal) -> list[dict]:
    """``proposed_labels`` rows: the proposed positive (fused rank 1), then the negatives."""
    labelled = [(proposal.positive, LabelKind.POSITIVE.value, 1)] + [
        (pid, LabelKind.NEGATIVE.value, proposal.fused_rank[pid]) for pid in proposal.negatives
    ]
    return [
        {
            "query_id": query_id,
            "passage_id": pid,
            "label": label,
            "provenance": Provenance.LLM.value,
            "fused_rank": rank,
            "confidence": proposal.confidence,
            "differs_from_seed": proposal.differs_from_seed,
            "run_id": run_id,
        }
        for pid, label, rank in labelled
    ]


def _write_scores_and_labels(
    database: Database, query_id: int, model: str, score_rows: list[dict], label_rows: list[dict]
) -> None:
    """Insert one query's scores and proposed labels in one transaction. A score row of an
    earlier, different fusion setting may exist for the same (query, passage, method,
    model, prompt version): the first is kept, the rest are added."""
    with database.sessions() as session, session.begin():
        existing = set(
            session.execute(
                select(LLMScore.passage_id, LLMScore.method, LLMScore.prompt_version).where(
                    LLMScore.query_id == query_id, LLMScore.model == model
                )
            ).all()
        )
        fresh = [
            r
            for r in score_rows
            if (r["passage_id"], r["method"], r["prompt_version"]) not in existing
        ]
        if fresh:
            session.execute(insert(LLMScore), fresh)
        session.execute(insert(ProposedLabel), label_rows)
