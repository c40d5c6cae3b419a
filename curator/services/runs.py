"""Pipeline-run records: every run of a stage is kept with its settings, counts and outcome."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from db import Database
from db.models import PipelineRun, RunStatus, Stage, utcnow

log = logging.getLogger(__name__)


def start_run(
    database: Database,
    project_id: int,
    stage: Stage,
    settings: dict[str, Any],
    *,
    model: str | None = None,
    prompt_version: str | None = None,
) -> int:
    """Record a run as started (its own transaction) and return its id."""
    with database.sessions() as session, session.begin():
        run = PipelineRun(
            project_id=project_id,
            stage=stage.value,
            settings=settings,
            model=model,
            prompt_version=prompt_version,
            status=RunStatus.RUNNING.value,
        )
        session.add(run)
        session.flush()
        return run.id


def finish_run(
    database: Database,
    run_id: int,
    status: RunStatus,
    counts: dict[str, Any],
    *,
    error: str | None = None,
    usage: dict[str, Any] | None = None,
) -> None:
    """Record how a run ended."""
    with database.sessions() as session, session.begin():
        run = session.get(PipelineRun, run_id)
        run.status = status.value
        run.counts = counts
        run.error = error
        if usage is not None:
            run.usage = usage
        run.finished_at = utcnow()


def update_run(
    database: Database, run_id: int, counts: dict[str, Any], *, usage: dict[str, Any] | None = None
) -> None:
    """Checkpoint a running run's counts and usage (so a killed run still shows them)."""
    with database.sessions() as session, session.begin():
        run = session.get(PipelineRun, run_id)
        run.counts = counts
        if usage is not None:
            run.usage = usage


def mark_dead_runs(database: Database, project_id: int, stage: Stage) -> int:
    """Mark ``running`` runs of ``stage`` whose process (same host) is gone as interrupted.

    A run killed with SIGKILL cannot record its own end; the next run of the stage does.
    Returns how many were marked.
    """
    host = socket.gethostname()
    marked = 0
    with database.sessions() as session, session.begin():
        runs = session.scalars(
            select(PipelineRun).where(
                PipelineRun.project_id == project_id,
                PipelineRun.stage == stage.value,
                PipelineRun.status == RunStatus.RUNNING.value,
            )
        )
        for run in runs:
            pid = (run.settings or {}).get("pid")
            if pid is None or (run.settings or {}).get("host") != host or process_alive(int(pid)):
                continue
            run.status = RunStatus.INTERRUPTED.value
            run.error = "the process ended without recording its end (killed?)"
            run.finished_at = utcnow()
            marked += 1
    return marked


def report_counts(report: Any, names: str) -> dict[str, Any]:
    """The attributes ``names`` (space-separated) of a stage's ``report``, by name, for its
    run record's counts; dict values are copied (the report goes on counting)."""
    values = {name: getattr(report, name) for name in names.split()}
    return {name: dict(v) if isinstance(v, dict) else v for name, v in values.items()}


def process_marker() -> dict[str, Any]:
    """The pid and host to put in a run's settings, for ``mark_dead_runs``."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunHandle:
    """The run a stage is recording. The stage points ``counts`` and ``usage`` at its own
    report so checkpoints and the final record read the current values."""

    database: Database
    run_id: int
    counts: Callable[[], dict[str, Any]] = dict
    usage: Callable[[], dict[str, Any] | None] = lambda: None

    def checkpoint(self) -> None:
        update_run(self.database, self.run_id, self.counts(), usage=self.usage())

    def finish(self, status: RunStatus, *, error: str | None = None) -> None:
        """Record the run's end with the current counts and usage."""
        finish_run(
            self.database, self.run_id, status, self.counts(), error=error, usage=self.usage()
        )


@contextmanager
def recorded_run(
    database: Database,
    project_id: int,
    stage: Stage,
    settings: dict[str, Any],
    **labels: str | None,
) -> Iterator[RunHandle]:
    """Record a stage run from start to end: ``done`` when the body returns, ``failed``
    with the error's message when it raises, ``interrupted`` on Ctrl-C. Earlier runs of
    the stage whose process died are marked ``interrupted`` first. The run is started by
    :func:`start_run` with ``labels`` (``model``, ``prompt_version``) and ``settings``
    plus this process's :func:`process_marker`."""
    mark_dead_runs(database, project_id, stage)
    run_id = start_run(database, project_id, stage, {**settings, **process_marker()}, **labels)
    handle = RunHandle(database, run_id)
    try:
        yield handle
    except Exception as exc:
        handle.finish(RunStatus.FAILED, error=str(exc) or repr(exc))
        raise
    except BaseException as exc:
        handle.finish(RunStatus.INTERRUPTED, error=repr(exc))
        raise
    handle.finish(RunStatus.DONE)


@contextmanager
def exclusive(lock_path, what: str, *, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (a file beside the data it guards) for the
    block, so two heavy runs on one data folder (say two ``curator mine``) do not write its
    files at once. When another process holds it: with ``wait`` log that ``what`` is
    running there (naming its holder) and wait for it to end, else raise RuntimeError
    saying so. A :class:`curator.locks.FileLock`: the system drops it when its process
    dies, so a killed run never blocks."""
    from curator.locks import FileLock

    lock = FileLock(lock_path, purpose=what)
    where = lock.path.parent

    def waiting(holder: str) -> None:
        log.warning(
            "another %s is running on %s (%s); waiting for it to finish", what, where, holder
        )

    if not lock.acquire(wait=wait, on_wait=waiting):
        raise RuntimeError(
            f"another {what} is running on {where} ({lock.holder()}); wait for it to finish"
        )
    try:
        yield
    finally:
        lock.release()
