"""Mining with the real packaged MiniLM: candidates, BM25, labels, caches, resume."""

from __future__ import annotations

import json

import pytest
from conftest import add_queries, write
from sqlalchemy import func, select

from curator.pipeline.negatives import NegativeFilter
from curator.services.ingest import ingest_path
from curator.services.mine import MineOptions, mine_candidates, mining_diagnostics
from db.models import Candidate, Passage, PipelineRun, ProposedLabel

TOPICS = [
    ("Coffee", "Coffee is brewed from roasted coffee beans, the seeds of Coffea berries."),
    ("Tea", "Tea is an aromatic beverage made by pouring hot water over cured tea leaves."),
    ("Volcano", "A volcano is a rupture in the crust through which lava and ash escape."),
    ("Glacier", "A glacier is a persistent body of dense ice that moves under its own weight."),
    ("Python", "Python is a high-level programming language known for readable syntax."),
    ("Rust", "Rust is a systems programming language focused on memory safety."),
    ("Piano", "The piano is a keyboard instrument whose strings are struck by hammers."),
    ("Violin", "The violin is a bowed string instrument with four strings tuned in fifths."),
    ("Mars", "Mars is the fourth planet from the Sun, a cold desert world with red dust."),
    ("Venus", "Venus is the second planet from the Sun, with a thick toxic atmosphere."),
    ("Salmon", "Salmon are fish that hatch in fresh water, migrate to the sea and return."),
    ("Oak", "Oaks are trees of the genus Quercus that bear acorns as their fruit."),
]


@pytest.fixture
def small(database, tmp_path):
    rows = [{"_id": t.lower(), "title": t, "text": x} for t, x in TOPICS]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    add_queries(
        database,
        "p",
        [
            ("which drink is made from tea leaves", "tea"),
            ("planet with a toxic atmosphere", "venus"),
            ("a programming language focused on memory safety", "rust"),
        ],
    )
    return database


def test_candidates_bm25_and_labels_are_stored(small, tmp_path, guide_model):
    options = MineOptions(top_n=4, negatives_per_query=2)
    report = mine_candidates(small, "p", tmp_path / "data", options, guide=guide_model)
    assert (report.passages, report.encoded, report.queries_mined) == (12, 12, 3)
    with small.sessions() as session:
        rows = session.execute(
            select(
                Candidate.query_id,
                Passage.external_id,
                Candidate.guide_rank,
                Candidate.guide_score,
                Candidate.bm25_rank,
                Candidate.bm25_score,
            )
            .join(Passage, Passage.id == Candidate.passage_id)
            .order_by(Candidate.query_id, Candidate.guide_rank)
        ).all()
        labels = session.execute(
            select(
                ProposedLabel.query_id,
                Passage.external_id,
                ProposedLabel.label,
                ProposedLabel.provenance,
            ).join(Passage, Passage.id == ProposedLabel.passage_id)
        ).all()
    by_query = {}
    for query_id, external, rank, score, bm25_rank, bm25_score in rows:
        by_query.setdefault(query_id, []).append((external, rank, score, bm25_rank, bm25_score))
    tea, venus, rust = by_query.values()
    assert tea[0][:2] == ("tea", 1) and venus[0][:2] == ("venus", 1) and rust[0][:2] == ("rust", 1)
    assert all(len(c) == 4 for c in by_query.values())
    scores = [c[2] for c in tea]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    assert tea[0][3] == 1 and tea[0][4] > 0  # BM25 ranks the tea passage first too
    positives = {(q, e) for q, e, label, prov in labels if label == "positive"}
    negatives = [(q, e, prov) for q, e, label, prov in labels if label == "negative"]
    assert {e for _, e in positives} == {"tea", "venus", "rust"}
    assert all(prov == "guide" for _, _, prov in negatives)
    assert not {(q, e) for q, e, _ in negatives} & positives
    assert 1 <= len(negatives) <= 6


def test_seed_outside_the_top_n_is_still_a_candidate(small, tmp_path, guide_model):
    add_queries(small, "p", [("a keyboard instrument with hammers", "oak")])  # a bad seed
    mine_candidates(small, "p", tmp_path / "data", MineOptions(top_n=2), guide=guide_model)
    with small.sessions() as session:
        oak = session.execute(
            select(Candidate.guide_rank, Candidate.guide_score)
            .join(Passage, Passage.id == Candidate.passage_id)
            .where(Passage.external_id == "oak")
        ).one()
    assert oak.guide_rank is None and oak.guide_score is not None


def test_second_run_reuses_embeddings_and_indexes_and_mines_only_new_queries(
    small, tmp_path, guide_model
):
    data = tmp_path / "data"
    first = mine_candidates(small, "p", data, MineOptions(top_n=3), guide=guide_model)
    assert first.encoded == 12 and first.index_built and first.bm25_built
    add_queries(small, "p", [("fish that migrate from the sea to rivers", "salmon")])
    second = mine_candidates(small, "p", data, MineOptions(top_n=3), guide=guide_model)
    assert (second.encoded, second.reused) == (0, 12)
    assert not second.index_built and not second.bm25_built
    assert (second.queries_planned, second.queries_mined) == (1, 1)
    with small.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 4 * 3
        statuses = list(
            session.scalars(select(PipelineRun.status).where(PipelineRun.stage == "mine"))
        )
    assert statuses == ["done", "done"]


def test_new_passages_are_encoded_alone_and_the_index_is_rebuilt(small, tmp_path, guide_model):
    data = tmp_path / "data"
    mine_candidates(small, "p", data, MineOptions(top_n=3), guide=guide_model)
    ingest_path(
        small,
        "p",
        write(
            tmp_path / "more.jsonl",
            json.dumps(
                {"_id": "maple", "title": "Maple", "text": "Maple trees give sap for syrup."}
            ),
        ),
    )
    report = mine_candidates(small, "p", data, MineOptions(top_n=3), guide=guide_model)
    assert (report.encoded, report.reused) == (1, 12) and report.index_built


def test_diagnostics_for_a_threshold(small, tmp_path, guide_model):
    mine_candidates(small, "p", tmp_path / "data", MineOptions(top_n=12), guide=guide_model)
    loose = mining_diagnostics(small, "p", NegativeFilter(relative_margin=None, gist=False))
    strict = mining_diagnostics(small, "p", NegativeFilter(relative_margin=0.5))
    assert loose.queries == strict.queries == 3
    assert loose.kept == loose.candidates == 3 * 11
    assert strict.kept < loose.kept and sum(strict.dropped.values()) == loose.kept - strict.kept
    assert len(strict.relative_scores) == 33 and max(strict.relative_scores) < 1.0


def test_cli_diagnose_prints_the_guard_histogram(small, tmp_path, guide_model, capsys):
    """``curator diagnose`` bins the ratios with the app's function: one bar edge at the
    relative margin, bars past it drawn with x, every candidate counted once."""
    from curator.cli import main

    mine_candidates(small, "p", tmp_path / "data", MineOptions(top_n=12), guide=guide_model)
    capsys.readouterr()
    data = str(tmp_path / "data")
    where = ["--data-dir", data, "--db", small.url, "--project", "p"]
    code = main([*where, "diagnose", "--relative-margin", "0.5"])
    out = capsys.readouterr().out
    assert code == 0 and "(in the rank window; x: >= 0.50)" in out
    bars = [line.split() for line in out.splitlines() if line.startswith("  ") and "-" in line]
    assert sum(int(bar[-1]) for bar in bars) == 33
    assert any(bar[0].endswith("-0.50") for bar in bars)  # an edge at the cut
    ratios = mining_diagnostics(small, "p", NegativeFilter(relative_margin=0.5)).relative_scores
    past = sum(int(bar[-1]) for bar in bars if "x" in bar[1])
    assert past == sum(r >= 0.5 for r in ratios) > 0


def test_a_project_without_passages_is_refused(database, tmp_path, guide_model):
    from curator.services.projects import ensure_project

    ensure_project(database, "empty")
    with pytest.raises(ValueError, match="no passages"):
        mine_candidates(database, "empty", tmp_path / "data", guide=guide_model)


def test_a_second_run_that_planned_the_same_queries_stores_nothing_twice(
    small, tmp_path, guide_model, monkeypatch
):
    """Two `curator mine` on one data folder: the second planned its queries before the
    first stored them. It used to die with IntegrityError (UNIQUE candidates.query_id,
    passage_id); now it leaves those queries to the first run."""
    import curator.services.mine as mine

    options = MineOptions(top_n=4, negatives_per_query=2)
    planned = mine._pending_queries(small, 1, None)
    first = mine_candidates(small, "p", tmp_path / "data", options, guide=guide_model)
    assert first.queries_mined == 3

    def count(table):
        with small.sessions() as session:
            return session.scalar(select(func.count()).select_from(table))

    before = (count(Candidate), count(ProposedLabel))
    monkeypatch.setattr(mine, "_pending_queries", lambda *args: planned)
    second = mine_candidates(small, "p", tmp_path / "data", options, guide=guide_model)
    assert (second.queries_planned, second.queries_mined, second.candidates) == (3, 0, 0)
    assert (count(Candidate), count(ProposedLabel)) == before
    with small.sessions() as session:
        status = session.scalars(select(PipelineRun.status).where(PipelineRun.stage == "mine"))
        assert list(status) == ["done", "done"]


def test_a_second_run_on_the_same_data_folder_waits_and_says_one_is_running(tmp_path, caplog):
    import threading
    import time

    from curator.services.runs import exclusive

    lock, what = tmp_path / "data" / "mine.lock", "`curator mine`"
    order = []
    with exclusive(lock, what):
        with (
            pytest.raises(
                RuntimeError, match=r"another `curator mine` is running on .*\(.*pid \d+ on "
            ),
            exclusive(lock, what, wait=False),
        ):
            pass

        def second_run():
            with exclusive(lock, what):
                order.append(2)

        waiting = threading.Thread(target=second_run)
        waiting.start()
        time.sleep(0.5)
        order.append(1)
    waiting.join(10)
    assert order == [1, 2]
    assert "another `curator mine` is running" in caplog.text and "waiting" in caplog.text
