"""``python -m curator.worker --db URL --data-dir DIR JOB_ID``: run one app job in its own process.

The app (``curator.services.jobs.submit``) starts one worker per job. The worker waits for
its turn on the data folder's job lock (oldest job first), marks the job running, runs the
stage through the services (``STAGES``: ``curator.services.app_stages``, the training
service), writes progress to the job's row and records the end: ``done`` with the stage's
result (plain values the app formats), or ``failed`` with the reason: a
:class:`curator.services.errors.StageRefused` (the stage refused or stopped; the app shows
its message) or any other exception (a crash; its traceback goes to the job's log). A
native crash or an out-of-memory kill ends this process only; the app's watcher then marks
the job failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curator.services import app_stages
from curator.services.errors import StageRefused
from curator.services.jobs import (
    JobCancelled,
    JobProgress,
    finish_job,
    get_job,
    mark_running,
    set_progress,
    wait_for_turn,
)
from db import Database, open_database
from db.models import JobStatus

log = logging.getLogger("curator.worker")


def run_train(database, project, data_dir, *, progress, **params) -> dict[str, Any]:
    """Fine-tune with the page's fields (``training_params``), progress into the job's
    row; the last event's loss curve and status. An error event is a refusal."""
    from curator.services.train import training_events, training_options

    events = training_events(database, project, Path(data_dir), training_options(params))
    job_id = progress.job_id
    last: dict[str, Any] = {}
    for event in events:
        if "error" in event:
            raise StageRefused(event["error"])
        result = {"curve": event.get("curve", [])}
        if "total" in event:
            set_progress(database, job_id, event["step"], event["total"], event["status"], result)
        elif "report" not in event:
            set_progress(database, job_id, progress.done, None, event["status"], result)
        last = {**result, "status": event["status"]}
    return last


#: job kind -> the stage: ``stage(database, project, data_dir, progress=..., **params)``
#: returns the job's result or raises StageRefused
STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    "generate": app_stages.generate,
    "mine": app_stages.mine,
    "rerank": app_stages.rerank,
    "ingest": app_stages.ingest,
    "export": app_stages.export,
    "train": run_train,
}


def run_job(database: Database, job_id: int, data_dir: Path) -> int:
    """Wait for the job's turn, run it, record its end; the process's exit code."""
    job = get_job(database, job_id)
    stage = STAGES.get(job.kind)
    if stage is None:
        finish_job(database, job_id, JobStatus.FAILED, error=f"the app cannot run {job.kind}")
        return 2
    try:
        lock = wait_for_turn(database, job_id, data_dir)
    except JobCancelled:
        return 0
    try:
        mark_running(database, job_id, os.getpid())
        progress = JobProgress(database, job_id)
        result = stage(database, job.project, data_dir, progress=progress, **job.params)
    except StageRefused as refusal:
        finish_job(
            database, job_id, JobStatus.FAILED, error=str(refusal), result=refusal.as_result()
        )
        return 1
    except Exception as error:  # recorded with its reason; the traceback goes to the log
        traceback.print_exc()
        finish_job(database, job_id, JobStatus.FAILED, error=str(error) or repr(error))
        return 1
    finally:
        lock.release()
    finish_job(database, job_id, JobStatus.DONE, result=result, only_unfinished=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m curator.worker", description=__doc__)
    parser.add_argument("--db", required=True, help="SQLAlchemy URL of the database")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("job_id", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.setLevel(logging.INFO)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    database = open_database(args.db)
    log.info("job #%d: worker pid %d", args.job_id, os.getpid())
    return run_job(database, args.job_id, args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
