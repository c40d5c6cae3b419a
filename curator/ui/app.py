"""The web app. Handlers are module-level functions over plain values; ``build_ui`` only wires.

Text from the corpus is shown in Dataframe cells and Textboxes, which render it as text,
never as HTML. Numbers and project names that go into Markdown are escaped.
"""

from __future__ import annotations

import html
import ipaddress
import socket
from functools import partial

from curator.services.projects import require_project
from curator.services.status import project_status
from db import Database
from db.queries import passage_page

PAGE_SIZE = 25
PASSAGE_COLUMNS = ["id", "title", "text", "source"]
PREVIEW_CHARS = 160


class UnsafeBindAddress(ValueError):
    pass


def check_bind_address(host: str) -> None:
    """Refuse to listen beyond this machine: the app has no login yet."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise UnsafeBindAddress(f"cannot resolve host {host!r}: {exc}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise UnsafeBindAddress(
            f"refusing to listen on {host!r}: it is reachable from other machines and the app "
            "has no login yet; use --host 127.0.0.1 (and an SSH tunnel to reach it remotely)"
        )


def overview_markdown(database: Database, project: str) -> str:
    """The project's name, database and per-stage counts as Markdown (all values escaped)."""
    status = project_status(database, project)
    lines = [
        f"### Project `{html.escape(status.project)}`",
        f"Database: `{html.escape(status.database)}`",
        "",
        "| stage | state |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {html.escape(text)} |" for stage, text in status.stage_lines()]
    return "\n".join(lines)


def passages_table(
    database: Database, project: str, search: str, page: int
) -> tuple[list[list[str]], str, int]:
    """One page of passages: (rows for the table, a "page i of n" caption, the page shown)."""
    project_id = require_project(database, project)
    page = max(1, int(page or 1))
    with database.sessions() as session:
        total, passages = passage_page(
            session,
            project_id,
            search=(search or "").strip(),
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        pages = max(1, -(-total // PAGE_SIZE))
        if page > pages:
            page = pages
            total, passages = passage_page(
                session,
                project_id,
                search=(search or "").strip(),
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
        rows = [
            [p.external_id, p.title, _preview(p.text), _source(p.source_file, p.source_line)]
            for p in passages
        ]
    return rows, f"{total:,} passages · page {page} of {pages}", page


def passage_detail(database: Database, project: str, external_id: str) -> str:
    """The full title and text of one passage, as plain text."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        from sqlalchemy import select

        from db.models import Passage

        passage = session.scalar(
            select(Passage).where(
                Passage.project_id == project_id, Passage.external_id == external_id
            )
        )
    if passage is None:
        return ""
    return f"{passage.title}\n\n{passage.text}" if passage.title else passage.text


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _source(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    return f"{file}:{line}" if line else file


def _on_select(database: Database, project: str, rows, event) -> str:
    """Show the passage whose row was clicked (``rows`` is the table's current value)."""
    row_index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    try:
        external_id = rows.iloc[row_index, 0] if hasattr(rows, "iloc") else rows[row_index][0]
    except (IndexError, KeyError, TypeError):
        return ""
    return passage_detail(database, project, str(external_id))


def build_ui(database: Database, project: str):
    """The app's Blocks: the project overview and a searchable passage browser."""
    import gradio as gr

    overview = partial(overview_markdown, database, project)
    table = partial(passages_table, database, project)

    def select_passage(rows, event: gr.SelectData) -> str:
        return _on_select(database, project, rows, event)

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
        passages.select(select_passage, inputs=passages, outputs=detail)
    return app


def launch(database: Database, project: str, *, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Build the app for ``project`` and serve it until interrupted."""
    require_project(database, project)
    app = build_ui(database, project)
    app.queue().launch(server_name=host, server_port=port, show_error=True)
