"""The embedded demo corpus and the app's handlers (no browser)."""

from __future__ import annotations

import json

import pytest
from conftest import write

from curator.services.demo import ensure_demo_project
from curator.services.ingest import ingest_path
from curator.ui.context import Context
from curator.ui.handlers import (
    generated_queries_table,
    run_generation,
    run_mining,
    run_reranking,
)
from curator.ui.network import UnsafeBindAddress, check_bind_address
from curator.ui.passages import (
    PAGE_SIZE,
    overview_markdown,
    passage_detail,
    passage_for_row,
    passages_table,
)


def test_demo_corpus_is_ingested_once(database, tmp_path):
    report = ensure_demo_project(database, "demo")
    assert report is not None and report.errors == []
    assert 600 < report.added < 1500  # ~465k characters of reference text in ~100-word chunks
    assert ensure_demo_project(database, "demo") is None
    rows, caption, _ = passages_table(Context(database, "demo", tmp_path), "assert", 1)
    assert rows and "passages" in caption
    assert any("assert" in (title + text).lower() for _, title, text, _ in rows)


def test_passage_table_pages_and_search(database, tmp_path):
    rows = [{"_id": f"d{i:03d}", "title": f"T{i}", "text": f"text number {i}"} for i in range(60)]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    ctx = Context(database, "p", tmp_path)
    page1, caption, page = passages_table(ctx, "", 1)
    assert len(page1) == PAGE_SIZE and page1[0][0] == "d000" and page == 1
    assert caption == "60 passages · page 1 of 3"
    page3, _, _ = passages_table(ctx, "", 3)
    assert [r[0] for r in page3] == [f"d{i:03d}" for i in range(50, 60)]
    _, caption, page = passages_table(ctx, "", 99)  # past the end: the last page
    assert page == 3
    found, caption, _ = passages_table(ctx, "number 42", 1)
    assert [r[0] for r in found] == ["d042"] and caption.startswith("1 passage ·")
    assert passage_detail(ctx, "d042") == "T42\n\ntext number 42"
    assert passage_for_row(ctx, found, [0, 2]) == "T42\n\ntext number 42"
    assert passage_for_row(ctx, found, [5, 0]) == ""


def test_overview_escapes_names_and_counts_passages(database, tmp_path):
    project = "<img src=x onerror=alert(1)>"
    ingest_path(database, project, write(tmp_path / "c.jsonl", '{"_id": "1", "text": "x"}\n'))
    markdown = overview_markdown(Context(database, project, tmp_path))
    assert "<img" not in markdown and "&lt;img" in markdown
    assert "1 passages from 1 documents" in markdown


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_public_addresses_are_refused(host):
    with pytest.raises(UnsafeBindAddress):
        check_bind_address(host)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_is_allowed(host):
    check_bind_address(host)


def test_build_ui_wires_a_blocks_app(database):
    import gradio as gr

    ensure_demo_project(database, "demo")
    from curator.ui.app import build_ui

    app = build_ui(database, "demo")
    assert isinstance(app, gr.Blocks)


def test_generation_handler_reports_provider_errors_escaped(database, tmp_path):
    ingest_path(database, "p", write(tmp_path / "c.jsonl", '{"_id": "1", "text": "x y z"}\n'))
    message = run_generation(database, "p", tmp_path / "data", "nosuchprovider/<b>x</b>", 1, 1, 1)
    assert message.startswith("**Generation stopped:**") and "not_found" in message
    assert "<b>" not in message and "&lt;b&gt;" in message
    assert run_generation(database, "p", tmp_path, "local/gemma3-270m", 1, 0, 0).startswith(
        "**Cannot generate:**"
    )  # 0 queries per passage is refused before any call


@pytest.mark.slow
def test_generation_handler_with_the_local_model(database, tmp_path, local_llm):
    rows = [
        {
            "_id": f"d{i}",
            "title": f"Topic {i}",
            "text": f"Facts about subject {i} and <script>alert({i})</script> markup.",
        }
        for i in range(3)
    ]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    reported = []
    from curator.progress import CallbackProgress

    summary = run_generation(
        database,
        "p",
        tmp_path / "data",
        "local/gemma3-270m",
        2,
        1,
        1,
        progress=CallbackProgress(lambda *a: reported.append(a)),
    )
    assert summary.startswith("generated ")
    assert reported[0][:2] == (0, 2) and reported[-1][:2] == (2, 2)
    table = generated_queries_table(database, "p")
    assert len(table) == 2 and all(row[4] == "local/gemma3-270m" for row in table)


def test_mining_handler_summarises_candidates_and_the_guard(database, tmp_path, guide_model):
    from conftest import add_queries

    rows = [
        {"_id": f"d{i}", "title": t, "text": f"{t} is described here in detail."}
        for i, t in enumerate(["Coffee", "Tea", "Mars", "Venus", "Oak"])
    ]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    add_queries(database, "p", [("hot drink from leaves", "d1")])
    summary = run_mining(database, "p", tmp_path / "data", 5, 1, 0.95, guide=guide_model)
    assert summary.startswith("mined 1 queries: 5 candidates")
    assert "False-negative guard on all 1 mined queries" in summary
    from curator.services.projects import ensure_project

    ensure_project(database, "empty")
    assert run_mining(
        database, "empty", tmp_path / "data", 5, 1, 0.95, guide=guide_model
    ).startswith("**Cannot mine:**")


def test_rerank_handler_with_guide_only_fusion_and_errors(database, tmp_path, guide_model):
    from conftest import add_queries

    from curator.services.mine import MineOptions, mine_candidates

    rows = [
        {"_id": f"d{i}", "title": t, "text": f"All about {t.lower()}."}
        for i, t in enumerate(["Coffee", "Tea", "Mars"])
    ]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    add_queries(database, "p", [("about tea", "d1")])
    mine_candidates(database, "p", tmp_path / "data", MineOptions(top_n=3), guide=guide_model)
    summary = run_reranking(database, "p", tmp_path / "data", "local/gemma3-270m", ["guide"], 3, 0)
    assert summary.startswith("reranked 1 queries (3 pairs)")
    refused = run_reranking(database, "p", tmp_path / "data", "openai/gpt-4o-mini", ["ql"], 3, 0)
    assert refused.startswith("**Reranking stopped:**") and "query likelihood" in refused
    assert run_reranking(database, "p", tmp_path / "data", "", [], 3, 0).startswith(
        "**Cannot rerank:**"
    )
