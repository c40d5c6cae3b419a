"""One heavy job at a time per data folder: the CLI waits, or refuses with --no-wait."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from curator.cli import main
from curator.locks import FileLock
from curator.services.jobs import HEAVY_JOBS, JobBusy, job_lock

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_job_is_refused_or_waits(tmp_path):
    busy = pytest.raises(JobBusy, match=r"another job is running .*\(generate: pid \d+ on ")
    with job_lock(tmp_path, "generate"), busy, job_lock(tmp_path, "mine", wait=False):
        pass
    with job_lock(tmp_path, "mine", wait=False) as lock:  # free again
        assert lock.held
    assert not lock.held


def test_other_data_folders_do_not_wait(tmp_path):
    with job_lock(tmp_path / "a", "train"), job_lock(tmp_path / "b", "train", wait=False):
        pass


JOB_ARGS = {"ingest": ["corpus.jsonl"], "export": ["--format", "beir", "--out", "x"]}


@pytest.mark.parametrize("job", HEAVY_JOBS)
def test_cli_no_wait_refuses_while_another_job_runs(tmp_path, capsys, job):
    data = tmp_path / "data"
    other = FileLock(data / "jobs.lock", purpose="rerank")
    other.acquire()
    try:
        code = main(["--data-dir", str(data), job, *JOB_ARGS.get(job, []), "--no-wait"])
    finally:
        other.release()
    err = capsys.readouterr().err
    assert code == 2
    assert "another job is running" in err and "(rerank: pid" in err
    assert f"{job} not started" in err


def test_cli_waits_for_the_running_job_then_runs(tmp_path, capsys):
    data = tmp_path / "data"
    other = FileLock(data / "jobs.lock", purpose="train")
    other.acquire()
    threading.Timer(1.0, other.release).start()
    started = time.monotonic()
    code = main(["--data-dir", str(data), "--project", "nowhere", "mine"])
    waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert "waiting for another job" in err and "(train: pid" in err
    assert waited >= 0.9
    # it ran once the lock was free: the (missing) project is the next thing it reports
    assert code == 2 and "nowhere" in err


def test_cli_job_in_another_process_is_refused(tmp_path):
    data = tmp_path / "data"
    with job_lock(data, "generate"):
        done = subprocess.run(
            [sys.executable, "-m", "curator.cli", "--data-dir", str(data), "train", "--no-wait"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )
    assert done.returncode == 2
    assert f"(generate: pid {os.getpid()} on " in done.stderr
