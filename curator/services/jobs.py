"""Heavy jobs: a table the CLI and the app both see, one job at a time per data folder.

Generating, mining, reranking, training, evaluating, exporting and ingesting each load a
model or write a lot; two at once on a small machine slow each other down many times over
(llama.cpp's threads spin on shared cores). Every such job is a ``jobs`` row (kind,
parameters, status, progress, process, error) and runs only while its process holds an
exclusive lock on ``<data dir>/jobs.lock`` (:class:`curator.locks.FileLock`). The lock is
the kernel's, so a crashed or killed job frees it at once, and every process that uses
the same data folder sees it.

Two ways in:

- the CLI runs its command in its own process inside :func:`cli_job` (a row, the lock,
  waiting in turn or refusing with ``wait=False``);
- the app calls :func:`submit`, which records the row and starts ``python -m
  curator.worker JOB_ID`` (:mod:`curator.worker`) in a separate process, so a native crash
  or an out-of-memory kill ends the worker, never the app. A thread of the app waits for
  the worker and, if it died (non-zero exit, signal) without recording its end, marks the
  job failed with the reason; the stages resume, so running it again continues.

Waiting jobs take the lock oldest first (:func:`wait_for_turn`); a job's position is the
number of unfinished jobs of its data folder before it. A job whose process is gone
(kill -9 of a CLI job, a worker of an app that was restarted) is marked failed the next
time anyone lists or waits for jobs (:func:`reap_dead_jobs`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from curator.locks import FileLock, LockBusy
from curator.services.runs import process_alive
from db import Database
from db.models import Job, JobKind, JobStatus, utcnow
from db.queries import get_or_raise

HEAVY_JOBS = tuple(kind.value for kind in JobKind)
JOBS_LOCK = "jobs.lock"
UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
# a second job of these kinds for the same project is refused while one is unfinished
ONE_AT_A_TIME = ("generate", "mine", "rerank", "train")
POLL_SECONDS = 0.3
PROGRESS_SECONDS = 0.5
CLI_PROGRESS_SECONDS = 1.0  # a CLI job writes its row at most once a second
_SUBMIT = threading.Lock()  # the same-kind check and the new row, one submit at a time

log = logging.getLogger(__name__)


class JobBusy(LockBusy):
    """Another heavy job holds the data folder's job lock (and we were not to wait)."""


class JobRefused(RuntimeError):
    """The app refused a job: one of the same kind is already queued or running."""


@dataclass
class JobView:
    """A job row as plain values, for the CLI's and the app's listings."""

    id: int
    project: str
    kind: str
    status: str
    origin: str
    params: dict[str, Any]
    progress_done: int
    progress_total: int | None
    message: str
    pid: int | None
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    position: int | None = None  # unfinished jobs of the data folder before this one

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED

    def progress_text(self) -> str:
        """ "12 of 40 passages, generate (...)"-style text of the job's progress."""
        if self.status == JobStatus.QUEUED.value:
            ahead = self.position or 0
            return f"waiting: {ahead} job{'s' if ahead != 1 else ''} before it"
        count = ""
        if self.progress_total:
            count = f"{self.progress_done:,} of {self.progress_total:,}"
        elif self.progress_done:
            count = f"{self.progress_done:,} done"
        return ": ".join(part for part in (self.message, count) if part)

    def line(self) -> str:
        """One line for ``curator jobs``."""
        when = self.created_at.strftime("%Y-%m-%d %H:%M:%S")
        text = self.progress_text() if not self.finished else (self.error or "").split("\n")[0]
        return (
            f"#{self.id:<5} {when}  {self.kind:<8} {self.status:<9} {self.origin:<4} "
            f"{self.project:<12} {text[:120]}"
        ).rstrip()


def _view(job: Job) -> JobView:
    return JobView(
        id=job.id,
        project=job.project,
        kind=job.kind,
        status=job.status,
        origin=job.origin,
        params=dict(job.params or {}),
        progress_done=job.progress_done or 0,
        progress_total=job.progress_total,
        message=job.message or "",
        pid=job.pid,
        result=dict(job.result or {}),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _folder(data_dir: Path | str) -> str:
    return str(Path(data_dir).resolve())


def create_job(
    database: Database,
    project: str,
    kind: str,
    params: dict[str, Any],
    data_dir: Path | str,
    *,
    origin: str = "cli",
    pid: int | None = None,
) -> int:
    """Record a queued job (its own transaction); returns its id. ``params`` must be JSON."""
    JobKind(kind)  # ValueError for an unknown kind
    with database.sessions() as session, session.begin():
        job = Job(
            project=project,
            kind=kind,
            params=params,
            status=JobStatus.QUEUED.value,
            origin=origin,
            data_dir=_folder(data_dir),
            message="",
            result={},
            pid=pid,
            host=socket.gethostname() if pid else None,
        )
        session.add(job)
        session.flush()
        return job.id


def get_job(database: Database, job_id: int) -> JobView:
    """The job with its waiting position; LookupError if there is none."""
    with database.sessions() as session:
        job = get_or_raise(session, Job, job_id, LookupError(f"no job #{job_id}"))
        view = _view(job)
        if not view.finished:
            view.position = _ahead(session, job)
    return view


def _ahead(session, job: Job) -> int:
    """Unfinished jobs of ``job``'s data folder that go before it (the running one too)."""
    rows = session.scalars(
        select(Job.id).where(
            Job.data_dir == job.data_dir,
            Job.status.in_(UNFINISHED),
            Job.id != job.id,
            or_(Job.id < job.id, Job.status == JobStatus.RUNNING.value),
        )
    ).all()
    return len(rows)


def list_jobs(
    database: Database,
    *,
    project: str | None = None,
    data_dir: Path | str | None = None,
    limit: int = 20,
    unfinished: bool = False,
) -> list[JobView]:
    """The newest jobs first (of ``project`` / ``data_dir`` when given), dead ones reaped
    first; unfinished jobs carry their waiting position."""
    reap_dead_jobs(database)
    with database.sessions() as session:
        query = select(Job).order_by(Job.id.desc()).limit(limit)
        if project is not None:
            query = query.where(Job.project == project)
        if data_dir is not None:
            query = query.where(Job.data_dir == _folder(data_dir))
        if unfinished:
            query = query.where(Job.status.in_(UNFINISHED))
        views = []
        for job in session.scalars(query):
            view = _view(job)
            if not view.finished:
                view.position = _ahead(session, job)
            views.append(view)
    return views


def reap_dead_jobs(database: Database) -> int:
    """Mark unfinished jobs of this host whose process is gone as failed; how many."""
    host = socket.gethostname()
    marked = 0
    with database.sessions() as session, session.begin():
        jobs = session.scalars(
            select(Job).where(Job.status.in_(UNFINISHED), Job.host == host, Job.pid.is_not(None))
        )
        for job in jobs:
            if process_alive(job.pid):
                continue
            job.status = JobStatus.FAILED.value
            job.error = (
                f"the job's process (pid {job.pid}) ended without recording its end: killed, "
                "out of memory or crashed; run it again to resume"
            )
            job.finished_at = utcnow()
            marked += 1
    return marked


def _update(database: Database, job_id: int, **values: Any) -> None:
    with database.sessions() as session, session.begin():
        job = session.get(Job, job_id)
        for name, value in values.items():
            setattr(job, name, value)


def mark_running(database: Database, job_id: int, pid: int | None = None) -> None:
    _update(
        database,
        job_id,
        status=JobStatus.RUNNING.value,
        pid=pid or os.getpid(),
        host=socket.gethostname(),
        started_at=utcnow(),
        message="running",
    )


def finish_job(
    database: Database,
    job_id: int,
    status: JobStatus,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    only_unfinished: bool = False,
) -> bool:
    """Record how a job ended; with ``only_unfinished`` a job that already recorded its
    end is left alone. True if the row was written."""
    with database.sessions() as session, session.begin():
        job = session.get(Job, job_id)
        if job is None or (only_unfinished and job.status not in UNFINISHED):
            return False
        job.status = status.value
        job.error = error
        if result is not None:
            job.result = result
        job.finished_at = utcnow()
        return True


def set_progress(
    database: Database,
    job_id: int,
    done: int,
    total: int | None,
    message: str,
    result: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {"progress_done": done, "progress_total": total, "message": message}
    if result is not None:
        values["result"] = result
    _update(database, job_id, **values)


class JobProgress:
    """A :class:`curator.progress.Progress` that writes to the job's row (at most every
    ``interval`` seconds, and at each start and finish), for the app's Jobs panel and
    ``curator jobs``; ``also`` (a tqdm bar in the CLI) gets every call too."""

    def __init__(
        self, database: Database, job_id: int, also=None, *, interval: float = PROGRESS_SECONDS
    ) -> None:
        self.database, self.job_id, self.also = database, job_id, also
        self.interval = interval
        self.total: int | None = None
        self.done = 0
        self.desc = ""
        self._written = 0.0

    def start(self, total: int | None, unit: str, desc: str) -> None:
        self.total, self.done, self.desc = total, 0, desc
        self._write(force=True)
        if self.also is not None:
            self.also.start(total, unit, desc)

    def advance(self, amount: int) -> None:
        self.done += amount
        self._write()
        if self.also is not None:
            self.also.advance(amount)

    def update(self, done: int, total: int | None, desc: str) -> None:
        """Set the count itself (a training step of ``total``); written like ``advance``,
        and at once when ``done`` reaches ``total``."""
        self.done, self.total, self.desc = done, total, desc
        self._write(force=total is not None and done >= total)

    def finish(self) -> None:
        self._write(force=True)
        if self.also is not None:
            self.also.finish()

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written >= self.interval:
            self._written = now
            values = {"progress_done": self.done, "progress_total": self.total}
            write_progress(self.database, self.job_id, message=self.desc, **values)


def write_progress(database: Database, job_id: int, **values: Any) -> bool:
    """Write a job's progress ``values`` (columns) unless the database is busy writing:
    False when skipped. Progress is only shown, and on SQLite the write lock may be held
    by this very process (an ingest stores a file in one transaction and reports its
    progress as it reads), so waiting for it (the busy timeout) would wait for ourselves;
    the next write, or the finish, tells the rest."""
    from sqlalchemy import update
    from sqlalchemy.exc import OperationalError

    from db.session import SQLITE_BUSY_TIMEOUT_MS

    sqlite = database.engine.dialect.name == "sqlite"
    with database.engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
        try:
            connection.execute(update(Job).where(Job.id == job_id).values(**values))
            connection.commit()
            return True
        except OperationalError as error:
            connection.rollback()
            log.debug("job #%s: progress not written (%s)", job_id, error)
            return False
        finally:
            if sqlite:
                connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _older_waiting(database: Database, job_id: int, folder: str) -> Job | None:
    with database.sessions() as session:
        return session.scalars(
            select(Job)
            .where(Job.data_dir == folder, Job.status == JobStatus.QUEUED.value, Job.id < job_id)
            .order_by(Job.id)
            .limit(1)
        ).first()


def wait_for_turn(
    database: Database,
    job_id: int,
    data_dir: Path | str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> FileLock:
    """Take the data folder's job lock for ``job_id`` once no older job waits for it.

    Without ``wait``, :class:`JobBusy` is raised at once when another job runs or waits.
    ``on_wait(holder)`` is called once if the job has to wait. A job cancelled while it
    waits raises :class:`JobCancelled`.
    """
    folder = _folder(data_dir)
    job = get_job(database, job_id)
    lock = FileLock(Path(data_dir) / JOBS_LOCK, purpose=f"{job.kind} (job #{job_id})")
    told = False
    while True:
        reap_dead_jobs(database)
        if get_job(database, job_id).status == JobStatus.CANCELLED.value:
            raise JobCancelled(f"job #{job_id} was cancelled while it waited")
        older = _older_waiting(database, job_id, folder)
        if older is None and lock.acquire(wait=False):
            return lock
        holder = lock.holder() if older is None else f"{older.kind} job #{older.id} waits first"
        if not wait:
            raise JobBusy(
                f"another job is running in {data_dir} ({holder}); {job.kind} not started: "
                "run it again later, or without --no-wait to wait for it",
                holder,
            )
        if not told and on_wait is not None:
            on_wait(holder)
        told = True
        time.sleep(POLL_SECONDS)


class JobCancelled(RuntimeError):
    """The job was cancelled (while it waited, or by Ctrl-C)."""


@contextmanager
def job_lock(
    data_dir: Path,
    job: str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[FileLock]:
    """Hold ``<data_dir>/jobs.lock`` while the ``with`` block runs ``job`` (no job row).

    With ``wait`` (default) a busy lock is waited for, after ``on_wait(holder)`` is
    called once; without, :class:`JobBusy` is raised naming the running job.
    """
    lock = FileLock(Path(data_dir) / JOBS_LOCK, purpose=job)
    if not lock.acquire(wait=wait, on_wait=on_wait):
        holder = lock.holder()
        raise JobBusy(
            f"another job is running in {data_dir} ({holder}); {job} not started: run it "
            "again later, or without --no-wait to wait for it",
            holder,
        )
    try:
        yield lock
    finally:
        lock.release()


@dataclass
class CliJob:
    """The job a CLI command runs as; ``status`` is set from its exit code."""

    job_id: int
    exit_code: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    database: Database | None = None  # where its row is (for its progress)


@contextmanager
def cli_job(
    database: Database,
    project: str,
    kind: str,
    params: dict[str, Any],
    data_dir: Path | str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[CliJob]:
    """Run a CLI command as job ``kind``: a queued row, the job lock in turn (or
    :class:`JobBusy` without ``wait``; the row is then cancelled), running, and its end:
    done for exit code 0, failed with the exception or exit code otherwise, cancelled
    on Ctrl-C."""
    job_id = create_job(database, project, kind, params, data_dir, origin="cli", pid=os.getpid())
    handle = CliJob(job_id, database=database)
    try:
        lock = wait_for_turn(database, job_id, data_dir, wait=wait, on_wait=on_wait)
    except BaseException as error:
        finish_job(database, job_id, JobStatus.CANCELLED, error=str(error) or "interrupted")
        raise
    try:
        mark_running(database, job_id)
        yield handle
    except KeyboardInterrupt:
        finish_job(database, job_id, JobStatus.CANCELLED, error="interrupted (Ctrl-C)")
        raise
    except BaseException as error:
        finish_job(database, job_id, JobStatus.FAILED, error=str(error) or repr(error))
        raise
    else:
        if handle.exit_code in (0, None):
            finish_job(database, job_id, JobStatus.DONE, result=handle.result)
        else:
            finish_job(
                database,
                job_id,
                JobStatus.FAILED,
                error=f"the command ended with exit code {handle.exit_code} (see its output)",
            )
    finally:
        lock.release()


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {
            "SIGKILL": "killed: out of memory, or kill -9",
            "SIGSEGV": "a native crash",
            "SIGILL": "an illegal instruction: a llama.cpp build that does not suit this "
            "CPU; run `curator doctor`",
            "SIGABRT": "a native abort",
        }.get(name, "")
        return f"the worker process died from {name} (signal {-code})" + (
            f", {hint}" if hint else ""
        )
    return f"the worker process exited with code {code}"


def worker_log(data_dir: Path | str, job_id: int) -> Path:
    return Path(data_dir) / "jobs" / f"job-{job_id}.log"


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def submit(
    database: Database,
    project: str,
    kind: str,
    params: dict[str, Any],
    data_dir: Path | str,
) -> JobView:
    """Queue a job for the app and start its worker process; returns the job (queued,
    with its position). A second generate/mine/rerank/train of the same project while
    one is unfinished raises :class:`JobRefused` naming it."""
    with _SUBMIT:
        if kind in ONE_AT_A_TIME:
            for other in list_jobs(database, project=project, unfinished=True, limit=100):
                if other.kind == kind:
                    state = "running" if other.status == "running" else "waiting to run"
                    raise JobRefused(
                        f"a {kind} job (#{other.id}) is already {state} for project "
                        f"{project}: wait for it to end (see Jobs)"
                    )
        job_id = create_job(database, project, kind, params, data_dir, origin="app")
        process = start_worker(database, job_id, data_dir)
        _update(database, job_id, pid=process.pid, host=socket.gethostname())
    threading.Thread(target=_watch, args=(database, job_id, process, data_dir), daemon=True).start()
    return get_job(database, job_id)


def start_worker(database: Database, job_id: int, data_dir: Path | str) -> subprocess.Popen:
    """``python -m curator.worker`` for ``job_id`` in a new session, output to
    ``<data dir>/jobs/job-<id>.log``."""
    log_path = worker_log(data_dir, job_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "curator.worker",
        "--db",
        database.url,
        "--data-dir",
        str(data_dir),
        str(job_id),
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _watch(database: Database, job_id: int, process: subprocess.Popen, data_dir) -> None:
    """Wait for a worker; if it ended without recording its end, mark the job failed. The
    database may be gone by then (the app stopped, a test's database dropped): that is
    logged, and the next listing marks the job failed instead (``reap_dead_jobs``)."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        _record_worker_end(database, job_id, process.wait(), data_dir)
    except SQLAlchemyError as error:
        log.warning("job %s: could not record how its worker ended: %s", job_id, error)


def _record_worker_end(database: Database, job_id: int, code: int, data_dir) -> None:
    """Mark job ``job_id`` failed unless its worker (exit ``code``) recorded its end."""
    if code == 0:
        finish_job(
            database,
            job_id,
            JobStatus.FAILED,
            error="the worker ended without recording the job's end",
            only_unfinished=True,
        )
        return
    # a signal leaves no message worth showing; an exit code may follow a traceback
    tail = _log_tail(worker_log(data_dir, job_id)) if code > 0 else ""
    finish_job(
        database,
        job_id,
        JobStatus.FAILED,
        error=f"{_exit_reason(code)}; run it again to resume" + (f"\n{tail}" if tail else ""),
        only_unfinished=True,
    )


def cancel(database: Database, job_id: int) -> JobView:
    """Cancel a job: a queued one never starts; a running one's process is sent SIGTERM."""
    job = get_job(database, job_id)
    if job.finished:
        return job
    finish_job(database, job_id, JobStatus.CANCELLED, error="cancelled", only_unfinished=True)
    if job.status == JobStatus.RUNNING.value and job.pid and job.pid != os.getpid():
        with suppress(ProcessLookupError):
            os.kill(job.pid, signal.SIGTERM)
    return get_job(database, job_id)


def wait_for_job(
    database: Database,
    job_id: int,
    on_update: Callable[[JobView], None] | None = None,
    *,
    poll: float = POLL_SECONDS,
    timeout: float | None = None,
) -> JobView:
    """Poll ``job_id`` until it ends, calling ``on_update(job)`` after each read; the
    finished job. ``TimeoutError`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        job = get_job(database, job_id)
        if on_update is not None:
            on_update(job)
        if job.finished:
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job #{job_id} still {job.status} after {timeout} s")
        time.sleep(poll)
