"""The Pipeline tab's handlers: the guard's diagnostics plot and ingest from the browser."""

from __future__ import annotations

import json

import pytest
from conftest import mine_small_project, write
from sqlalchemy import func, select

from curator.pipeline.negatives import NegativeFilter
from curator.services.mine import mining_diagnostics
from curator.ui.handlers import GUARD_AXES, guard_diagnostics, run_ingest
from db.models import Passage

DOCS = [
    ("tea", "Tea", "Tea is made by pouring hot water over cured tea leaves."),
    ("greentea", "Green tea", "Green tea leaves are steamed, then dried."),
    ("coffee", "Coffee", "Coffee is brewed from roasted coffee beans."),
    ("rust", "Rust", "Rust is a systems programming language focused on memory safety."),
    ("python", "Python", "Python is a programming language that is easy to read."),
    ("mars", "Mars", "Mars is the fourth planet from the Sun."),
]


@pytest.fixture
def mined(database, tmp_path, guide_model):
    mine_small_project(
        database,
        tmp_path,
        guide_model,
        DOCS,
        [
            ("drink made from tea leaves", "greentea"),
            ("memory safe programming language", "rust"),
            ("red planet", "mars"),
        ],
        top_n=6,
    )
    return database


def bars(spec: dict) -> list[dict]:
    return spec["layer"][0]["data"]["values"]


def cut(spec: dict) -> float:
    return spec["layer"][1]["data"]["values"][0]["cut"]


@pytest.mark.parametrize("relative_margin", [0.95, 0.7, 0.4])
def test_the_histogram_counts_every_candidate_and_the_title_counts_what_the_guard_drops(
    mined, relative_margin
):
    spec, summary = guard_diagnostics(mined, "p", relative_margin)
    expected = mining_diagnostics(mined, "p", NegativeFilter(relative_margin=relative_margin))
    assert sum(b["count"] for b in bars(spec)) == len(expected.relative_scores) == 15
    assert cut(spec) == relative_margin
    title = f"The guard discards {expected.discarded} of {expected.in_window} candidates"
    assert spec["title"]["text"].startswith(title) and title in summary
    # every bar lies wholly on one side of the line; the red ones hold what the rule drops
    red = sum(b["count"] for b in bars(spec) if b["side"] == "discarded")
    assert all((b["start"] >= cut(spec) - 1e-6) == (b["side"] == "discarded") for b in bars(spec))
    assert all(b["end"] <= cut(spec) + 1e-6 for b in bars(spec) if b["side"] == "kept")
    assert red == sum(r > relative_margin for r in expected.relative_scores) == expected.discarded


def test_a_tighter_margin_discards_more(mined):
    loose, _ = guard_diagnostics(mined, "p", 0.95)
    tight, _ = guard_diagnostics(mined, "p", 0.3)

    def red(spec):
        return sum(b["count"] for b in bars(spec) if b["side"] == "discarded")

    assert red(tight) > red(loose)


def test_the_difference_axis_draws_the_absolute_margin(mined):
    spec, summary = guard_diagnostics(mined, "p", 0, 0.2, GUARD_AXES[1])
    expected = mining_diagnostics(mined, "p", NegativeFilter(relative_margin=None, margin=0.2))
    assert cut(spec) == -0.2 and "margin 0.20" in summary
    assert sum(b["count"] for b in bars(spec)) == len(expected.score_gaps) == 15
    red = sum(b["count"] for b in bars(spec) if b["side"] == "discarded")
    assert red == expected.discarded == sum(g > -0.2 for g in expected.score_gaps)
    json.dumps(spec)  # plain JSON for the browser


def test_nothing_mined_gives_no_plot(database):
    from curator.services.projects import ensure_project

    ensure_project(database, "empty")
    assert guard_diagnostics(database, "empty", 0.95) == (
        None,
        "No mined queries yet: generate and mine first.",
    )
    plot, text = guard_diagnostics(database, "missing", 0.95)
    assert plot is None and text.startswith("**Cannot diagnose:**")


def passages(database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count(Passage.id)))


def test_ingest_an_upload_keeps_a_copy_and_counts(database, tmp_path):
    from curator.progress import CallbackProgress

    rows = [{"_id": f"d{i}", "title": f"T{i}", "text": f"text number {i}"} for i in range(5)]
    upload = write(tmp_path / "tmp" / "corpus.jsonl", "\n".join(map(json.dumps, rows)))
    seen = []
    data = tmp_path / "data"
    summary, errors = run_ingest(
        database, "p", data, str(upload), "", progress=CallbackProgress(lambda *a: seen.append(a))
    )
    assert summary.startswith("corpus.jsonl: 5 passages added") and errors == []
    assert passages(database) == 5 and seen
    copies = list((data / "uploads").glob("*/corpus.jsonl"))
    assert len(copies) == 1 and copies[0].read_bytes() == upload.read_bytes()
    again, _ = run_ingest(database, "p", data, str(upload), "")
    assert "0 passages added" in again and "5 already stored" in again


def test_ingest_a_server_path_with_chunking_and_fields(database, tmp_path):
    text = " ".join(f"w{i}" for i in range(250))
    path = write(tmp_path / "docs.csv", f"qid,answer\nq1,{text}\nq2,short answer\n")
    summary, errors = run_ingest(
        database,
        "p",
        tmp_path / "data",
        None,
        str(path),
        fmt="auto",
        id_field="qid",
        title_field="",
        text_field="answer",
        chunk=True,
        chunk_words=100,
        chunk_overlap=20,
    )
    assert errors == [] and "2 records read" in summary
    assert passages(database) == 4  # 250 words -> 3 chunks of 100 with 20 overlap, + 1


def test_ingest_errors_name_file_line_and_field_and_stay_text(database, tmp_path):
    bad = "\n".join(
        [
            json.dumps({"_id": "a", "text": "fine"}),
            json.dumps({"_id": "b", "title": "<b>no text</b>"}),
            "{not json",
            json.dumps({"_id": "c", "text": "also fine"}),
        ]
    )
    path = write(tmp_path / "up" / "<b>bad.jsonl", bad)
    summary, errors = run_ingest(database, "p", tmp_path / "data", str(path), "", on_error="skip")
    assert "2 passages added" in summary and "2 errors" in summary
    assert "<b>" not in summary and "&lt;b&gt;bad.jsonl" in summary
    assert [row[:3] for row in errors] == [
        ["<b>bad.jsonl", "2", "text"],
        ["<b>bad.jsonl", "3", ""],
    ]

    aborted, first = run_ingest(database, "q", tmp_path / "data", str(path), "")
    assert aborted.startswith("**Nothing stored from &lt;b&gt;bad") and len(first) == 1
    assert first[0][1:3] == ["2", "text"] and passages(database) == 2


def test_ingest_refuses_server_paths_behind_a_login_and_asks_for_input(database, tmp_path):
    path = write(tmp_path / "c.jsonl", json.dumps({"_id": "a", "text": "x"}))
    refused, _ = run_ingest(database, "p", tmp_path, None, str(path), allow_server_path=False)
    assert "server paths are off" in refused and passages(database) == 0
    empty, _ = run_ingest(database, "p", tmp_path, None, "  ")
    assert empty.startswith("**Cannot ingest:**")
    missing, rows = run_ingest(database, "p", tmp_path, None, str(tmp_path / "nope.jsonl"))
    assert missing.startswith("**Cannot") and passages(database) == 0
    assert len(rows) == 1 and rows[0][0] == "nope.jsonl"  # named in the errors table
