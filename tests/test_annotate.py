"""Annotation actions on a real SQLite file: every action appends rows, nothing is lost."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from conftest import add_queries, mine_small_project, toy_docs, write
from sqlalchemy import func, select

from curator.services.annotate import (
    JudgmentError,
    effective_judgments,
    next_query,
    query_view,
    record_judgment,
    undo_last,
)
from db.models import Judgment, JudgmentPassage, Passage, ProposedLabel, Provenance

DOCS = toy_docs("tea", "greentea", "coffee", "mars", "rust")


def effective_on(database, query_id: int) -> dict[str, Judgment]:
    """annotator -> their effective judgment on one query."""
    with database.sessions() as session:
        found = effective_judgments(session, Judgment.query_id == query_id)
    return found.get(query_id, {})


@pytest.fixture
def project(database, tmp_path, guide_model):
    ids = mine_small_project(
        database,
        tmp_path,
        guide_model,
        DOCS,
        [
            ("drink made from tea leaves", "greentea"),
            ("memory safe programming language", "rust"),
            ("the red planet", "mars"),
        ],
        top_n=5,
        rerank_by_guide=True,
    )
    with database.sessions() as session:
        passages = dict(session.execute(select(Passage.external_id, Passage.id)).all())
    return SimpleNamespace(db=database, queries=ids, p=passages)


def marked(database, judgment_id):
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.external_id, JudgmentPassage.label)
            .join(Passage, Passage.id == JudgmentPassage.passage_id)
            .where(JudgmentPassage.judgment_id == judgment_id)
        ).all()
    return {(e, label) for e, label in rows}


def test_query_view_shows_scores_ranks_and_the_proposal(project):
    view = query_view(project.db, project.queries[0])
    assert view.query == "drink made from tea leaves"
    assert view.seed_passage_id == project.p["greentea"]
    first = view.candidates[0]
    assert (first.external_id, first.fused_rank, first.proposed, first.provenance) == (
        "tea",
        1,
        "positive",
        "llm",
    )
    assert view.positive_changed and 0 <= view.confidence <= 1
    seed = next(c for c in view.candidates if c.is_seed)
    assert seed.external_id == "greentea" and seed.guide_rank is not None
    assert all(c.bm25_rank is None or c.bm25_rank >= 1 for c in view.candidates)


def test_accept_stores_the_proposal_it_accepted(project):
    judgment = record_judgment(project.db, project.queries[0], "ann", "accept")
    positives, negatives = query_view(project.db, project.queries[0]).proposal()
    stored = marked(project.db, judgment)
    assert {(e, lab) for e, lab in stored if lab == "positive"} == {("tea", "positive")}
    assert len(stored) == len(positives) + len(negatives)


def test_override_with_several_positives_negatives_and_false_negatives(project):
    judgment = record_judgment(
        project.db,
        project.queries[0],
        "ann",
        "override",
        positives=[project.p["tea"], project.p["greentea"]],
        negatives=[project.p["mars"]],
        false_negatives=[project.p["coffee"]],
        note="both tea passages answer it",
    )
    assert marked(project.db, judgment) == {
        ("tea", "positive"),
        ("greentea", "positive"),
        ("mars", "negative"),
        ("coffee", "false_negative"),
    }
    with project.db.sessions() as session:
        row = session.get(Judgment, judgment)
    assert (row.decision, row.note) == ("override", "both tea passages answer it")


def test_reject_needs_a_reason_and_stores_it(project):
    with pytest.raises(JudgmentError, match="reason"):
        record_judgment(project.db, project.queries[2], "ann", "reject")
    judgment = record_judgment(
        project.db, project.queries[2], "ann", "reject", reject_reason="bad_query"
    )
    with project.db.sessions() as session:
        row = session.get(Judgment, judgment)
    assert (row.decision, row.reject_reason) == ("reject", "bad_query")
    assert marked(project.db, judgment) == set()


def test_edited_query_is_kept_with_the_judgment(project):
    judgment = record_judgment(
        project.db,
        project.queries[1],
        "ann",
        "accept",
        edited_query="  which   language is memory safe ",
    )
    with project.db.sessions() as session:
        assert session.get(Judgment, judgment).edited_query == "which language is memory safe"


def test_undo_appends_a_retraction_and_history_stays(project):
    first = record_judgment(project.db, project.queries[0], "ann", "accept")
    second = record_judgment(
        project.db, project.queries[1], "ann", "reject", reject_reason="unanswerable"
    )
    assert undo_last(project.db, "ann", project="p") == second
    assert undo_last(project.db, "ann", project="p") == first
    assert undo_last(project.db, "ann", project="p") is None
    with project.db.sessions() as session:
        decisions = list(session.scalars(select(Judgment.decision).order_by(Judgment.id)))
    assert decisions == ["accept", "reject", "retract", "retract"]
    assert effective_on(project.db, project.queries[0]) == {}


def test_effective_judgment_is_the_latest_per_annotator(project):
    record_judgment(project.db, project.queries[0], "ann", "accept")
    later = record_judgment(project.db, project.queries[0], "ann", "reject", reject_reason="other")
    record_judgment(project.db, project.queries[0], "bob", "accept")
    effective = effective_on(project.db, project.queries[0])
    assert set(effective) == {"ann", "bob"} and effective["ann"].id == later


def test_bad_judgments_are_refused_and_store_nothing(project):
    q = project.queries[0]
    with pytest.raises(JudgmentError, match="at least one positive"):
        record_judgment(project.db, q, "ann", "override", negatives=[project.p["mars"]])
    with pytest.raises(JudgmentError, match="only one label"):
        record_judgment(
            project.db,
            q,
            "ann",
            "override",
            positives=[project.p["tea"]],
            negatives=[project.p["tea"]],
        )
    with pytest.raises(JudgmentError, match="not in this query's project"):
        record_judgment(project.db, q, "ann", "override", positives=[999_999])
    with pytest.raises(JudgmentError, match="decision"):
        record_judgment(project.db, q, "ann", "maybe")
    with pytest.raises(JudgmentError, match="annotator"):
        record_judgment(project.db, q, " ", "accept")
    with project.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Judgment)) == 0


def test_queues(project):
    q1, q2, q3 = project.queries
    assert next_query(project.db, "p", "ann") == q1
    assert next_query(project.db, "p", "ann", after=q1) == q2
    assert next_query(project.db, "p", "ann", "positive_changed") == q1
    record_judgment(project.db, q1, "ann", "accept")
    assert next_query(project.db, "p", "ann") == q2
    assert next_query(project.db, "p", "ann", "judged_by_me") == q1
    assert next_query(project.db, "p", "bob", "fewer_than_n") == q1  # ann alone judged it
    assert next_query(project.db, "p", "ann", "fewer_than_n") == q2  # not mine again
    record_judgment(project.db, q1, "bob", "accept")
    assert next_query(project.db, "p", "carl", "fewer_than_n") == q2  # q1 has 2 now
    low = next_query(project.db, "p", "ann", "low_confidence")
    assert low in (q1, q2, q3)
    undo_last(project.db, "ann", project="p")
    assert next_query(project.db, "p", "ann", "judged_by_me") is None


def test_positive_changed_and_low_confidence_follow_the_latest_llm_positive(project):
    """A later rerank's positive replaces the earlier one in both queues: q1 leaves
    "positive changed" when its newest LLM positive is the seed, q2 enters it, and the
    newest confidences order "low confidence"."""
    from curator.services.annotate import queue_position

    q1, q2, q3 = project.queries
    assert next_query(project.db, "p", "ann", "positive_changed") == q1
    later = [(q1, False, 0.9), (q2, True, 0.05), (q3, False, 0.5)]
    with project.db.sessions() as session:
        for query_id, differs, confidence in later:
            session.add(
                ProposedLabel(
                    query_id=query_id,
                    passage_id=project.p["coffee"],
                    label="positive",
                    provenance=Provenance.LLM.value,
                    confidence=confidence,
                    differs_from_seed=differs,
                )
            )
        session.commit()
    assert next_query(project.db, "p", "ann", "positive_changed") == q2
    assert queue_position(project.db, "p", "ann", "positive_changed", q2) == (1, 1)
    assert next_query(project.db, "p", "ann", "low_confidence") == q2
    assert next_query(project.db, "p", "ann", "low_confidence", after=q2) == q3
    assert queue_position(project.db, "p", "ann", "low_confidence", q3) == (2, 3)


def test_twenty_concurrent_annotators_lose_nothing(project):
    errors = []

    def annotate(worker: int) -> None:
        try:
            for i in range(50):
                query = project.queries[(worker + i) % 3]
                record_judgment(
                    project.db,
                    query,
                    f"annotator-{worker}",
                    "override",
                    positives=[project.p["tea"]],
                    negatives=[project.p["mars"]],
                    note=f"{worker}:{i}",
                )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(w,)) for w in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with project.db.sessions() as session:
        notes = list(session.scalars(select(Judgment.note)))
        passages = session.scalar(select(func.count()).select_from(JudgmentPassage))
    assert len(notes) == 1000 and len(set(notes)) == 1000 and passages == 2000


def test_agreement_report(project):
    from curator.services.annotate import agreement_report

    q1, q2, q3 = project.queries
    mars, rust = project.p["mars"], project.p["rust"]
    for name in ("ann", "bob"):
        record_judgment(project.db, q1, name, "accept")  # both keep the LLM's tea
        record_judgment(project.db, q2, name, "override", positives=[rust])
    record_judgment(project.db, q3, "ann", "override", positives=[mars])
    record_judgment(project.db, q3, "bob", "reject", reject_reason="bad_query")
    report = agreement_report(project.db, "p")
    assert report.queries_with_several == 3
    ((a, b, kappa, shared),) = report.pairs
    assert (a, b, shared) == ("ann", "bob", 3) and kappa == pytest.approx(0.5714, abs=1e-4)
    assert report.alpha is not None and 0 < report.alpha < 1
    by_name = {name: (judged, with_llm, rate) for name, judged, with_llm, rate in report.annotators}
    # the reranker proposed tea, rust and mars (guide-only fusion): ann kept all 3
    assert by_name["ann"] == (3, 3, 1.0) and by_name["bob"] == (3, 3, pytest.approx(2 / 3))
    assert report.llm_accepted == pytest.approx(5 / 6)


def test_undo_takes_back_only_a_judgment_of_the_same_project(database, tmp_path):
    """ann judged in project a, then in project b: undo in a retracts a's judgment, not
    b's newer one (undo used to ignore the project)."""
    from curator.services.ingest import ingest_path

    judged = {}
    for name in ("a", "b"):
        corpus = write(tmp_path / f"{name}.jsonl", '{"_id": "d", "text": "a passage"}\n')
        ingest_path(database, name, corpus)
        (query,) = add_queries(database, name, [("a query", "d")])
        judged[name] = record_judgment(
            database, query, "ann", "reject", reject_reason="unanswerable"
        )
    assert undo_last(database, "ann", project="a") == judged["a"]
    assert undo_last(database, "ann", project="a") is None
    assert undo_last(database, "ann", project="b") == judged["b"]


def test_first_judgments_under_one_new_name_at_once_share_one_account(database):
    from concurrent.futures import ThreadPoolExecutor

    from curator.services.annotate import annotator_id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: annotator_id(database, "newcomer"), range(16)))
    assert len(ids) == 1
