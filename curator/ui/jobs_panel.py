"""The app's side of heavy jobs: submit a stage as a job, wait for it, show the job list.

The pipeline buttons (Generate, Mine, Rerank, Ingest, Export, Fine-tune) no longer run a
stage in the server's process: :func:`run_as_job` submits it
(``curator.services.jobs.submit``, a ``curator.worker`` process per job) and polls the
job's row, reporting progress and the waiting position, and returns the Markdown the
button showed before. A worker that crashes or is killed fails its job; the app goes on.

The plain functions here take and return plain values (testable without a browser);
``build_jobs_panel`` wires them: a status line that follows the running and
waiting jobs (CLI jobs included), a table of recent jobs, refreshed by a ``gr.Timer``, and
a Cancel button for a queued or running job (:func:`cancel_job`, admins only).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from curator.services import Database
from curator.services.jobs import (
    JobRefused,
    JobView,
    cancel,
    list_jobs,
    submit,
    wait_for_job,
)
from curator.ui.context import Context, bind, require_admin, text_table
from curator.ui.results import refusal_markdown, result_markdown

JOB_COLUMNS = ["job", "kind", "status", "from", "project", "started", "progress or error"]
REFRESH_SECONDS = 2.0
KIND_NAMES = {
    "generate": "Generation",
    "mine": "Mining",
    "rerank": "Reranking",
    "train": "Fine-tuning",
    "eval": "Evaluation",
    "export": "Export",
    "ingest": "Ingest",
}

Report = Callable[[int | None, int | None, str], None]


def describe(job: JobView) -> str:
    """One escaped Markdown phrase: "#12 generate (app, project x): 3 of 40 ..."."""
    where = f"{job.origin}, project {job.project}"
    return html.escape(f"#{job.id} {job.kind} ({where}): {job.progress_text()}")


def jobs_status(database: Database, data_dir: Path | str) -> str:
    """Markdown status line of the data folder's running and waiting jobs (escaped)."""
    unfinished = list_jobs(database, data_dir=data_dir, unfinished=True, limit=50)
    if not unfinished:
        return "**Jobs:** none running."
    running = [job for job in unfinished if job.status == "running"]
    waiting = sorted((job for job in unfinished if job.status == "queued"), key=lambda j: j.id)
    parts = [f"**Running:** {describe(job)}" for job in running]
    if waiting:
        parts.append(
            "**Waiting:** "
            + "; ".join(
                html.escape(f"#{job.id} {job.kind} (position {job.position})") for job in waiting
            )
        )
    return " · ".join(parts)


def jobs_table(database: Database, data_dir: Path | str, limit: int = 15) -> list[list]:
    """Recent jobs of the data folder as rows of ``JOB_COLUMNS`` (Dataframe cells: text)."""
    rows = []
    for job in list_jobs(database, data_dir=data_dir, limit=limit):
        started = (job.started_at or job.created_at).strftime("%H:%M:%S")
        detail = job.progress_text() if not job.finished else (job.error or "").split("\n")[0]
        rows.append([f"#{job.id}", job.kind, job.status, job.origin, job.project, started, detail])
    return rows


def outcome_markdown(job: JobView) -> str:
    """What a pipeline button shows when its job ended (Markdown, escaped)."""
    name = KIND_NAMES.get(job.kind, job.kind)
    if job.status == "done":
        return result_markdown(job.kind, job.result)
    if job.status == "cancelled":
        return f"**{name} cancelled** (job #{job.id})."
    if job.result.get("refused"):  # the stage refused or stopped: its own message
        return refusal_markdown(**job.result["refused"])
    if job.result.get("markdown"):  # the same, stored by an older version
        return job.result["markdown"]
    # one line: a worker's traceback stays in its log (<data>/jobs/job-<id>.log)
    reason = (job.error or "no reason recorded").strip().split("\n")[0]
    return (
        f"**{name} failed** (job #{job.id}): {html.escape(reason)}"
        "\n\nThe app keeps serving; the stage resumes where it stopped when run again. "
        f"Details: `jobs/job-{job.id}.log` in the data folder."
    )


def run_as_job(
    database: Database,
    project: str,
    data_dir: Path | str,
    kind: str,
    params: dict[str, Any],
    report: Report | None = None,
    *,
    poll: float = 0.5,
) -> tuple[JobView | None, str]:
    """Submit ``kind`` with ``params`` and wait for it, calling ``report(done, total,
    description)`` while it waits and runs. Returns (the finished job, its Markdown), or
    (None, the refusal) when a job of the same kind is already queued or running."""
    try:
        job = submit(database, project, kind, params, data_dir)
    except JobRefused as refusal:
        return None, f"**Not started:** {html.escape(str(refusal))}"

    def update(view: JobView) -> None:
        if report is None:
            return
        if view.status == "queued":
            report(None, None, f"job #{view.id} {view.progress_text()}")
        elif not view.finished:
            report(view.progress_done, view.progress_total, view.message or "running")

    finished = wait_for_job(database, job.id, update, poll=poll)
    return finished, outcome_markdown(finished)


def ingest_params(
    data_dir: Path | str,
    upload,
    server_path: str,
    *,
    allow_server_path: bool,
    **options: Any,
) -> tuple[dict[str, Any] | None, str]:
    """The ingest job's parameters: the uploaded file (copied under ``<data
    dir>/uploads/`` here, before the job) or the server path, with ``options``; or (None,
    the Markdown refusal)."""
    from curator.services.ingest import store_upload

    typed = (server_path or "").strip()
    if upload is not None and upload != []:
        upload = upload[0] if isinstance(upload, list) else upload
        path = store_upload(upload if isinstance(upload, (str, Path)) else upload.name, data_dir)
    elif typed:
        if not allow_server_path:
            return None, (
                "**Cannot ingest:** server paths are off when the app runs with a login; "
                "upload the file, or run `curator ingest` on the server."
            )
        path = Path(typed).expanduser()
    else:
        return None, "**Cannot ingest:** upload a file or give a path on the server."
    return {"path": str(path), **options}, ""


def training_job_events(
    database: Database,
    project: str,
    data_dir: Path,
    params: dict[str, Any],
    poll: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """``curator.services.train.training_events``, run as a job in a worker: the same
    events (``status``/``curve``/``step``/``total`` while it runs, then ``report`` from
    the stored run, or ``error``), plus the waiting position while it is queued.
    ``params``: the page's fields as ``curator.services.train.training_params`` gives
    them."""
    from curator.services.jobs import get_job
    from curator.services.train import EvaluationReport, latest_training_run

    try:
        job = submit(database, project, "train", params, data_dir)
    except JobRefused as refusal:
        yield {"error": str(refusal), "curve": []}
        return
    import time

    while not job.finished:
        curve = job.result.get("curve", [])
        if job.status == "queued":
            yield {"status": f"job #{job.id} {job.progress_text()}", "curve": curve}
        elif job.progress_total:
            yield {
                "status": job.message,
                "curve": curve,
                "step": job.progress_done,
                "total": job.progress_total,
            }
        else:
            yield {"status": job.message or "starting", "curve": curve}
        time.sleep(poll)
        job = get_job(database, job.id)
    if job.status != "done":
        error = job.error if job.result.get("refused") else outcome_markdown(job).replace("**", "")
        yield {"error": error, "curve": job.result.get("curve")}
        return
    status, curve = job.result.get("status", "done"), job.result.get("curve", [])
    latest = latest_training_run(database, project)
    if latest is None or not latest.metrics:
        yield {"status": status, "curve": curve}
        return
    report = EvaluationReport(
        "held-out", "held-out", latest.eval_queries or 0, latest.metrics, paired=latest.paired
    )
    yield {"status": status, "curve": curve, "report": report}


def refresh(database: Database, data_dir: Path | str) -> tuple[str, list[list]]:
    """The Jobs status line and table, for the panel's timer."""
    return jobs_status(database, data_dir), jobs_table(database, data_dir)


def cancel_message(database: Database, data_dir: Path | str, job_id: float | str | None) -> str:
    """Cancel the queued or running job ``job_id`` of the data folder
    (``curator.services.jobs.cancel``: a queued one never starts, a running one's process
    is stopped); the outcome as escaped Markdown, or why nothing was cancelled."""
    text = str(job_id if job_id is not None else "").strip().lstrip("#")
    try:
        number = int(float(text))
    except ValueError:
        return "**Not cancelled:** give the number of a queued or running job (see the table)."
    ours = list_jobs(database, data_dir=data_dir, limit=1_000)
    job = next((job for job in ours if job.id == number), None)
    if job is None:
        return f"**Not cancelled:** no job #{number} in this data folder."
    if job.finished:
        return html.escape(f"Not cancelled: job #{number} {job.kind} already ended ({job.status}).")
    ended = cancel(database, number)
    return html.escape(f"Job #{number} {ended.kind} ({ended.origin}): {ended.status}.")


def cancel_job(
    ctx: Context, job_id: float | str | None, request: gr.Request = None
) -> tuple[str, str, list]:
    """The Jobs panel's Cancel button: admins only (``gr.Error`` for anyone else, before
    anything changes), then :func:`cancel_message`. Returns (its Markdown, the status
    line, the table of jobs)."""
    require_admin(ctx, request, "cancelling a job")
    message = cancel_message(ctx.database, ctx.data_dir, job_id)
    return message, *refresh(ctx.database, ctx.data_dir)


def build_jobs_panel(ctx: Context):
    """The Jobs status line, a table of recent jobs refreshed every few seconds, and a
    Cancel row (a job number and a button; hidden under ``--login`` until an admin logs
    in) (call inside the caller's Blocks). Returns (status Markdown, table, timer, the
    Cancel row)."""
    database, data_dir = ctx.database, ctx.data_dir
    status = gr.Markdown(jobs_status(database, data_dir), elem_id="jobs-status")
    with gr.Accordion("Jobs (one heavy job at a time per data folder)", open=False):
        table = text_table(JOB_COLUMNS, elem_id="jobs-table")
        with gr.Row(visible=not ctx.login) as cancel_row:
            number = gr.Number(label="Job to cancel (#)", precision=0, elem_id="cancel-job-id")
            button = gr.Button("Cancel job", variant="stop", elem_id="cancel-job")
            outcome = gr.Markdown(elem_id="cancel-job-outcome")
    timer = gr.Timer(REFRESH_SECONDS)
    timer.tick(
        bind(refresh, database, data_dir),
        outputs=[status, table],
        show_progress="hidden",
        queue=False,
    )
    button.click(
        bind(cancel_job, ctx),
        inputs=[number],
        outputs=[outcome, status, table],
        api_name="cancel_job",
    )
    return status, table, timer, cancel_row
