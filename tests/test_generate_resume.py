"""Kill a real generation run over 1,000 passages and start it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import scifact_subset
from sqlalchemy import func, select

from curator.services.ingest import ingest_path
from db import open_database
from db.models import GeneratedQuery, Passage, PipelineRun
from db.session import sqlite_url

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def generate(data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curator.cli",
            "--data-dir",
            str(data_dir),
            "generate",
            "--threads",
            "2",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stored(database) -> list[tuple[int, int, int, str]]:
    with database.sessions() as session:
        return [
            tuple(r)
            for r in session.execute(
                select(
                    GeneratedQuery.id,
                    GeneratedQuery.seed_passage_id,
                    GeneratedQuery.sample_index,
                    GeneratedQuery.raw_output,
                ).order_by(GeneratedQuery.id)
            )
        ]


def test_a_killed_run_resumes_where_it_stopped(scifact_dir, tmp_path):
    data_dir = tmp_path / "data"
    database = open_database(sqlite_url(data_dir / "curator.db"))
    ingest_path(database, "default", scifact_subset(scifact_dir, tmp_path / "c.jsonl", 1000))

    run = generate(data_dir)  # all 1,000 passages
    deadline = time.monotonic() + 240
    while len(stored(database)) < 6:
        assert run.poll() is None, run.stdout.read()
        assert time.monotonic() < deadline, "no progress within 240 s"
        time.sleep(0.5)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    before = stored(database)
    assert 6 <= len(before) < 1000

    resumed = generate(data_dir, "--limit", "5")
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    after = stored(database)

    assert after[: len(before)] == before, "rows of the killed run are untouched"
    assert len(after) == len(before) + 5
    keys = [(passage, index) for _, passage, index, _ in after]
    assert len(keys) == len(set(keys)), "no passage was done twice"
    with database.sessions() as session:
        order = list(session.scalars(select(Passage.id).order_by(Passage.id)))
        statuses = list(
            session.scalars(
                select(PipelineRun.status)
                .where(PipelineRun.stage == "generate")
                .order_by(PipelineRun.id)
            )
        )
        assert session.scalar(select(func.count()).select_from(GeneratedQuery)) == len(after)
    done_first = {passage for _, passage, _, _ in before}
    expected_next = [p for p in order if p not in done_first][:5]
    assert [passage for _, passage, _, _ in after[len(before) :]] == expected_next
    assert statuses == ["interrupted", "done"]  # the killed run is marked by the next one
    assert f"{len(before)} already done" in output
