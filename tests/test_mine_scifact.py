"""Mining on real SciFact: train queries and qrels stand in for generated queries."""

from __future__ import annotations

import json

import pytest
from conftest import add_queries, write
from sqlalchemy import select

from curator.pipeline.label_readers import read_beir
from curator.pipeline.negatives import GuideCandidate, NegativeFilter, select_negatives
from curator.services.ingest import ingest_path
from curator.services.mine import MineOptions, mine_candidates
from db.models import Candidate, GeneratedQuery, Passage

pytestmark = pytest.mark.slow
N_QUERIES = 150
N_DOCS = 1500


@pytest.fixture(scope="module")
def scifact_mined(scifact_dir, guide_model, tmp_path_factory):
    """A 1,500-passage SciFact corpus holding the positives of 150 train queries, mined."""
    from db import open_database
    from db.session import sqlite_url

    work = tmp_path_factory.mktemp("scifact-mine")
    scifact = read_beir(scifact_dir, "train")
    qrels = {q: list(docs) for q, docs in scifact.qrels.items()}
    queries = scifact.queries
    chosen = sorted(qrels, key=int)[:N_QUERIES]
    wanted = {d for q in chosen for d in qrels[q]}
    docs = []
    for record in scifact.documents:
        if record.doc_id in wanted or len(docs) < N_DOCS - len(wanted):
            row = {"_id": record.doc_id, "title": record.title, "text": record.text}
            docs.append(json.dumps(row) + "\n")
    corpus = write(work / "corpus.jsonl", "".join(docs))
    database = open_database(sqlite_url(work / "curator.db"))
    ingest_path(database, "scifact", corpus)
    ids = add_queries(database, "scifact", [(queries[q], qrels[q][0]) for q in chosen])
    first = mine_candidates(
        database, "scifact", work / "data", MineOptions(top_n=30), guide=guide_model
    )
    second = mine_candidates(
        database, "scifact", work / "data", MineOptions(top_n=30), guide=guide_model
    )
    return database, dict(zip(ids, (qrels[q] for q in chosen), strict=True)), first, second


def candidates_by_query(database):
    out: dict[int, list[tuple[str, float, int | None]]] = {}
    with database.sessions() as session:
        for query_id, external, score, rank in session.execute(
            select(
                Candidate.query_id, Passage.external_id, Candidate.guide_score, Candidate.guide_rank
            ).join(Passage, Passage.id == Candidate.passage_id)
        ):
            out.setdefault(query_id, []).append((external, score, rank))
    return out


def test_qrels_positives_are_among_the_top_30_for_most_queries(scifact_mined):
    database, qrels, first, _ = scifact_mined
    assert first.queries_mined == N_QUERIES and first.encoded == first.passages >= 1400
    found = candidates_by_query(database)
    hits = sum(
        any(external in qrels[q] and rank is not None for external, _, rank in found[q])
        for q in qrels
    )
    recall = hits / len(qrels)
    print(f"\nqrels positive in the guide's top 30: {hits}/{len(qrels)} = {recall:.3f}")
    assert recall >= 0.85


def test_second_run_encodes_nothing(scifact_mined):
    _, _, first, second = scifact_mined
    assert second.encoded == 0 and second.reused == first.encoded
    assert second.queries_planned == 0 and not second.index_built


def test_guard_keeps_unknown_positives_out_of_the_negatives(scifact_mined):
    """Only the seed is known to the miner; other qrels positives of the same query are
    false negatives waiting to happen. Count how many the guard lets through."""
    database, qrels, _, _ = scifact_mined
    found = candidates_by_query(database)
    with database.sessions() as session:
        seeds = dict(
            session.execute(
                select(GeneratedQuery.id, Passage.external_id).join(
                    Passage, Passage.id == GeneratedQuery.seed_passage_id
                )
            ).all()
        )
    leaked = {"guard": 0, "no guard": 0}
    multi = [q for q in qrels if len(qrels[q]) > 1]
    for q in multi:
        ranked = [(e, s, r) for e, s, r in found[q] if r is not None]
        seed_score = next(s for e, s, _ in found[q] if e == seeds[q])
        names = {i: e for i, (e, _, _) in enumerate(ranked)}
        candidates = [GuideCandidate(i, s, r) for i, (_, s, r) in enumerate(ranked)]
        seed_id = next((i for i, e in names.items() if e == seeds[q]), -1)
        for label, flt in (
            ("guard", NegativeFilter()),
            ("no guard", NegativeFilter(relative_margin=None, gist=False)),
        ):
            chosen = select_negatives(candidates, {seed_id: seed_score}, flt, limit=3)
            leaked[label] += sum(names[c.passage_id] in qrels[q] for c in chosen.negatives)
    print(
        f"\n{len(multi)} multi-positive queries; hidden positives proposed as negatives: {leaked}"
    )
    assert leaked["guard"] < leaked["no guard"]

    # with every positive known, none is ever proposed, and the margin uses the weakest one
    for q in multi:
        ranked = [(e, s, r) for e, s, r in found[q] if r is not None]
        positives = {i: s for i, (e, s, _) in enumerate(ranked) if e in qrels[q]}
        if not positives:
            continue
        chosen = select_negatives(
            [GuideCandidate(i, s, r) for i, (_, s, r) in enumerate(ranked)], positives
        )
        assert not {c.passage_id for c in chosen.negatives} & set(positives)
        assert all(c.score <= 0.95 * min(positives.values()) for c in chosen.negatives)
