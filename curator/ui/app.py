"""The web app: ``build_ui`` wires components to the handlers in ``curator.ui.handlers``."""

from __future__ import annotations

from functools import partial

import gradio as gr

from curator.services.projects import require_project
from curator.ui.handlers import (
    PASSAGE_COLUMNS,
    overview_markdown,
    passage_for_row,
    passages_table,
)
from db import Database


def build_ui(database: Database, project: str):
    """The app's Blocks: the project overview and a searchable passage browser."""
    overview = partial(overview_markdown, database, project)
    table = partial(passages_table, database, project)

    def select(rows, event: gr.SelectData) -> str:
        # Gradio fills ``event`` from the annotation, which a partial would hide
        return passage_for_row(database, project, rows, event.index)

    with gr.Blocks(title="curator") as app:
        gr.Markdown("# curator · embedding-data workbench")
        summary = gr.Markdown()
        with gr.Row():
            search = gr.Textbox(label="Search passages (id, title or text)", scale=4)
            page = gr.Number(label="Page", value=1, precision=0, minimum=1, scale=1)
        caption = gr.Markdown()
        passages = gr.Dataframe(
            headers=PASSAGE_COLUMNS,
            datatype=["str"] * 4,
            interactive=False,
            wrap=True,
            label="Passages (click a row to read it whole)",
        )
        detail = gr.Textbox(label="Passage", lines=12, interactive=False)
        refresh = gr.Button("Refresh")

        app.load(overview, outputs=summary)
        gr.on(
            triggers=[app.load, search.submit, page.submit, refresh.click],
            fn=table,
            inputs=[search, page],
            outputs=[passages, caption, page],
        )
        refresh.click(overview, outputs=summary)
        passages.select(select, inputs=passages, outputs=detail)
    return app


def launch(database: Database, project: str, *, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build the app for ``project`` and serve it until interrupted."""
    require_project(database, project)
    app = build_ui(database, project)
    app.queue().launch(server_name=host, server_port=port, show_error=True)
