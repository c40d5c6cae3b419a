"""Pipeline-run records: every run of a stage is kept with its settings, counts and outcome."""

from __future__ import annotations

from typing import Any

from db import Database
from db.models import PipelineRun, RunStatus, Stage, utcnow


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
