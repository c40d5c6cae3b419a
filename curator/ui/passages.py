"""The Passages tab and the project overview: the stage table, a first-use guide and a
paged, searchable passage table. Corpus text goes into Dataframe cells and Textboxes
(rendered as text); values that go into Markdown are escaped."""

from __future__ import annotations

import html

import gradio as gr

from curator.services.passages import (
    SEARCH_COUNT_LIMIT,
    TextTooLong,
    passage_text,
    passages_on_page,
)
from curator.services.status import ProjectStatus, project_status
from curator.ui.context import Context, bind, text_table

PAGE_SIZE = 25
PASSAGE_COLUMNS = ["id", "title", "text", "source"]
PASSAGE_WIDTHS = ["12%", "18%", "52%", "18%"]
PREVIEW_CHARS = 160


def overview_markdown(ctx: Context) -> str:
    """The project's name, database and per-stage counts as Markdown (all values escaped)."""
    return _overview(project_status(ctx.database, ctx.project))


def overview_and_guide(ctx: Context) -> tuple[str, str]:
    """(the stage table, the first-use line), from one read of the project's counts."""
    status = project_status(ctx.database, ctx.project)
    return _overview(status), next_step(status)


def _overview(status: ProjectStatus) -> str:
    lines = [
        f"### Project `{html.escape(status.project)}`",
        f"Database: `{html.escape(status.database)}`",
        "",
        "| stage | state |",
        "|---|---|",
    ]
    lines += [f"| {stage} | {html.escape(text)} |" for stage, text in status.stage_lines()]
    return "\n".join(lines)


NEXT_STEPS = (
    (
        "passages",
        "**Start here:** ingest a corpus on the *Pipeline* tab (step 0: upload a "
        "`corpus.jsonl`, CSV, TSV or Parquet file).",
    ),
    (
        "queries_ok",
        "**Next:** generate queries on the *Pipeline* tab (step 1); the app starts with a "
        "small sample.",
    ),
    ("queries_mined", "**Next:** mine candidates for the generated queries (*Pipeline*, step 2)."),
    (
        "queries_reranked",
        "**Next:** rerank the mined queries with the LLM (*Pipeline*, step 3), or judge them "
        "as mined on the *Annotate* tab.",
    ),
    (
        "queries_judged",
        "**Next:** judge queries on the *Annotate* tab: *a* accepts the proposal, digits "
        "change the marks, *q* fixes the query (the keys are under *Keys and labels*).",
    ),
    (
        "training_runs",
        "**Next:** once 50 to 100 queries are judged (fix bad ones with *q*: fixed queries "
        "train best), fine-tune on the *Fine-tune* tab, or download the set from *Export*.",
    ),
)


def next_step(status: ProjectStatus) -> str:
    """Markdown: what to do next, from the first pipeline stage with nothing in it; ""
    once every stage has run."""
    for count, text in NEXT_STEPS:
        if not status.counts.get(count):
            return text
    return ""


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _source(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{name}:{line}" if line else name


def passages_table(ctx: Context, search: str, page: int) -> tuple[list[list[str]], str, int]:
    """One page of passages: (rows for the table, a "page i of n" caption, the page shown)."""
    try:
        found = passages_on_page(ctx.database, ctx.project, search, page, PAGE_SIZE)
    except TextTooLong as exc:  # refused in one line, nothing searched
        return [], f"**Not searched:** {html.escape(str(exc))}", 1
    rows = [
        [p.external_id, p.title, _preview(p.text), _source(p.source_file, p.source_line)]
        for p in found.rows
    ]
    noun = "passage" if found.total == 1 else "passages"
    if found.total > SEARCH_COUNT_LIMIT:  # the search stopped counting
        return rows, f"more than {SEARCH_COUNT_LIMIT:,} {noun} · page {found.page}", found.page
    return rows, f"{found.total:,} {noun} · page {found.page} of {found.pages}", found.page


def passage_detail(ctx: Context, external_id: str) -> str:
    """The full title and text of one passage, as plain text ("" when unknown)."""
    return passage_text(ctx.database, ctx.project, external_id) or ""


def passage_for_row(ctx: Context, rows, index) -> str:
    """The passage of the clicked table row (``rows`` is the table's value, ``index`` the
    clicked cell's (row, column) or row)."""
    row_index = index[0] if isinstance(index, (list, tuple)) else index
    try:
        external_id = rows.iloc[row_index, 0] if hasattr(rows, "iloc") else rows[row_index][0]
    except (IndexError, KeyError, TypeError):
        return ""
    return passage_detail(ctx, str(external_id))


def select_passage(ctx: Context, rows, event: gr.SelectData) -> str:
    """The clicked row's passage (Gradio passes the click as ``event``)."""
    return passage_for_row(ctx, rows, event.index)


def build_passages_tab(ctx: Context) -> dict:
    """The Passages tab's components and events (call inside ``gr.Tab``); returns the
    components other tabs refresh: ``table`` (a function of search and page) and its
    ``inputs``/``outputs``."""
    with gr.Row():
        search = gr.Textbox(label="Search passages (id, title or text)", scale=4)
        page = gr.Number(label="Page", value=1, precision=0, minimum=1, scale=1)
    caption = gr.Markdown()
    passages = text_table(
        PASSAGE_COLUMNS,
        widths=PASSAGE_WIDTHS,
        label="Passages (click a row to read it whole)",
        elem_id="passages-table",
    )
    detail = gr.Textbox(label="Passage", lines=12, interactive=False)
    refresh = gr.Button("Refresh")

    passages.select(bind(select_passage, ctx), inputs=passages, outputs=detail)
    return {
        "table": bind(passages_table, ctx),
        "inputs": [search, page],
        "outputs": [passages, caption, page],
        "triggers": [search.submit, page.submit, refresh.click],
        "refresh": refresh,
    }
