"""The label-free loop: a project nobody has judged trains under ``--policy all`` and is
evaluated on its held-out *generated* queries, flagged queries left out."""

from __future__ import annotations

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
from sqlalchemy import insert

from curator.services.training_set import load_generated_held_out, load_training_set
from db.models import QueryFlag

FLAGGED = 1  # TOY_QUERIES[1] is flagged as a copy below


@pytest.fixture
def unjudged(database, tmp_path, guide_model):
    ids = mine_small_project(database, tmp_path, guide_model, TOY_DOCS, TOY_QUERIES, top_n=5)
    with database.sessions() as session, session.begin():
        session.execute(
            insert(QueryFlag), [{"query_id": ids[FLAGGED], "kind": "copy", "reason": "copy: t"}]
        )
    return database, tmp_path / "data", ids


@pytest.mark.slow
def test_policy_all_on_an_unjudged_project_trains_and_evaluates_on_generated_queries(
    unjudged, capsys
):
    from curator.cli import main

    database, data, ids = unjudged
    training_set = load_training_set(database, "p", "all", eval_fraction=0.3)
    assert training_set.dropped == {"flagged_copy": 1}
    assert ids[FLAGGED] not in {e.query_id for e in training_set.examples}
    held_out = {str(e.query_id) for e in load_generated_held_out(database, "p", eval_fraction=0.3)}
    assert held_out, "the toy split must hold some queries out"
    assert str(ids[FLAGGED]) not in held_out

    common = ["--data-dir", str(data), "--db", database.url, "--project", "p"]
    args = ["--policy", "all", "--eval-fraction", "0.3", "--max-steps", "2"]
    code = main([*common, "train", *args, "--batch-size", "4", "--max-seq-length", "64"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"held-out generated (unreviewed)(seed=13) ({len(held_out)} queries)" in out
    assert "generated queries nobody has checked" in out
    systems = [line.split()[0] for line in out.splitlines() if line.split()][-4:]
    assert systems == ["BM25", "base", "fine-tuned", "hybrid"]
