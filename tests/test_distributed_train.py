"""`curator train --launcher accelerate --processes 2`: data-parallel training on CPU (gloo)."""

from __future__ import annotations

import json

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
from sqlalchemy import select

from curator.services.annotate import record_judgment
from db.models import EmbeddingModel, TrainingRun
from trainer.distributed import _report_progress, launch_command


def test_launch_command_runs_this_module_in_n_processes(tmp_path):
    command = launch_command(tmp_path / "job.json", 3)
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "3"
    assert command[-3:] == ["-m", "trainer.distributed", str(tmp_path / "job.json")]


def test_progress_lines_reach_the_callback_once_and_partial_lines_wait(tmp_path):
    progress, seen = tmp_path / "progress.jsonl", []
    progress.write_text("[1, 4, 0.5]\n[2, 4, null]\n[3, 4, 0.")  # the last line still written
    count = _report_progress(progress, 0, lambda *step: seen.append(step))
    assert count == 2 and seen == [(1, 4, 0.5), (2, 4, None)]
    progress.write_text("[1, 4, 0.5]\n[2, 4, null]\n[3, 4, 0.25]\n")
    assert _report_progress(progress, count, lambda *step: seen.append(step)) == 3
    assert seen[-1] == (3, 4, 0.25) and len(seen) == 3


@pytest.mark.slow
def test_cli_trains_in_two_processes_with_gloo(database, tmp_path, guide_model, capsys):
    from curator.cli import main

    ids = mine_small_project(database, tmp_path, guide_model, TOY_DOCS[:8], TOY_QUERIES, top_n=8)
    for query_id in ids:
        record_judgment(database, query_id, "ann", "accept")
    data = tmp_path / "data"
    code = main(
        [
            *("--data-dir", str(data), "--db", database.url, "--project", "p", "train"),
            *("--launcher", "accelerate", "--processes", "2"),
            *("--max-steps", "3", "--batch-size", "2", "--max-seq-length", "64"),
            *("--eval-fraction", "0.3", "--bf16", "off", "--no-eval"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "training run 1:" in out
    with database.sessions() as session:
        run = session.get(TrainingRun, 1)
        assert run.status == "done" and run.settings["processes"] == 2
        assert [point["step"] for point in run.loss_curve] == [1, 2, 3]
        models = session.scalars(select(EmbeddingModel)).all()
    assert len(models) == 1 and (tmp_path / models[0].path / "config.json").exists()
    workers = sorted((data / "models" / "p" / "run-1" / "distributed").glob("rank-*.json"))
    infos = [json.loads(path.read_text()) for path in workers]
    assert [(i["rank"], i["world_size"], i["backend"]) for i in infos] == [
        (0, 2, "gloo"),
        (1, 2, "gloo"),
    ]

    from trainer.finetune import load_model

    vector = load_model(models[0].path).encode(["a query"])
    assert vector.shape == (1, 384)
