"""Handlers of the app: module-level functions over plain values, testable without a browser.

Text from the corpus goes into Dataframe cells and Textboxes, which render it as text,
never as HTML. Values that go into Markdown are escaped.
"""

from __future__ import annotations

import html

from sqlalchemy import select

from curator.services.projects import require_project
from curator.services.status import project_status
from db import Database
from db.models import GeneratedQuery, Passage
from db.queries import passage_page

PAGE_SIZE = 25
PASSAGE_COLUMNS = ["id", "title", "text", "source"]
PREVIEW_CHARS = 160
QUERY_COLUMNS = ["passage", "task", "query", "status", "model"]
DEMO_SAMPLE = 40
DEMO_RERANK_TOP_K = 10


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
    noun = "passage" if total == 1 else "passages"
    return rows, f"{total:,} {noun} · page {page} of {pages}", page


def passage_detail(database: Database, project: str, external_id: str) -> str:
    """The full title and text of one passage, as plain text."""
    project_id = require_project(database, project)
    with database.sessions() as session:
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
    name = file.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{name}:{line}" if line else name


def passage_for_row(database: Database, project: str, rows, index) -> str:
    """The passage of the clicked table row (``rows`` is the table's value, ``index`` the
    clicked cell's (row, column) or row)."""
    row_index = index[0] if isinstance(index, (list, tuple)) else index
    try:
        external_id = rows.iloc[row_index, 0] if hasattr(rows, "iloc") else rows[row_index][0]
    except (IndexError, KeyError, TypeError):
        return ""
    return passage_detail(database, project, str(external_id))


def run_generation(
    database: Database,
    project: str,
    data_dir,
    model: str,
    sample: float | None,
    queries_per_passage: float,
    best_of: float,
    progress=None,
) -> str:
    """Generate queries from the app; returns a Markdown summary (or the error, escaped).

    ``sample`` empty or 0 means every passage of the project.
    """
    from curator.llm.client import LLMSettings
    from curator.services.generate import GenerateOptions, GenerationFailed, generate_queries
    from curator.services.llm import open_llm

    try:
        options = GenerateOptions(
            sample=int(sample) if sample else None,
            queries_per_passage=1 if queries_per_passage is None else int(queries_per_passage),
            best_of=1 if best_of is None else int(best_of),
        )
        client = open_llm(data_dir, LLMSettings(model=(model or "").strip() or "local/gemma3-270m"))
        report = generate_queries(database, project, client, options, progress=progress)
    except GenerationFailed as exc:
        return f"**Generation stopped:** {html.escape(str(exc))}"
    except (ValueError, LookupError) as exc:
        return f"**Cannot generate:** {html.escape(str(exc))}"
    return html.escape(report.summary())


def generated_queries_table(database: Database, project: str, limit: int = 100) -> list[list]:
    """The latest generated queries with their seed passage's title (newest first)."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        rows = session.execute(
            select(
                Passage.external_id,
                Passage.title,
                GeneratedQuery.task,
                GeneratedQuery.query,
                GeneratedQuery.status,
                GeneratedQuery.model,
                GeneratedQuery.error,
            )
            .join(Passage, Passage.id == GeneratedQuery.seed_passage_id)
            .where(GeneratedQuery.project_id == project_id)
            .order_by(GeneratedQuery.id.desc())
            .limit(limit)
        ).all()
    return [
        [f"{pid} · {title}" if title else pid, task, query or f"({error})", status, model]
        for pid, title, task, query, status, model, error in rows
    ]


def run_mining(
    database: Database,
    project: str,
    data_dir,
    top_n: float,
    negatives: float,
    relative_margin: float,
    progress=None,
    guide=None,
) -> str:
    """Mine candidates from the app; returns a Markdown summary with the guard's effect."""
    from curator.pipeline.negatives import NegativeFilter
    from curator.services.mine import MineOptions, mine_candidates, mining_diagnostics

    try:
        flt = NegativeFilter(relative_margin=float(relative_margin) or None)
        options = MineOptions(
            top_n=int(top_n), negatives_per_query=int(negatives), negative_filter=flt
        )
        report = mine_candidates(
            database, project, data_dir, options, progress=progress, guide=guide
        )
        diagnostics = mining_diagnostics(database, project, flt)
    except (ValueError, LookupError) as exc:
        return f"**Cannot mine:** {html.escape(str(exc))}"
    dropped = ", ".join(f"{n} by {reason}" for reason, n in sorted(diagnostics.dropped.items()))
    return "\n\n".join(
        [
            html.escape(report.summary()),
            f"False-negative guard on all {diagnostics.queries} mined queries: "
            f"{diagnostics.kept} of {diagnostics.candidates} candidates admissible as negatives "
            f"(dropped: {html.escape(dropped or 'none')}); "
            f"{diagnostics.queries_without_negative} queries without an admissible negative.",
        ]
    )


def run_reranking(
    database: Database,
    project: str,
    data_dir,
    model: str,
    methods: list[str],
    top_k: float,
    k: float,
    progress=None,
) -> str:
    """Rerank mined queries from the app; returns a Markdown summary (or the error)."""
    from curator.llm.client import LLMError, LLMSettings
    from curator.services.llm import open_llm
    from curator.services.rerank import RerankOptions, rerank_queries

    try:
        options = RerankOptions(
            methods=tuple(methods or ()), top_k=int(top_k), k=float(k), negative_rank=int(top_k)
        )
        client = open_llm(
            data_dir,
            LLMSettings(model=(model or "").strip() or "local/gemma3-270m", temperature=0.0),
        )
        report = rerank_queries(database, project, client, options, progress=progress)
    except LLMError as exc:
        return f"**Reranking stopped:** {html.escape(str(exc))}"
    except (ValueError, LookupError) as exc:
        return f"**Cannot rerank:** {html.escape(str(exc))}"
    return html.escape(report.summary())
