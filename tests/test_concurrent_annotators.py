"""Twenty annotators at once through the real HTTP app (gradio_client, logged in), on
SQLite and PostgreSQL: every judgment the app reports saved is stored once, none is lost,
and no annotator ends up with two standing judgments of one query."""

from __future__ import annotations

import os

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
from http_app import annotate_concurrently, judgment_discrepancies, serving_app

from curator.services.auth import set_password

CLIENTS = 20
SECONDS = float(os.environ.get("CURATOR_CONCURRENCY_SECONDS", "60"))


@pytest.mark.slow
def test_twenty_annotators_lose_and_duplicate_nothing(database, tmp_path, guide_model, backend):
    # 200 queries (the toy queries, 25 wordings each) over the toy corpus, mined and reranked
    queries = [(f"{text} {n}", seed) for n in range(25) for text, seed in TOY_QUERIES]
    mine_small_project(
        database, tmp_path, guide_model, TOY_DOCS, queries, top_n=5, rerank_by_guide=True
    )
    accounts = [(f"annotator{i:02d}", f"password-{i:02d}") for i in range(CLIENTS)]
    for name, password in accounts:
        set_password(database, name, password)
    with serving_app(database, "p", tmp_path / "data", login=True) as url:
        logs = annotate_concurrently(url, accounts, SECONDS)
    problems = judgment_discrepancies(database, logs)
    saved = sum(len(log.saved) for log in logs)
    print(f"{backend}: {saved} judgments, {sum(len(log.undone) for log in logs)} undos")
    assert problems == {
        "lost": [],
        "unreported": [],
        "duplicated": [],
        "double_judged": [],
        "undo_mismatch": [],
        "errors": [],
    }
    assert all(log.saved for log in logs)  # every client got judgments through
    assert saved >= CLIENTS * 5
