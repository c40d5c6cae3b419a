"""The Annotate tab's handlers: plain values in and out, rows checked in the database."""

from __future__ import annotations

import json

import pytest
from conftest import mine_small_project
from sqlalchemy import select

from curator.ui.annotation import act, card_html, show
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


def test_show_gives_the_card_seed_first_proposal_pre_marked_and_the_queue_position(db):
    page = show(db, "p", "ann", "not_judged")
    assert page.query == "drink made from tea leaves" and page.task
    assert sorted(page.choices) == ["greentea", "rust", "tea", "xss"]
    seed, proposed = page.rows[0], page.rows[1]
    assert seed.external_id == "greentea" and seed.is_seed and seed.key == "1"
    assert proposed.external_id == "tea" and proposed.mark == "positive"
    assert proposed.proposed == "positive (llm)" and proposed.key == "2"
    assert "fused #1" in proposed.scores and "guide 0." in proposed.scores
    assert [r.key for r in page.rows] == ["1", "2", "3", "4"]
    assert "differs from the seed" in page.header
    assert (page.left, page.total) == (2, 2) and "2 of 2" in page.position
    html_card = card_html(page)
    assert f'data-query="{page.query_id}"' in html_card
    assert 'data-pid="tea" data-mark="positive"' in html_card


def marks(page, **marked) -> str:
    return json.dumps({"query": page.query_id, **marked})


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
    assert (second.left, second.total) == (1, 1)
    third = act(
        db,
        "p",
        "ann",
        "not_judged",
        second.query_id,
        "override",
        marks=marks(second, positive=["rust"], negative=["tea"]),
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


def test_marks_from_another_card_or_unknown_passages_are_refused_and_nothing_is_stored(db):
    first = show(db, "p", "ann", "not_judged")
    second = act(db, "p", "ann", "all", first.query_id, "skip")
    stale = act(
        db, "p", "ann", "all", second.query_id, "override", marks=marks(first, positive=["tea"])
    )
    assert stale.query_id == second.query_id
    assert stale.message.startswith("**Not saved:**") and "not the query shown" in stale.message
    unknown = act(
        db, "p", "ann", "all", second.query_id, "override", marks=marks(second, positive=["nope"])
    )
    assert "nope not among" in unknown.message
    assert decisions(db) == []


def test_marks_equal_to_the_proposal_are_an_accept_and_a_false_negative_replaces_a_negative(db):
    from curator.services.annotate import effective_judgments

    page = show(db, "p", "ann", "not_judged")
    proposal = {
        r.mark: [x.external_id for x in page.rows if x.mark == r.mark] for r in page.rows if r.mark
    }
    same = act(
        db, "p", "ann", "not_judged", page.query_id, "override", marks=marks(page, **proposal)
    )
    assert "(accept)" in same.message
    negative = next(r.external_id for r in same.rows if r.mark == "negative")
    fixed = act(
        db,
        "p",
        "ann",
        "not_judged",
        same.query_id,
        "accept",
        marks=marks(same, false_negative=[negative]),
    )
    assert "(accept)" in fixed.message
    with db.sessions() as session:
        effective = effective_judgments(session, Judgment.query_id == same.query_id)
    judgment = effective[same.query_id]["ann"]
    labels = {p.label for p in judgment.passages}
    assert "false_negative" in labels and "negative" not in labels
    assert [d for _, d, _ in decisions(db)] == ["accept", "accept"]


def test_corpus_markup_stays_text_in_the_page(db):
    page = show(db, "p", "ann", "all")
    assert any("<script>alert(1)</script>" in row.text for row in page.rows)
    card = card_html(page)
    assert "<script>" not in card and "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "<b>bold</b>" not in card and "&lt;b&gt;bold&lt;/b&gt;" in card
    assert "<" not in page.header and "<" not in page.message


def test_agreement_tables(db, tmp_path):
    from curator.ui.agreement import agreement_tables
    from curator.ui.context import Context

    ctx = Context(db, "p", tmp_path)

    page = show(db, "p", "<i>ann</i>", "not_judged")
    act(db, "p", "<i>ann</i>", "not_judged", page.query_id, "accept")
    act(db, "p", "bob", "all", page.query_id, "accept")
    summary, people, pairs = agreement_tables(ctx)
    assert "over 1 queries" in summary and "**1.000**" in summary  # both kept the LLM's
    assert [row[0] for row in people] == ["<i>ann</i>", "bob"]  # Dataframe cells are text
    assert pairs[0][3] == 1


def test_a_passage_edit_is_kept_with_the_judgment_and_used_by_the_export(db, tmp_path):
    import zipfile

    from curator.ui.export_panel import run_export
    from db.models import JudgmentPassage, Passage

    fixed = "Green tea leaves are steamed, then dried; never fermented."
    page = show(db, "p", "ann", "not_judged")
    # an edit of a passage the judgment does not mark is refused, nothing stored
    stray = act(
        db,
        "p",
        "ann",
        "not_judged",
        page.query_id,
        "override",
        marks=marks(page, positive=["greentea"], edits={"rust": "Rust is a fungus."}),
    )
    assert stray.query_id == page.query_id and "not marked" in stray.message
    assert decisions(db) == []
    saved = act(
        db,
        "p",
        "ann",
        "not_judged",
        page.query_id,
        "override",
        marks=marks(page, positive=["greentea"], negative=["rust"], edits={"greentea": fixed}),
    )
    assert "(override)" in saved.message
    act(db, "p", "ann", "not_judged", saved.query_id, "accept")
    with db.sessions() as session:
        stored = session.execute(
            select(Passage.external_id, Passage.text, JudgmentPassage.edited_text).join(
                Passage, Passage.id == JudgmentPassage.passage_id
            )
        ).all()
    edits = {pid: edited for pid, _, edited in stored if edited}
    assert edits == {"greentea": f"Green tea\n{fixed}"}  # title line, then the edit
    originals = {pid: text for pid, text, _ in stored}
    assert originals["greentea"] == "Green tea leaves are steamed, then dried."  # kept

    message, path = run_export(db, "p", tmp_path / "data", "flag", "none")
    assert path is not None, message
    with zipfile.ZipFile(path) as archive:
        text = "".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".jsonl"))
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    tea_row = next(r for r in rows if r["query"] == "drink made from tea leaves")
    assert tea_row["pos"] == [f"Green tea\n{fixed}"]


def test_the_card_offers_an_edit_per_row_and_the_edit_goes_with_the_marks(db):
    from curator.ui.annotation import parse_marks

    page = show(db, "p", "ann", "not_judged")
    card = card_html(page)
    assert card.count('class="cc-edit"') == len(page.rows)
    assert card.count('class="cc-body"') == len(page.rows)
    parsed = parse_marks(marks(page, positive=["tea"], edits={"tea": "new text"}), page.query_id)
    assert parsed["positive"] == ["tea"] and parsed["edits"] == {"tea": "new text"}
    assert parse_marks(marks(page, positive=["tea"]), page.query_id)["edits"] == {}


def test_agreement_with_one_annotator_asks_for_a_second(db, tmp_path):
    from curator.ui.agreement import agreement_tables
    from curator.ui.context import Context

    ctx = Context(db, "p", tmp_path)
    summary, people, _ = agreement_tables(ctx)
    assert "needs a second annotator" in summary and "nobody has judged" in summary
    page = show(db, "p", "ann", "not_judged")
    act(db, "p", "ann", "not_judged", page.query_id, "accept")
    summary, people, _ = agreement_tables(ctx)
    assert "needs a second annotator" in summary and "one annotator has judged" in summary
    assert [row[0] for row in people] == ["ann"]
