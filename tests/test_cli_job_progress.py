"""A CLI stage writes its progress into its job row (what `curator jobs` and the app's Jobs
panel read) while its tqdm bar still runs: real SQLite, the real `curator` command, a real
local OpenAI-compatible HTTP server for generate, the packaged guide model for mine."""

from __future__ import annotations

import json
import time

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, add_queries, write
from test_remote_provider import Server

import curator.services.jobs as jobs
from curator.cli import main
from curator.progress import TqdmProgress
from curator.services.jobs import get_job, list_jobs
from db import open_database
from db.session import sqlite_url


@pytest.fixture
def rows_seen(monkeypatch, tmp_path):
    """Every write allowed (no 1 s throttle), and the job row as another connection reads
    it each time the terminal's bar advances: a list of (status, done, total, message)."""
    monkeypatch.setattr(jobs, "CLI_PROGRESS_SECONDS", 0.0)
    seen: list[tuple] = []
    reader = {}
    advance = TqdmProgress.advance

    def watching(self, amount):
        advance(self, amount)
        if "db" not in reader:
            reader["db"] = open_database(sqlite_url(tmp_path / "data" / "curator.db"))
        [job] = list_jobs(reader["db"], unfinished=True)
        job = get_job(reader["db"], job.id)
        seen.append((job.status, job.progress_done, job.progress_total, job.message))

    monkeypatch.setattr(TqdmProgress, "advance", watching)
    yield seen
    if "db" in reader:
        reader["db"].dispose()


def corpus(path, n):
    rows = [{"_id": f"d{i}", "text": f"Passage number {i} about planet {i}."} for i in range(n)]
    return write(path, "\n".join(json.dumps(r) for r in rows) + "\n")


def the_job(tmp_path):
    database = open_database(sqlite_url(tmp_path / "data" / "curator.db"))
    try:
        return list_jobs(database)[0]
    finally:
        database.dispose()


def test_cli_ingest_writes_its_progress_into_its_job_row(tmp_path, rows_seen, capsys):
    # 3,000 records: more than one batch, so the file's transaction holds SQLite's write
    # lock while the reader still reports progress; that must not stall the ingest
    path = corpus(tmp_path / "c.jsonl", 3000)
    started = time.monotonic()
    assert main(["--data-dir", str(tmp_path / "data"), "ingest", str(path)]) == 0
    assert time.monotonic() - started < 20  # not the 30 s busy timeout
    out, err = capsys.readouterr()
    assert "3000 passages added" in out and "ingest c.jsonl" in err  # the bar still shows
    size = path.stat().st_size
    partial = [row for row in rows_seen if 0 < row[1] < size]
    assert partial, rows_seen[:5]
    assert all(row[0] == "running" and row[2] == size for row in partial)
    assert partial[0][3] == "ingest c.jsonl"
    job = the_job(tmp_path)
    assert (job.status, job.progress_done, job.progress_total) == ("done", size, size)
    assert job.progress_text() == f"ingest c.jsonl: {size:,} of {size:,}"


def test_cli_generate_writes_its_progress_into_its_job_row(tmp_path, rows_seen, monkeypatch):
    for name in ("OPENAI_API_KEY", "CURATOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "ingest", str(corpus(tmp_path / "c.jsonl", 4))]) == 0
    rows_seen.clear()
    with Server(lambda n: f"Task: Find facts\nQuery: which planet is number {n}") as server:
        command = ["generate", "--model", "openai/x", "--api-base", server.url, "--all"]
        assert main([*data, *command, "--concurrency", "1", "--resample", "0"]) == 0
    # each passage's reply advances the bar; the row read then holds the count so far
    assert [row[1:3] for row in rows_seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {row[3] for row in rows_seen} == {"generate (openai/x)"}
    job = the_job(tmp_path)
    assert (job.kind, job.status, job.progress_done, job.progress_total) == (
        "generate",
        "done",
        4,
        4,
    )


def test_cli_progress_writes_are_throttled(tmp_path, monkeypatch):
    """At most one write a second between a stage's start and finish."""
    database = open_database(sqlite_url(tmp_path / "curator.db"))
    job_id = jobs.create_job(database, "p", "mine", {}, tmp_path)
    writes = []
    real = jobs.write_progress
    monkeypatch.setattr(
        jobs, "write_progress", lambda *a, **kw: writes.append(kw) or real(*a, **kw)
    )
    progress = jobs.JobProgress(database, job_id, interval=jobs.CLI_PROGRESS_SECONDS)
    progress.start(1000, "queries", "mine")
    for _ in range(1000):
        progress.advance(1)
    progress.finish()
    assert len(writes) in (2, 3)  # start, finish, perhaps one if a second passed
    assert get_job(database, job_id).progress_done == 1000
    database.dispose()


def test_cli_mine_writes_its_progress_into_its_job_row(tmp_path, rows_seen):
    docs = [{"_id": i, "title": t, "text": x} for i, t, x in TOY_DOCS]
    path = write(tmp_path / "toy.jsonl", "\n".join(json.dumps(d) for d in docs) + "\n")
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "ingest", str(path)]) == 0
    database = open_database(sqlite_url(tmp_path / "data" / "curator.db"))
    add_queries(database, "default", TOY_QUERIES)
    database.dispose()
    rows_seen.clear()
    assert main([*data, "mine", "--top-n", "5"]) == 0
    # the guide encodes the 10 passages, then the 8 queries are mined
    mined = [row for row in rows_seen if row[3] == "mine"]
    assert mined and mined[-1][1:3] == (8, 8)
    assert any(row[3].startswith("encode") and row[2] == 10 for row in rows_seen)
    job = the_job(tmp_path)
    assert (job.kind, job.status, job.progress_done, job.progress_total) == ("mine", "done", 8, 8)
