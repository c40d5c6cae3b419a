"""The web app: ``build_ui`` puts one tab module's page in each tab (``curator.ui.passages``,
``annotate``, ``agreement``, ``pipeline``, ``training``, ``export_panel``) and refreshes the
project's stage table after every job; ``launch`` serves it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from curator.services import Database
from curator.services.access import is_admin
from curator.services.projects import require_project
from curator.ui.agreement import build_agreement_tab
from curator.ui.annotate import ANNOTATE_CONCURRENCY, build_annotate_tab
from curator.ui.context import Context, bind
from curator.ui.export_panel import build_export_tab
from curator.ui.jobs_panel import build_jobs_panel
from curator.ui.page import CSS, SHORTCUTS
from curator.ui.passages import build_passages_tab, overview_and_guide
from curator.ui.pipeline import build_pipeline_tab
from curator.ui.training import build_training_tab

FAILED_LOGIN_DELAY_S = 0.5


def build_ui(
    database: Database, project: str, data_dir: Path | str = "data", *, login: bool = False
) -> gr.Blocks:
    """The app's Blocks: a first-use guide and the stage table above the tabs Passages,
    Annotate, Agreement, Pipeline, Fine-tune and Export. With ``login``, judgments are
    stored under the logged-in user and server paths cannot be ingested."""
    ctx = Context(database, project, Path(data_dir), login)
    with gr.Blocks(title="curator") as app:
        gr.Markdown("### curator · embedding-data workbench")
        *_, cancel_row = build_jobs_panel(ctx)
        guide = gr.Markdown(elem_id="first-steps")
        with gr.Accordion("Project status (counts per stage)", open=False):
            summary = gr.Markdown(elem_id="project-status")
        with gr.Tab("Passages"):
            passages = build_passages_tab(ctx)
        with gr.Tab("Annotate", elem_id="annotate-tab"):
            judged = build_annotate_tab(ctx, app)
        with gr.Tab("Agreement"):
            build_agreement_tab(ctx, app)
        # annotators see Passages, Annotate and Agreement; every admin handler checks again
        with gr.Tab("Pipeline", visible=not login) as pipeline_tab:
            jobs = build_pipeline_tab(ctx, app)
        with gr.Tab("Fine-tune", visible=not login) as training_tab:
            fine_tuned = build_training_tab(ctx, app)
        with gr.Tab("Export", visible=not login) as export_tab:
            build_export_tab(ctx)
        if login:
            admin_tabs = [pipeline_tab, training_tab, export_tab, cancel_row]
            app.load(bind(tabs_for, ctx, len(admin_tabs)), outputs=admin_tabs)
        table = {"fn": passages["table"], "inputs": passages["inputs"]}
        gr.on([app.load, *passages["triggers"]], outputs=passages["outputs"], **table)
        jobs["ingested"].then(outputs=passages["outputs"], **table)
        overview = bind(overview_and_guide, ctx)
        gr.on([app.load, passages["refresh"].click], overview, outputs=[summary, guide])
        for event in judged:
            event.then(overview, outputs=[summary, guide], concurrency_limit=ANNOTATE_CONCURRENCY)
        for event in [*jobs.values(), fine_tuned]:
            event.then(overview, outputs=[summary, guide])
    return app


def launch(
    database: Database,
    project: str,
    *,
    data_dir: Path | str = "data",
    host: str = "127.0.0.1",
    port: int = 7860,
    login: bool = False,
) -> None:
    """Build the app for ``project`` and serve it until interrupted; with ``login``, only
    annotators with a password (``curator annotator add``) get in."""
    require_project(database, project)
    app = build_ui(database, project, data_dir, login=login)
    queued(app).launch(
        server_name=host,
        server_port=port,
        # exception text (paths, SQL) stays in the server log; gr.Error messages still show
        show_error=False,
        head=SHORTCUTS,
        css=CSS,
        auth=authenticator(database) if login else None,
        auth_message="curator: log in with your annotator account",
    )


def tabs_for(ctx: Context, count: int, request: gr.Request) -> list:
    """The admin tabs' visibility for the logged-in caller (shown to admins only)."""
    name = getattr(request, "username", None)
    shown = is_admin(ctx.database, name, login=ctx.login)
    return [gr.update(visible=shown) for _ in range(count)]


def queued(app: gr.Blocks) -> gr.Blocks:
    """The app with Gradio's queue as ``curator serve`` runs it."""
    return app.queue()


def authenticator(database: Database, throttle=None):
    """Gradio's ``auth`` callable for ``--login``: an async function, so the scrypt check
    runs in a worker thread instead of blocking the server's event loop; unknown names
    cost the same check (a dummy hash); a name that failed repeatedly is locked out for a
    while (``LoginThrottle``), and every failure waits half a second before answering."""
    import asyncio

    from curator.services.auth import LoginThrottle, throttled_login

    throttle = throttle or LoginThrottle()

    async def authenticate(username: str, password: str) -> bool:
        ok = await asyncio.to_thread(throttled_login, database, throttle, username, password)
        if not ok:
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return ok

    return authenticate
