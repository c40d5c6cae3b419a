"""The curated training set: human judgments over proposals, policy, stored leak-free split."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from conftest import mine_small_project, toy_docs
from sqlalchemy import select

from curator.pipeline.training_set import (
    Example,
    JudgmentRecord,
    PassageRecord,
    QueryRecord,
    TrainingSet,
    assign_split,
    build_examples,
    generated_held_out,
    margin_mse_rows,
    resolve_example,
    teacher_scale,
    training_rows,
)
from curator.services.annotate import record_judgment, undo_last
from curator.services.training_set import load_training_set
from db.models import Passage, QuerySplit

DOCS = toy_docs("tea", "greentea", "coffee", "mars", "rust", "python")


def record(query_id=1, seed=10, judgments=(), confidence=0.9):
    return QueryRecord(
        query_id=query_id,
        seed_passage_id=seed,
        task="t",
        query="q",
        proposed_positives=[seed],
        proposed_negatives=[11, 12],
        confidence=confidence,
        judgments=list(judgments),
    )


def judgment(jid, decision="override", **kw):
    return JudgmentRecord(
        judgment_id=jid, annotator=f"a{jid}", decision=decision, provenance="human", **kw
    )


def test_policy_decides_about_unreviewed_queries():
    assert resolve_example(record(), "none") == (None, "unreviewed")
    assert resolve_example(record(confidence=0.1), "high_confidence") == (None, "low_confidence")
    example, _ = resolve_example(record(confidence=0.9), "high_confidence")
    assert example.positives == [10] and example.negatives == [11, 12] and example.source == "llm"
    example, _ = resolve_example(record(confidence=0.1), "all")
    assert example is not None
    with pytest.raises(ValueError, match="policy"):
        resolve_example(record(), "some")


def test_latest_human_judgment_overrides_proposal_and_rejects_drop():
    override = judgment(
        5, positives=[12], negatives=[10, 13], false_negatives=[11], edited_query="better query"
    )
    example, _ = resolve_example(record(judgments=[override]), "none")
    assert example.positives == [12] and example.negatives == [10, 13]
    assert example.query == "better query" and example.source == "human"
    assert 11 not in example.negatives
    later_reject = judgment(6, decision="reject", reject_reason="bad_query")
    assert resolve_example(record(judgments=[override, later_reject]), "all") == (None, "rejected")


def test_split_is_by_seed_passage_stable_and_near_the_fraction():
    records = [record(query_id=q, seed=q // 3) for q in range(3000)]  # 3 queries per seed
    examples, _ = build_examples(records, "all", seed=7, eval_fraction=0.2)
    side = {}
    for example in examples:
        assert side.setdefault(example.seed_passage_id, example.split) == example.split
    share = sum(e.split == "eval" for e in examples) / len(examples)
    assert 0.17 < share < 0.23
    again, _ = build_examples(records, "all", seed=7, eval_fraction=0.2)
    assert [e.split for e in again] == [e.split for e in examples]
    other, _ = build_examples(records, "all", seed=8, eval_fraction=0.2)
    assert [e.split for e in other] != [e.split for e in examples]
    assert assign_split(1, 7, 0.0) == "train"


def test_label_free_held_out_keeps_queries_the_guide_misses_and_scores_the_seed():
    flagged = {1: [], 2: ["inconsistent"], 3: ["copy"], 4: ["inconsistent", "junk"], 5: []}
    records = [record(query_id=q, seed=100 + q) for q in flagged]
    for item in records:
        item.flags = flagged[item.query_id]
        item.proposed_positives = [999]  # a reranker's pick: not what the seed query asked for
    records[4].judgments = [judgment(7, decision="accept")]  # reviewed: not in this fallback
    everything_held_out = {q: "eval" for q in flagged}
    examples = generated_held_out(records, stored_splits=everything_held_out)
    assert [e.query_id for e in examples] == [1, 2]
    assert [e.positives for e in examples] == [[101], [102]]
    assert all(e.split == "eval" and e.source == "llm" for e in examples)
    assert generated_held_out(records, stored_splits={q: "train" for q in flagged}) == []
    by_hash = generated_held_out(records[:2], seed=7, eval_fraction=0.5)
    expected = [
        r.query_id for r in records[:2] if assign_split(r.seed_passage_id, 7, 0.5) == "eval"
    ]
    assert [e.query_id for e in by_hash] == expected


def scored_set(margins: list[tuple[float, float]]) -> TrainingSet:
    """A set of one-positive, one-negative examples; (guide margin, QL margin) each."""
    examples = []
    for i, (guide, ql) in enumerate(margins):
        positive, negative = 2 * i, 2 * i + 1
        examples.append(
            Example(
                query_id=i,
                seed_passage_id=positive,
                task="t",
                query=f"q{i}",
                positives=[positive],
                negatives=[negative],
                guide_scores={positive: 0.5 + guide, negative: 0.5},
                llm_scores={positive: -20.0 + ql, negative: -20.0},
            )
        )
    passages = {
        p: PassageRecord(p, f"p{p}", "", f"text {p}")
        for i in range(len(margins))
        for p in (2 * i, 2 * i + 1)
    }
    return TrainingSet(examples, passages, "all", 13, 0.2, 0.5)


def test_query_likelihood_margins_are_put_on_the_guides_cosine_scale():
    training_set = scored_set([(0.2, 10.0), (0.4, 30.0)])  # guide sd 0.1, QL sd 10
    scale = teacher_scale(training_set, "ql")
    assert scale == pytest.approx(0.01)
    rows, left_out = margin_mse_rows(training_set, "train", 1, "ql", scale)
    assert left_out == 0
    assert [r["label"] for r in rows] == [pytest.approx([0.1]), pytest.approx([0.3])]
    raw, _ = margin_mse_rows(training_set, "train", 1, "ql")
    assert [r["label"] for r in raw] == [pytest.approx([10.0]), pytest.approx([30.0])]
    assert teacher_scale(training_set, "guide") == 1.0
    assert teacher_scale(scored_set([(0.2, 10.0)]), "ql") == 1.0  # one pair: no spread
    assert teacher_scale(training_set, "ql", split="eval") == 1.0  # no pair on that side


@pytest.fixture
def project(database, tmp_path, guide_model):
    ids = mine_small_project(
        database,
        tmp_path,
        guide_model,
        DOCS,
        [
            ("drink made from tea leaves", "greentea"),
            ("memory safe language", "rust"),
            ("the red planet", "mars"),
            ("roasted beans drink", "coffee"),
        ],
        top_n=6,
        rerank_by_guide=True,
    )
    with database.sessions() as session:
        passages = dict(session.execute(select(Passage.external_id, Passage.id)).all())
    return SimpleNamespace(db=database, q=ids, p=passages)


def test_training_set_from_database(project):
    db, q, p = project.db, project.q, project.p
    record_judgment(
        db,
        q[0],
        "ann",
        "override",
        positives=[p["tea"], p["greentea"]],
        negatives=[p["coffee"]],
        edited_query="which drinks come from tea leaves",
    )
    record_judgment(db, q[1], "ann", "reject", reject_reason="bad_query")
    record_judgment(db, q[2], "ann", "accept")
    record_judgment(db, q[2], "bob", "override", positives=[p["mars"]], negatives=[p["rust"]])
    undo_last(db, "bob", project="p")  # bob's override is retracted: ann's accept stands

    reviewed = load_training_set(db, "p", "none", eval_fraction=0.0)
    by_query = {e.query_id: e for e in reviewed.examples}
    assert set(by_query) == {q[0], q[2]}
    assert by_query[q[0]].query == "which drinks come from tea leaves"
    assert set(by_query[q[0]].positives) == {p["tea"], p["greentea"]}
    assert by_query[q[0]].negatives == [p["coffee"]]
    assert by_query[q[2]].positives == [p["mars"]] and by_query[q[2]].annotator == "ann"
    assert reviewed.dropped == {"rejected": 1, "unreviewed": 1}

    everything = load_training_set(db, "p", "all", eval_fraction=0.0)
    assert {e.query_id for e in everything.examples} == {q[0], q[2], q[3]}
    unreviewed = next(e for e in everything.examples if e.query_id == q[3])
    assert unreviewed.source == "llm" and unreviewed.positives

    rows = training_rows(everything, "train", negatives=1)
    assert {"anchor", "positive", "negative_1"} == set(rows[0])
    assert any(r["anchor"] == "which drinks come from tea leaves" for r in rows)


def test_split_is_stored_and_reused(project):
    db, q = project.db, project.q
    for query_id in q:
        record_judgment(db, query_id, "ann", "accept")
    first = load_training_set(db, "p", "none", seed=3, eval_fraction=0.5)
    with db.sessions() as session:
        stored = dict(
            session.execute(
                select(QuerySplit.query_id, QuerySplit.split).where(QuerySplit.seed == 3)
            ).all()
        )
    assert stored == {e.query_id: e.split for e in first.examples}
    # a different fraction later does not move queries that already have a stored split
    second = load_training_set(db, "p", "none", seed=3, eval_fraction=0.0)
    assert {e.query_id: e.split for e in second.examples} == stored


def test_a_judgment_without_negatives_keeps_the_mined_ones_except_its_positives():
    override = judgment(5, positives=[11], false_negatives=[12])
    example, _ = resolve_example(record(judgments=[override]), "none")  # proposal: 11, 12
    assert example.positives == [11] and example.negatives == []
    record_with_more = record(judgments=[judgment(6, positives=[10])])
    example, _ = resolve_example(record_with_more, "none")
    assert example.negatives == [11, 12]


def test_label_free_evaluation_holds_out_the_queries_the_guide_misses(project):
    from sqlalchemy import insert

    from curator.services.train import held_out_data
    from db.models import GeneratedQuery, QueryFlag

    db, q = project.db, project.q
    with db.sessions() as session, session.begin():
        session.execute(
            insert(QueryFlag),
            [
                {"query_id": q[1], "kind": "inconsistent", "reason": "inconsistent: rank 9"},
                {"query_id": q[2], "kind": "copy", "reason": "copy: test"},
            ],
        )
        seeds = dict(
            session.execute(select(GeneratedQuery.id, GeneratedQuery.seed_passage_id)).all()
        )
    data = held_out_data(db, "p", split_seed=13, eval_fraction=0.9)
    expected = {i for i in (q[0], q[1], q[3]) if assign_split(seeds[i], 13, 0.9) == "eval"}
    assert expected, "the toy split must hold some queries out"
    assert set(data.queries) == {str(i) for i in expected}
    assert all(data.qrels[str(i)] == {str(seeds[i]): 1} for i in expected)
    assert "held-out generated (unreviewed)" in data.name
    assert len(data.doc_ids) == len(DOCS)
