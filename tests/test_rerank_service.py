"""The rerank service on a real SQLite file: fusion rows, proposed labels, resume."""

from __future__ import annotations

from types import SimpleNamespace

import litellm
import pytest
from conftest import mine_small_project
from sqlalchemy import select

from curator.llm.client import LLMClient, LLMSettings
from curator.llm.likelihood import QueryLikelihoodUnsupported
from curator.services.rerank import RerankOptions, rerank_queries
from db.models import LLMScore, Passage, ProposedLabel

DOCS = [
    ("tea", "Tea", "Tea is made by pouring hot water over cured tea leaves."),
    ("greentea", "Green tea", "Green tea leaves are steamed, not oxidised, then dried."),
    ("coffee", "Coffee", "Coffee is brewed from roasted coffee beans."),
    ("mars", "Mars", "Mars is the fourth planet from the Sun."),
    ("oak", "Oak", "Oaks are trees that bear acorns."),
    ("rust", "Rust", "Rust is a systems programming language focused on memory safety."),
]


@pytest.fixture
def mined(database, tmp_path, guide_model):
    # the seed of the first query is not its best passage: reranking should say so
    mine_small_project(
        database,
        tmp_path,
        guide_model,
        DOCS,
        [("drink made from tea leaves", "greentea"), ("memory safe programming language", "rust")],
        top_n=6,
    )
    return database


def remote(replies: list[str]) -> LLMClient:
    client = LLMClient(LLMSettings(model="openai/gpt-4o-mini"), sleep=lambda s: None)
    real = client.litellm.completion
    queue = list(replies)
    client._litellm = SimpleNamespace(
        completion=lambda **kw: real(**kw, mock_response=queue.pop(0) if queue else "no"),
        completion_cost=litellm.completion_cost,
    )
    return client


def labels(database):
    with database.sessions() as session:
        return session.execute(
            select(
                ProposedLabel.query_id,
                Passage.external_id,
                ProposedLabel.label,
                ProposedLabel.provenance,
                ProposedLabel.fused_rank,
                ProposedLabel.confidence,
                ProposedLabel.differs_from_seed,
            )
            .join(Passage, Passage.id == ProposedLabel.passage_id)
            .where(ProposedLabel.provenance == "llm")
            .order_by(ProposedLabel.id)
        ).all()


def test_guide_only_fusion_proposes_the_guide_top_passage(mined):
    report = rerank_queries(
        mined, "p", remote([]), RerankOptions(methods=("guide",), negative_rank=3)
    )
    assert (report.queries_reranked, report.pairs) == (2, 12)
    rows = labels(mined)
    positives = {q: (e, changed) for q, e, label, _, _, _, changed in rows if label == "positive"}
    tea_query, rust_query = sorted(positives)
    assert positives[tea_query] == ("tea", True)  # the seed was green tea
    assert positives[rust_query] == ("rust", False)
    assert report.positive_changed == 1
    assert all(0 <= conf <= 1 for *_, conf, _ in rows)
    with mined.sessions() as session:
        fused = session.execute(
            select(LLMScore.method, LLMScore.rank).where(LLMScore.query_id == tea_query)
        ).all()
    assert sorted(r for m, r in fused if m == "rrf") == [1, 2, 3, 4, 5, 6]


def test_remote_relevance_classification_is_parsed_and_fused(mined):
    # the first query's six pairs: only "coffee"... order follows guide rank; say yes to #2
    client = remote(["no", "Yes.", "no", "no", "maybe", "no"] + ["no"] * 6)
    report = rerank_queries(mined, "p", client, RerankOptions(methods=("rc",), limit=1))
    assert report.rc_parse_failures == 1 and report.queries_reranked == 1
    with mined.sessions() as session:
        rc = session.execute(
            select(LLMScore.score, LLMScore.rank).where(LLMScore.method == "rc")
        ).all()
    assert sorted(s for s, _ in rc if s is not None) == [0, 0, 0, 0, 1]
    assert [r for s, r in rc if s is None] == [None]
    positive = [e for _, e, label, *_ in labels(mined) if label == "positive"]
    assert len(positive) == 1


def test_resume_and_no_double_work(mined):
    first = rerank_queries(mined, "p", remote([]), RerankOptions(methods=("guide",), limit=1))
    second = rerank_queries(mined, "p", remote([]), RerankOptions(methods=("guide",)))
    third = rerank_queries(mined, "p", remote([]), RerankOptions(methods=("guide",)))
    assert (first.queries_reranked, second.queries_reranked, third.queries_reranked) == (1, 1, 0)
    # another fusion setting is another piece of work
    other = rerank_queries(mined, "p", remote([]), RerankOptions(methods=("guide",), k=60))
    assert other.queries_reranked == 2


def test_query_likelihood_with_a_remote_model_is_refused_clearly(mined):
    with pytest.raises(QueryLikelihoodUnsupported, match="does not return"):
        rerank_queries(mined, "p", remote([]), RerankOptions(methods=("ql", "guide")))


def test_unknown_methods_are_refused():
    with pytest.raises(ValueError, match="methods"):
        RerankOptions(methods=("bm25",))


@pytest.mark.slow
def test_local_model_scores_ql_and_rc_and_fuses(mined, local_llm):
    report = rerank_queries(
        mined,
        "p",
        LLMClient(local_llm),
        RerankOptions(methods=("ql", "rc", "guide"), negative_rank=4),
    )
    assert (report.queries_reranked, report.pairs) == (2, 12)
    assert set(report.ms_per_pair()) == {"ql", "rc"}
    with mined.sessions() as session:
        rows = session.execute(
            select(LLMScore.method, LLMScore.score, LLMScore.rank, LLMScore.prompt_version)
        ).all()
    by_method = {}
    for method, score, rank, version in rows:
        by_method.setdefault(method, []).append((score, rank, version))
    assert {m: len(v) for m, v in by_method.items()} == {"ql": 12, "rc": 12, "rrf": 12}
    assert all(score < 0 for score, _, _ in by_method["ql"])  # log-probabilities
    assert {v for _, _, v in by_method["ql"]} == {"ql-fewshot-v2"}
    positives = [e for _, e, label, *_ in labels(mined) if label == "positive"]
    assert "rust" in positives  # the programming-language query keeps its obvious passage


def test_status_counts_reranked_queries_not_mined_ones(mined):
    from curator.services.status import project_status

    before = project_status(mined, "p").counts
    assert (before["queries_mined"], before["queries_reranked"]) == (2, 0)
    rerank_queries(mined, "p", remote([]), RerankOptions(methods=("guide",), limit=1))
    after = project_status(mined, "p").counts
    assert after["queries_reranked"] == 1 and after["llm_scores"] == 6


def test_query_likelihood_through_an_openai_compatible_server(mined, completions_server):
    client = LLMClient(LLMSettings(model="openai/served", api_base=completions_server.url))
    report = rerank_queries(mined, "p", client, RerankOptions(methods=("ql", "guide")))
    assert report.queries_reranked == 2 and set(report.ms_per_pair()) == {"ql"}
    with mined.sessions() as session:
        ql = session.scalars(select(LLMScore.score).where(LLMScore.method == "ql")).all()
    assert len(ql) == 12 and all(score < 0 for score in ql)
    assert len(completions_server.requests) == 12
