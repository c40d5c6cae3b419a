"""The jobs table: CLI jobs the app sees, app jobs in worker processes, one at a time.

Real SQLite, real worker processes (``python -m curator.worker``), real ingests; the slow
test kills a worker that runs the embedded LLM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import write
from sqlalchemy import func, select

from curator.cli import main
from curator.services.jobs import (
    JobRefused,
    cli_job,
    create_job,
    get_job,
    list_jobs,
    mark_running,
    submit,
    wait_for_job,
)
from curator.ui import jobs_panel
from curator.ui.context import Context
from curator.ui.passages import overview_markdown
from curator.ui.training import training_params
from db import open_database
from db.models import GeneratedQuery, Passage
from db.session import sqlite_url


def corpus(path: Path, n: int, prefix: str = "d") -> Path:
    rows = [
        {"_id": f"{prefix}{i}", "text": f"Passage {prefix}{i} about topic {i}."} for i in range(n)
    ]
    return write(path, "\n".join(json.dumps(r) for r in rows) + "\n")


def wait_until(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir):
    return open_database(sqlite_url(data_dir / "curator.db"))


def test_a_cli_job_is_recorded_and_seen_by_the_app(tmp_path, data_dir, db, capsys):
    path = corpus(tmp_path / "c.jsonl", 3)
    assert main(["--data-dir", str(data_dir), "ingest", str(path)]) == 0
    assert main(["--data-dir", str(data_dir), "ingest", str(tmp_path / "missing.jsonl")]) == 1
    jobs = list_jobs(db, data_dir=data_dir)  # what the app's Jobs panel reads
    assert [(j.kind, j.status, j.origin, j.project) for j in jobs] == [
        ("ingest", "failed", "cli", "default"),
        ("ingest", "done", "cli", "default"),
    ]
    assert jobs[1].params["paths"] == [str(path)] and jobs[1].pid == os.getpid()
    assert "exit code 1" in jobs[0].error
    rows = jobs_panel.jobs_table(db, data_dir)
    assert [row[:4] for row in rows] == [
        [f"#{jobs[0].id}", "ingest", "failed", "cli"],
        [f"#{jobs[1].id}", "ingest", "done", "cli"],
    ]
    capsys.readouterr()
    assert main(["--data-dir", str(data_dir), "jobs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"#{jobs[0].id}") and " ingest " in listed[0]
    assert " failed " in listed[0] and " done " in listed[1]


def test_a_job_whose_process_died_is_marked_failed(data_dir, db):
    gone = subprocess.Popen(["true"])
    gone.wait()
    job_id = create_job(db, "p", "mine", {}, data_dir, pid=gone.pid)
    mark_running(db, job_id, gone.pid)
    assert get_job(db, job_id).status == "running"
    [job] = list_jobs(db)
    assert job.status == "failed"
    assert f"pid {gone.pid}" in job.error and "run it again to resume" in job.error


def test_two_app_jobs_wait_in_turn_behind_a_cli_job(tmp_path, data_dir, db):
    first, second = corpus(tmp_path / "a.jsonl", 4, "a"), corpus(tmp_path / "b.jsonl", 2, "b")
    with cli_job(db, "p", "train", {}, data_dir) as cli:
        a = submit(db, "p", "ingest", {"path": str(first)}, data_dir)
        b = submit(db, "p", "ingest", {"path": str(second)}, data_dir)
        with pytest.raises(JobRefused, match=r"a train job \(#\d+\) is already running"):
            submit(db, "p", "train", {}, data_dir)  # a second Fine-tune click
        time.sleep(1.0)  # the workers are up and waiting
        assert get_job(db, a.id).status == "queued" and get_job(db, a.id).position == 1
        assert get_job(db, b.id).position == 2
        status = jobs_panel.jobs_status(db, data_dir)
        assert f"**Running:** #{cli.job_id} train (cli, project p)" in status
        assert f"#{a.id} ingest (position 1); #{b.id} ingest (position 2)" in status
    done_a = wait_for_job(db, a.id, timeout=120)
    done_b = wait_for_job(db, b.id, timeout=120)
    assert (done_a.status, done_b.status) == ("done", "done"), (done_a.error, done_b.error)
    assert done_a.finished_at <= done_b.started_at  # one at a time, oldest first
    assert "4 passages added" in done_a.result["summary"]
    assert "2 passages added" in done_b.result["summary"]
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Passage)) == 6


def test_a_killed_worker_fails_its_job_and_the_app_goes_on(tmp_path, data_dir, db):
    path = corpus(tmp_path / "a.jsonl", 2)
    with cli_job(db, "p", "mine", {}, data_dir):
        job = submit(db, "p", "ingest", {"path": str(path)}, data_dir)
        worker = wait_until(lambda: get_job(db, job.id).pid, what="the worker's pid")
        time.sleep(1.0)
        os.kill(worker, signal.SIGKILL)
        failed = wait_for_job(db, job.id, timeout=30)
    assert failed.status == "failed"
    assert "SIGKILL" in failed.error and "run it again to resume" in failed.error
    # the process that submitted it (the app) still answers
    assert "Jobs:** none running" in jobs_panel.jobs_status(db, data_dir)
    assert "failed" in jobs_panel.outcome_markdown(failed)


def test_a_failed_jobs_traceback_stays_in_its_log(db, data_dir):
    """The page shows the failure's first line; the worker's traceback tail stored with
    the job is not sent to the browser."""
    from dataclasses import replace

    job = submit(db, "p", "ingest", {"path": "/nonexistent.jsonl"}, data_dir)
    finished = wait_for_job(db, job.id, timeout=60)
    crashed = replace(
        finished,
        status="failed",
        result={},
        error="the worker exited with code 1; run it again to resume\nTraceback (most recent "
        'call last):\n  File "/srv/curator/worker.py", line 1',
    )
    shown = jobs_panel.outcome_markdown(crashed)
    assert "exited with code 1" in shown and f"job-{job.id}.log" in shown
    assert "Traceback" not in shown and "/srv/curator" not in shown


def test_a_stage_that_refuses_fails_its_job_with_the_apps_message(tmp_path, data_dir, db):
    job, text = jobs_panel.run_as_job(
        db, "p", data_dir, "ingest", {"path": str(tmp_path / "<missing>.jsonl")}
    )
    assert job.status == "failed" and text.startswith("**Cannot")
    assert "<missing>" not in text  # escaped


def test_a_refused_generate_run_by_the_worker_fails_its_job_with_the_services_message(data_dir, db):
    """Refused before any LLM call: 0 queries per passage. The worker records failed from
    the service's StageRefused; the page shows the same message as the handler."""
    params = {"model": "local/gemma3-270m", "sample": 1, "queries_per_passage": 0}
    job, text = jobs_panel.run_as_job(db, "p", data_dir, "generate", params, poll=0.1)
    assert job.status == "failed"
    assert job.error == "Cannot generate: queries per passage must be at least 1"
    assert text == "**Cannot generate:** queries per passage must be at least 1"
    assert job.result["refused"]["title"] == "Cannot generate"


def test_a_refused_mine_run_by_the_worker_fails_and_an_empty_generate_is_done(
    tmp_path, data_dir, db
):
    from curator.services.projects import ensure_project

    ensure_project(db, "empty")
    mined, text = jobs_panel.run_as_job(db, "empty", data_dir, "mine", {"top_n": 5}, poll=0.1)
    assert mined.status == "failed" and "has no passages" in mined.error
    assert text.startswith("**Cannot mine:** project &#x27;empty&#x27; has no passages")
    # a successful (if small) stage: nothing to generate for, recorded done with its summary
    done, text = jobs_panel.run_as_job(db, "empty", data_dir, "generate", {"sample": 1})
    assert done.status == "done" and done.error is None
    assert text.startswith("generated 0 queries") and done.result["summary"] in text


def test_the_worker_decides_failed_or_done_from_exceptions_not_from_wording(
    data_dir, db, monkeypatch
):
    """A result that reads like a refusal is done; a refusal worded any way is failed."""
    from curator import worker
    from curator.services.errors import StageRefused
    from curator.services.jobs import create_job

    def looks_refused(database, project, data_dir, *, progress, **params):
        return {"summary": "**Cannot generate:** (only the words of a successful stage)"}

    def refuses(database, project, data_dir, *, progress, **params):
        raise StageRefused("Nothing to do today", "a reworded refusal")

    monkeypatch.setitem(worker.STAGES, "generate", looks_refused)
    monkeypatch.setitem(worker.STAGES, "mine", refuses)
    first = create_job(db, "p", "generate", {}, data_dir, origin="app")
    assert worker.run_job(db, first, data_dir) == 0
    assert get_job(db, first).status == "done"
    second = create_job(db, "p", "mine", {"top_n": 3}, data_dir, origin="app")
    assert worker.run_job(db, second, data_dir) == 1
    refused = get_job(db, second)
    assert refused.status == "failed" and refused.error == "Nothing to do today: a reworded refusal"
    shown = jobs_panel.outcome_markdown(refused)
    assert shown == "**Nothing to do today:** a reworded refusal"


def test_the_app_ingest_button_runs_as_a_job(tmp_path, data_dir, db):
    path = corpus(tmp_path / "a.jsonl", 3)
    params, refusal = jobs_panel.ingest_params(data_dir, str(path), "", allow_server_path=False)
    assert refusal == "" and Path(params["path"]).parent.parent == data_dir / "uploads"
    none, refusal = jobs_panel.ingest_params(data_dir, None, "/etc", allow_server_path=False)
    assert none is None and "server paths are off" in refusal
    seen = []
    job, text = jobs_panel.run_as_job(
        db, "p", data_dir, "ingest", params, lambda *a: seen.append(a), poll=0.1
    )
    assert job.status == "done" and job.origin == "app" and job.pid != os.getpid()
    assert "3 passages added" in text and seen  # progress was reported while it ran
    assert "3 passages" in overview_markdown(Context(db, "p", tmp_path))


def demo_file(path: Path, n: int = 8) -> Path:
    """The demo corpus's first ``n`` topics, cut to ~100 words (as the demo chunks them)."""
    from itertools import islice

    from curator.demo import demo_records

    rows = [
        {"_id": r.doc_id, "title": r.title, "text": " ".join(r.text.split()[:100])}
        for r in islice(demo_records(), n)
    ]
    return write(path, "\n".join(json.dumps(r) for r in rows) + "\n")


def count_queries(db) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(GeneratedQuery))


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_generate_then_a_rerun_resumes(tmp_path, data_dir, db):
    """The acceptance test: the embedded LLM in a worker, killed mid-run."""
    job, _ = jobs_panel.run_as_job(
        db, "demo", data_dir, "ingest", {"path": str(demo_file(tmp_path / "demo.jsonl"))}
    )
    assert job.status == "done", job.error

    def generated() -> int:
        return count_queries(db)

    params = {"model": "local/gemma3-270m", "sample": 0, "queries_per_passage": 1, "best_of": 1}
    first = submit(db, "demo", "generate", params, data_dir)
    wait_until(lambda: generated() >= 2, timeout=300, what="two stored queries")
    os.kill(get_job(db, first.id).pid, signal.SIGKILL)
    failed = wait_for_job(db, first.id, timeout=30)
    assert failed.status == "failed" and "SIGKILL" in failed.error
    before = generated()
    assert 2 <= before < 8
    # the app answers: its handlers read the database and the job list
    assert "demo" in overview_markdown(Context(db, "demo", tmp_path))
    assert f"#{first.id}" in jobs_panel.jobs_table(db, data_dir)[0][0]

    second, text = jobs_panel.run_as_job(db, "demo", data_dir, "generate", params)
    assert second.status == "done", second.error
    with db.sessions() as session:
        seeds = session.scalars(select(GeneratedQuery.seed_passage_id)).all()
    assert len(seeds) == 8 and len(set(seeds)) == 8  # every passage once, no duplicates
    counts = re.match(
        r"generated (\d+) queries, (\d+) replies did not parse.*; (\d+) passages too", text
    )
    assert counts and sum(map(int, counts.groups())) == 8 - before, text  # only the rest


def test_a_second_fine_tune_click_is_refused_with_a_message(data_dir, db):
    with cli_job(db, "p", "train", {}, data_dir) as running:
        events = list(
            jobs_panel.training_job_events(
                db, "p", data_dir, training_params("none", "mnrl", 1, 4, 5e-5, 64, 1)
            )
        )
    assert len(events) == 1 and "error" in events[0]
    assert f"a train job (#{running.job_id}) is already running for project p" in events[0]["error"]


def test_a_waiting_app_job_can_be_cancelled_from_the_cli(tmp_path, data_dir, db, capsys):
    path = corpus(tmp_path / "a.jsonl", 2)
    with cli_job(db, "p", "mine", {}, data_dir):
        job = submit(db, "p", "ingest", {"path": str(path)}, data_dir)
        assert main(["--data-dir", str(data_dir), "jobs", "--cancel", str(job.id)]) == 0
        assert f"job #{job.id} ingest: cancelled" in capsys.readouterr().out
    # the worker saw it and left without running it
    wait_until(lambda: not Path(f"/proc/{job.pid}").exists(), 30, "the worker to exit")
    assert get_job(db, job.id).status == "cancelled"
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Passage)) == 0


@pytest.mark.slow
def test_the_served_app_answers_while_its_generate_worker_is_killed(tmp_path, data_dir, db):
    """Over HTTP: `curator serve`, its Generate endpoint, kill -9 of the job's worker."""
    from gradio_client import Client
    from test_browser import serving

    from curator.services.ingest import ingest_path

    ingest_path(db, "default", demo_file(tmp_path / "demo.jsonl"))
    with serving(data_dir) as url:
        client = Client(url, verbose=False)
        pending = client.submit("local/gemma3-270m", 0, 1, 1, api_name="/generate")
        wait_until(lambda: count_queries(db) >= 2, timeout=300, what="two stored queries")
        [job] = list_jobs(db, unfinished=True)
        os.kill(job.pid, signal.SIGKILL)
        shown = pending.result(timeout=60)
        assert f"**Generation failed** (job #{job.id})" in shown and "SIGKILL" in shown
        before = count_queries(db)
        # the server still answers: the page, and the next Generate resumes the run
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
        again = client.predict("local/gemma3-270m", 0, 1, 1, api_name="/generate")
        assert again.startswith("generated "), again
    assert count_queries(db) == 8 > before
    assert [j.status for j in list_jobs(db)] == ["done", "failed"]


def test_the_jobs_panels_cancel_button_cancels_a_waiting_job(tmp_path, data_dir, db):
    from types import SimpleNamespace

    from curator.services.auth import set_password

    set_password(db, "boss", "boss-password", role="admin")
    ctx = Context(db, "p", data_dir, login=True)
    boss = SimpleNamespace(username="boss")
    path = corpus(tmp_path / "a.jsonl", 2)
    with cli_job(db, "p", "mine", {}, data_dir) as running:
        job = submit(db, "p", "ingest", {"path": str(path)}, data_dir)
        message, status, table = jobs_panel.cancel_job(ctx, job.id, boss)
        assert message == f"Job #{job.id} ingest (app): cancelled."
        assert f"#{job.id} ingest" not in status  # no longer waiting
        assert [f"#{job.id}", "ingest", "cancelled", "app"] == table[0][:4]
        again = jobs_panel.cancel_job(ctx, job.id, boss)[0]
        assert "already ended (cancelled)" in again
        assert "no job #999" in jobs_panel.cancel_job(ctx, 999, boss)[0]
        assert "give the number" in jobs_panel.cancel_job(ctx, None, boss)[0]
        assert get_job(db, running.job_id).status == "running"  # only the one asked for
    wait_until(lambda: not Path(f"/proc/{job.pid}").exists(), 30, "the worker to exit")
    assert get_job(db, job.id).status == "cancelled"
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Passage)) == 0


def test_an_annotator_cannot_cancel_a_job(data_dir, db):
    from types import SimpleNamespace

    import gradio as gr

    from curator.services.auth import set_password

    set_password(db, "ann", "ann-password")
    queued = create_job(db, "p", "generate", {}, data_dir, origin="app")
    for ctx, who in (
        (Context(db, "p", data_dir, login=True), SimpleNamespace(username="ann")),
        (Context(db, "p", data_dir, login=True), None),  # no login name at all
    ):
        with pytest.raises(gr.Error, match="cancelling a job is for admins"):
            jobs_panel.cancel_job(ctx, queued, who)
    assert get_job(db, queued).status == "queued"
    # without --login the one local user may
    assert jobs_panel.cancel_job(Context(db, "p", data_dir), queued)[0].endswith("cancelled.")
