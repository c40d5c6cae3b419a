"""The app's Export tab: ``run_export`` (plain values in and out) and the tab's wiring.

The export is written into ``<data dir>/exports/<project>-<format>-<time>/`` and zipped
for the browser by the same service as ``curator export``
(``curator.services.export.export_zipped``).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from curator.services import Database, app_stages
from curator.services.errors import StageRefused
from curator.services.export import FORMATS, POLICIES
from curator.ui.context import Context, job_click, require_admin
from curator.ui.results import export_markdown, refusal_markdown

EXPORT_FORMATS = list(FORMATS)
EXPORT_POLICIES = list(POLICIES)

EXPORT_HELP = """\
Export the curated set with the trainer's rules: the latest human judgment overrides the
proposal, rejected queries are left out, and *Policy* decides about unreviewed queries
(`none`: only judged ones; `high_confidence`; `all`). Passage texts corrected on the
Annotate tab replace the originals in the rows of that judgment. The held-out split is
written apart (`test`) from `train`, with a `manifest.json` (counts, policy, seed,
models). The folder is kept under the data folder's `exports/` and offered here as a zip.
Formats and how to load them: `docs/export.md`; the same from a terminal:
`curator export --format ... --out ...`.
"""


def run_export(
    database: Database,
    project: str,
    data_dir: Path | str,
    fmt: str,
    policy: str,
    negatives: float | int | None = 3,
) -> tuple[str, str | None]:
    """Export ``project`` as ``fmt`` under ``policy``; returns (Markdown summary, path of
    a zip of the export folder), or (the error as Markdown, None)."""
    try:
        result = app_stages.export(
            database, project, data_dir, fmt=fmt, policy=policy, negatives=negatives
        )
    except StageRefused as refused:
        return refusal_markdown(refused.title, refused.reason), None
    return export_markdown(result), result["archive"]


def export(
    ctx: Context,
    fmt: str,
    policy: str,
    negatives,
    request: gr.Request,
    progress=gr.Progress(),  # noqa: B008
):
    """The Export button: the export runs as a job in a worker process
    (``curator.services.app_stages.export`` there); an indeterminate bar while it waits
    and runs, then the summary and the zip."""
    from curator.ui.jobs_panel import run_as_job

    require_admin(ctx, request, "export")

    def report(done, total, desc):
        progress((done, total) if total else None, desc=desc or f"exporting {fmt}")

    params = {"fmt": fmt, "policy": policy, "negatives": negatives}
    job, text = run_as_job(ctx.database, ctx.project, ctx.data_dir, "export", params, report)
    return text, (job.result.get("archive") if job is not None else None)


def build_export_tab(ctx: Context) -> None:
    """The Export tab's components and events (call inside ``gr.Tab``)."""
    gr.Markdown(EXPORT_HELP)
    with gr.Row():
        fmt = gr.Dropdown(EXPORT_FORMATS, value="st-triplets", label="Format")
        policy = gr.Dropdown(EXPORT_POLICIES, value="none", label="Policy")
        negatives = gr.Number(
            label="Negatives (n-tuples, MarginMSE)", value=3, precision=0, minimum=1
        )
    button = gr.Button("Export", variant="primary")
    result = gr.Markdown(elem_id="export-result", elem_classes=["job-result"])
    download = gr.File(label="Download (zip)", interactive=False)
    job_click(button, export, ctx, [fmt, policy, negatives], [result, download], "export")
