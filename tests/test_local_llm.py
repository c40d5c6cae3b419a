"""The embedded local LLM for real: Gemma 3 270M through llama-cpp-python and litellm."""

from __future__ import annotations

import json
import random

import pytest
from conftest import scifact_subset
from sqlalchemy import select

from curator.llm.client import LLMClient
from curator.llm.likelihood import log_likelihood
from curator.pipeline.likelihood import build_ql_prefix, ql_continuation
from curator.services.generate import GenerateOptions, generate_queries
from curator.services.ingest import ingest_path
from db.models import GeneratedQuery

pytestmark = pytest.mark.slow


def test_generates_and_stores_real_queries_for_five_scifact_passages(
    database, scifact_dir, local_llm, tmp_path
):
    ingest_path(database, "p", scifact_subset(scifact_dir, tmp_path / "c.jsonl", 5))
    report = generate_queries(database, "p", LLMClient(local_llm))
    assert report.planned == 5 and report.ok + report.parse_failed == 5
    assert report.ok >= 3, "the embedded model should parse on most passages"
    with database.sessions() as session:
        stored = list(session.scalars(select(GeneratedQuery)))
    assert len(stored) == 5
    for row in stored:
        assert row.model == "local/gemma3-270m" and row.raw_output
        if row.status == "ok":
            assert row.task and 2 <= len(row.query.split()) <= 64
        else:
            assert row.error


def test_query_likelihood_prefers_the_relevant_passage(scifact_dir, local_llm):
    from curator.pipeline.label_readers import read_beir

    scifact = read_beir(scifact_dir, "test")
    corpus = {d.doc_id: {"title": d.title, "text": d.text} for d in scifact.documents}
    queries = scifact.queries
    # the first 10 lines of test.tsv (dicts keep the file's order)
    qrels = [(q, d) for q, docs in scifact.qrels.items() for d in docs][:10]
    doc_ids = sorted(corpus)
    wins = 0
    for query_id, doc_id in qrels:
        unrelated = corpus[random.Random(query_id).choice(doc_ids)]
        scores = [
            log_likelihood(
                local_llm,
                build_ql_prefix(d["title"], d["text"]),
                ql_continuation(queries[query_id]),
            )[0]
            for d in (corpus[doc_id], unrelated)
        ]
        wins += scores[0] > scores[1]
    assert wins >= 9, f"relevant passage ranked first for only {wins} of 10 queries"


def test_best_of_keeps_the_most_likely_query(database, scifact_dir, local_llm, tmp_path):
    ingest_path(database, "p", scifact_subset(scifact_dir, tmp_path / "c.jsonl", 2, skip=10))
    report = generate_queries(database, "p", LLMClient(local_llm), GenerateOptions(best_of=3))
    assert report.ok + report.parse_failed == 2
    with database.sessions() as session:
        rows = list(session.scalars(select(GeneratedQuery).where(GeneratedQuery.status == "ok")))
    assert rows
    for row in rows:
        candidates = json.loads(row.note)["best_of"]
        best = max(candidates, key=lambda c: c["mean_logprob"])
        assert row.query == best["query"]


def test_local_provider_is_appended_to_litellm_providers(local_llm):
    import litellm

    sentinel = {"provider": "someone-elses", "custom_handler": object()}
    litellm.custom_provider_map.append(sentinel)
    try:
        client = LLMClient(local_llm)
        client.complete(
            [{"role": "user", "content": "Passage: water boils\nQuery:"}], stop=["\n"], max_tokens=8
        )
        providers = [item["provider"] for item in litellm.custom_provider_map]
        assert "someone-elses" in providers and providers.count("local") == 1
    finally:
        litellm.custom_provider_map.remove(sentinel)
