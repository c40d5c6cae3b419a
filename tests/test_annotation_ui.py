"""The Annotate tab's handlers: plain values in and out, rows checked in the database."""

from __future__ import annotations

import pytest
from conftest import mine_small_project
from sqlalchemy import select

from curator.ui.annotation import CANDIDATE_COLUMNS, act, show
from db.models import Judgment

DOCS = [
    ("tea", "Tea", "Tea is made by pouring hot water over cured tea leaves."),
    ("greentea", "Green tea", "Green tea leaves are steamed, then dried."),
    ("xss", "<b>bold</b>", "<script>alert(1)</script> Coffee is brewed from beans."),
    ("rust", "Rust", "Rust is a systems programming language focused on memory safety."),
]


@pytest.fixture
def db(database, tmp_path, guide_model):
    mine_small_project(
        database,
        tmp_path,
        guide_model,
        DOCS,
        [("drink made from tea leaves", "greentea"), ("memory safe programming language", "rust")],
        top_n=4,
        rerank_by_guide=True,
    )
    return database


def decisions(database):
    with database.sessions() as session:
        return [
            tuple(r)
            for r in session.execute(
                select(Judgment.query_id, Judgment.decision, Judgment.edited_query).order_by(
                    Judgment.id
                )
            )
        ]


def test_show_gives_the_query_its_candidates_and_choices(db):
    page = show(db, "p", "ann", "not_judged")
    assert page.query == "drink made from tea leaves" and page.task
    assert len(page.rows) == 4 and all(len(r) == len(CANDIDATE_COLUMNS) for r in page.rows)
    assert page.rows[0][1] == "tea" and page.rows[0][2] == "positive (llm)"
    assert sorted(page.choices) == ["greentea", "rust", "tea", "xss"]
    assert "differs from the seed" in page.header
    assert page.seed_text.startswith("Green tea")


def test_accept_edit_override_reject_skip_and_undo(db):
    first = show(db, "p", "ann", "not_judged")
    second = act(
        db,
        "p",
        "ann",
        "not_judged",
        first.query_id,
        "accept",
        edited_query="drink brewed from tea leaves",
    )
    assert second.query == "memory safe programming language"
    assert "Saved judgment" in second.message
    third = act(
        db,
        "p",
        "ann",
        "not_judged",
        second.query_id,
        "override",
        positives=["rust"],
        negatives=["tea"],
        false_negatives=[],
    )
    assert third.query_id is None and "queue is empty" in third.header
    assert decisions(db) == [
        (first.query_id, "accept", "drink brewed from tea leaves"),
        (second.query_id, "override", None),
    ]

    undone = act(db, "p", "ann", "not_judged", None, "undo")
    assert undone.query_id == second.query_id and "undone" in undone.message
    rejected = act(
        db, "p", "ann", "not_judged", undone.query_id, "reject", reject_reason="bad_query"
    )
    assert rejected.query_id is None
    assert [d for _, d, _ in decisions(db)] == ["accept", "override", "retract", "reject"]

    skipped = act(db, "p", "bob", "all", first.query_id, "skip")
    assert skipped.query_id == second.query_id and skipped.message == "Skipped."


def test_a_refused_override_stays_on_the_query_with_the_reason(db):
    page = show(db, "p", "ann", "not_judged")
    again = act(db, "p", "ann", "not_judged", page.query_id, "override", negatives=["tea"])
    assert again.query_id == page.query_id
    assert again.message.startswith("**Not saved:**") and "positive" in again.message
    assert decisions(db) == []


def test_corpus_markup_stays_text_in_the_page(db):
    page = show(db, "p", "ann", "all")
    text_cells = [row[-1] for row in page.rows]
    assert any("<script>alert(1)</script>" in cell for cell in text_cells)  # shown as text
    assert "<" not in page.header and "<" not in page.message


def test_agreement_tables(db):
    from curator.ui.annotation import agreement_tables

    page = show(db, "p", "<i>ann</i>", "not_judged")
    act(db, "p", "<i>ann</i>", "not_judged", page.query_id, "accept")
    act(db, "p", "bob", "all", page.query_id, "accept")
    summary, people, pairs = agreement_tables(db, "p")
    assert "over 1 queries" in summary and "**1.000**" in summary  # both kept the LLM's
    assert [row[0] for row in people] == ["<i>ann</i>", "bob"]  # Dataframe cells are text
    assert pairs[0][3] == 1
