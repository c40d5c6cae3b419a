"""``python -m curator.worker --db URL --data-dir DIR JOB_ID``: run one app job in its own process.

The app (``curator.services.jobs.submit``) starts one worker per job. The worker waits for
its turn on the data folder's job lock (oldest job first), marks the job running, runs the
stage with the same plain handler functions the app used to run in its own process
(``curator.ui.handlers``, ``curator.ui.export_panel``, ``curator.ui.training``: none of
them imports gradio), writes progress to the job's row and records the end: ``done`` with
the result the app shows, or ``failed`` with the reason. A native crash or an
out-of-memory kill ends this process only; the app's watcher then marks the job failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any

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

# what the app's handlers start their Markdown with when the stage did not run
FAILURE_PREFIXES = (
    "**Cannot",
    "**Generation stopped",
    "**Reranking stopped",
    "**Nothing stored",
    "**Export failed",
)


class StageFailed(RuntimeError):
    """The stage refused or stopped; the message is what the app shows (Markdown)."""


def _checked(markdown: str) -> str:
    if markdown.startswith(FAILURE_PREFIXES):
        raise StageFailed(markdown)
    return markdown


def run_generate(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.handlers import run_generation

    text = run_generation(
        database,
        project,
        data_dir,
        params.get("model") or "local/gemma3-270m",
        params.get("sample"),
        params.get("queries_per_passage", 1),
        params.get("best_of", 1),
        progress=progress,
    )
    return {"markdown": _checked(text)}


def run_mine(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.handlers import run_mining

    text = run_mining(
        database,
        project,
        data_dir,
        params.get("top_n", 30),
        params.get("negatives", 1),
        params.get("relative_margin", 0.95),
        progress=progress,
        margin=params.get("margin"),
    )
    return {"markdown": _checked(text)}


def run_rerank(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.handlers import run_reranking

    text = run_reranking(
        database,
        project,
        data_dir,
        params.get("model") or "local/gemma3-270m",
        params.get("methods") or ["ql", "guide"],
        params.get("top_k", 10),
        params.get("k", 0),
        progress=progress,
    )
    return {"markdown": _checked(text)}


def run_ingest(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.handlers import run_ingest as ingest

    text, rows = ingest(
        database,
        project,
        data_dir,
        None,
        params["path"],
        params.get("fmt", "auto"),
        params.get("id_field", ""),
        params.get("title_field", "title"),
        params.get("text_field", "text"),
        params.get("chunk", False),
        params.get("chunk_words", 100),
        params.get("chunk_overlap", 20),
        params.get("on_error", "abort"),
        allow_server_path=True,
        progress=progress,
    )
    result = {"markdown": text, "errors": rows}
    if text.startswith(FAILURE_PREFIXES):
        raise StageFailed(text, result)
    return result


def run_export(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.export_panel import run_export as export

    progress.start(None, "", f"export ({params.get('fmt')})")
    text, archive = export(
        database,
        project,
        data_dir,
        params.get("fmt", "st-triplets"),
        params.get("policy", "none"),
        params.get("negatives", 3),
    )
    if archive is None:
        raise StageFailed(text)
    return {"markdown": text, "archive": archive}


def run_train(database, project, data_dir, params, progress) -> dict[str, Any]:
    from curator.ui.training import training_events

    events = training_events(database, project, Path(data_dir), params)
    job_id = progress.job_id
    last: dict[str, Any] = {}
    for event in events:
        if "error" in event:
            raise StageFailed(event["error"])
        result = {"curve": event.get("curve", [])}
        if "total" in event:
            set_progress(database, job_id, event["step"], event["total"], event["status"], result)
        elif "report" not in event:
            set_progress(database, job_id, progress.done, None, event["status"], result)
        last = {**result, "status": event["status"]}
    return last


RUNNERS = {
    "generate": run_generate,
    "mine": run_mine,
    "rerank": run_rerank,
    "ingest": run_ingest,
    "export": run_export,
    "train": run_train,
}


def run_job(database: Database, job_id: int, data_dir: Path) -> int:
    """Wait for the job's turn, run it, record its end; the process's exit code."""
    job = get_job(database, job_id)
    runner = RUNNERS.get(job.kind)
    if runner is None:
        finish_job(database, job_id, JobStatus.FAILED, error=f"the app cannot run {job.kind}")
        return 2
    try:
        lock = wait_for_turn(database, job_id, data_dir)
    except JobCancelled:
        return 0
    try:
        mark_running(database, job_id, os.getpid())
        result = runner(database, job.project, data_dir, job.params, JobProgress(database, job_id))
    except StageFailed as failure:
        message = failure.args[0]
        extra = failure.args[1] if len(failure.args) > 1 else {"markdown": message}
        finish_job(database, job_id, JobStatus.FAILED, error=message, result=extra)
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
