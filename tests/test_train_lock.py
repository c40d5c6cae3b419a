"""Two training requests never share an output folder: file locks and run claims."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from curator.locks import FileLock
from curator.services.projects import ensure_project
from curator.services.train import TrainingBusy, TrainOptions, claim_run, run_folder
from db.models import RunStatus, TrainingRun

SETTINGS = {"loss": "mnrl", "epochs": 1.0, "policy": "none"}
SNAPSHOT = {"digest": "abc", "train_query_ids": [1, 2, 3]}
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- FileLock


def test_two_locks_on_one_file_exclude_each_other_even_in_one_process(tmp_path):
    first, second = FileLock(tmp_path / "x.lock", "job A"), FileLock(tmp_path / "x.lock")
    assert first.acquire(wait=False)
    assert not second.acquire(wait=False)
    assert second.holder().startswith(f"job A: pid {os.getpid()} on ")
    first.release()
    assert second.acquire(wait=False)
    second.release()


def test_waiting_reports_the_holder_once_and_times_out(tmp_path):
    holder = FileLock(tmp_path / "x.lock", "train")
    holder.acquire()
    heard = []
    waiter = FileLock(tmp_path / "x.lock")
    assert not waiter.acquire(timeout=0.3, on_wait=heard.append, poll=0.05)
    assert len(heard) == 1 and heard[0].startswith("train: pid")
    threading.Timer(0.2, holder.release).start()
    assert waiter.acquire(timeout=5, poll=0.05)
    waiter.release()


def test_a_lock_is_free_once_its_process_is_killed(tmp_path):
    path = tmp_path / "x.lock"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from curator.locks import FileLock; "
            f"FileLock({str(path)!r}, 'child').acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout.readline().strip() == "held"
        lock = FileLock(path)
        assert not lock.acquire(wait=False)
        assert f"child: pid {child.pid} " in lock.holder()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert lock.acquire(wait=False), "the kernel releases a killed holder's lock"
        lock.release()
    finally:
        child.kill()
        child.wait()


# ---------------------------------------------------------------- training runs


@pytest.fixture
def project(database, tmp_path):
    ensure_project(database, "p")
    return SimpleNamespace(db=database, data=tmp_path / "data")


def claim(project, settings=SETTINGS):
    return claim_run(project.db, "p", project.data, TrainOptions(), dict(settings), SNAPSHOT)


def claim_concurrently(project, settings_list):
    """Call claim_run from one thread per settings dict at once; (claims, refusals)."""
    barrier = threading.Barrier(len(settings_list))
    claims, refusals, errors = [], [], []

    def request(settings):
        barrier.wait()
        try:
            claims.append(claim(project, settings))
        except TrainingBusy as busy:
            refusals.append(str(busy))
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=request, args=(s,)) for s in settings_list]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return claims, refusals


def test_concurrent_identical_requests_never_share_a_run(project):
    claims, refusals = claim_concurrently(project, [SETTINGS] * 4)
    try:
        assert len(claims) == 1 and len(refusals) == 3
        assert all("is training now: run 1 (training run 1: pid" in r for r in refusals)
    finally:
        for _, lock in claims:
            lock.release()
    with project.db.sessions() as session:
        assert len(session.scalars(select(TrainingRun)).all()) == 1


def test_concurrent_requests_with_other_settings_get_their_own_folders(project):
    variants = [{**SETTINGS, "epochs": float(n)} for n in range(1, 5)]
    claims, refusals = claim_concurrently(project, variants)
    try:
        assert not refusals and len(claims) == 4
        folders = {run_folder(project.data, "p", run_id) for run_id, _ in claims}
        assert len(folders) == 4
        assert all((folder / "train.lock").exists() for folder in folders)
    finally:
        for _, lock in claims:
            lock.release()


def test_a_running_run_whose_process_is_gone_is_resumed(project):
    script = (
        "import sys, time\n"
        "from curator.services.train import TrainOptions, claim_run\n"
        "from db import open_database\n"
        "from db.models import RunStatus, TrainingRun\n"
        f"db = open_database({project.db.url!r})\n"
        f"run_id, lock = claim_run(db, 'p', {str(project.data)!r}, TrainOptions(), "
        f"{SETTINGS!r}, {SNAPSHOT!r})\n"
        "with db.sessions() as s, s.begin():\n"
        "    s.get(TrainingRun, run_id).status = RunStatus.RUNNING.value\n"
        "print(run_id, flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        run_id = int(child.stdout.readline())
        with pytest.raises(TrainingBusy, match=f"run {run_id} .*pid {child.pid} "):
            claim(project)
        child.send_signal(signal.SIGKILL)  # the trainer dies; its run stays "running"
        child.wait(timeout=10)
        with project.db.sessions() as session:
            assert session.get(TrainingRun, run_id).status == RunStatus.RUNNING.value
        resumed, lock = claim(project)
        assert resumed == run_id
        lock.release()
    finally:
        child.kill()
        child.wait()


def test_a_finished_run_is_not_resumed(project):
    run_id, lock = claim(project)
    with project.db.sessions() as session, session.begin():
        session.get(TrainingRun, run_id).status = RunStatus.DONE.value
    lock.release()
    again, lock = claim(project)
    assert again != run_id
    lock.release()


@pytest.mark.slow
def test_two_concurrent_fine_tunes_never_train_into_one_folder(database, tmp_path, guide_model):
    """Real train_project calls: A pauses mid-training while B asks with the same settings
    (refused) and with other settings (trains into its own folder)."""
    from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project

    from curator.services.annotate import record_judgment
    from trainer.finetune import TrainSettings

    for query_id in mine_small_project(
        database, tmp_path, guide_model, TOY_DOCS[:8], TOY_QUERIES, top_n=8
    ):
        record_judgment(database, query_id, "ann", "accept")
    data = tmp_path / "data"

    def options(max_steps: int) -> TrainOptions:
        settings = TrainSettings(
            max_steps=max_steps, batch_size=4, max_seq_length=64, bf16="off", save_steps=2
        )
        return TrainOptions(eval_fraction=0.3, settings=settings)

    from curator.services.train import train_project

    a_training, b_done = threading.Event(), threading.Event()
    outcome = {}

    def a_step(step, total, loss):
        a_training.set()
        assert b_done.wait(timeout=300)

    def run_a():
        outcome["a"] = train_project(database, "p", data, options(2), on_step=a_step)

    a = threading.Thread(target=run_a)
    a.start()
    try:
        assert a_training.wait(timeout=300)
        with pytest.raises(TrainingBusy, match="same settings and data is training now"):
            train_project(database, "p", data, options(2))
        outcome["b"] = train_project(database, "p", data, options(3))
    finally:
        b_done.set()
        a.join(timeout=300)
    assert outcome["a"].model_path != outcome["b"].model_path
    assert outcome["a"].model_path.parent != outcome["b"].model_path.parent
    with database.sessions() as session:
        runs = session.scalars(select(TrainingRun)).all()
        assert [r.status for r in runs] == ["done", "done"]
        assert len({r.output_path for r in runs}) == 2
