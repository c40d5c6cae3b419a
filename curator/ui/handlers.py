"""Handlers of the app: module-level functions over plain values, testable without a browser.

Text from the corpus goes into Dataframe cells and Textboxes, which render it as text,
never as HTML. Values that go into Markdown are escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from sqlalchemy import select

from curator.services.projects import require_project
from curator.services.status import project_status
from db import Database
from db.models import GeneratedQuery, Passage
from db.queries import SEARCH_COUNT_LIMIT, passage_page

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
    if total > SEARCH_COUNT_LIMIT:  # the search stopped counting
        return rows, f"more than {SEARCH_COUNT_LIMIT:,} {noun} · page {page}", page
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
    margin: float | None = None,
) -> str:
    """Mine candidates from the app; returns a Markdown summary with the guard's effect.

    ``relative_margin`` and ``margin`` (absolute) 0 or empty turn that rule off."""
    from curator.pipeline.negatives import NegativeFilter
    from curator.services.mine import MineOptions, mine_candidates, mining_diagnostics

    try:
        flt = NegativeFilter(
            relative_margin=float(relative_margin) if relative_margin else None,
            margin=float(margin) if margin else None,
        )
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


HISTOGRAM_BINS = 40
GUARD_AXES = ("score / positive", "score - positive")
KEPT_COLOR, DISCARDED_COLOR = "#4c78a8", "#e45756"


def guard_diagnostics(
    database: Database,
    project: str,
    relative_margin: float | None,
    margin: float | None = None,
    axis: str = GUARD_AXES[0],
    bins: int = HISTOGRAM_BINS,
) -> tuple[dict | None, str]:
    """What the false-negative guard would discard, for tuning it by looking.

    Returns a Vega-Lite histogram (a plain dict; the app hands it to ``gr.Plot``) of the
    mined candidates' guide scores relative to their seed passage's (``axis``: the ratio,
    which the relative margin cuts at ``relative_margin``, or the difference, which the
    absolute margin cuts at ``-margin``), with that cut drawn as a vertical line and bars
    past it in red; and a Markdown summary with the number of candidates the whole guard
    (every rule together, as ``curator diagnose`` counts them) discards. ``relative_margin``
    or ``margin`` 0 or empty turns that rule off. ``(None, message)`` when nothing is mined.
    """
    from curator.pipeline.negatives import NegativeFilter
    from curator.services.mine import mining_diagnostics

    try:
        flt = NegativeFilter(
            relative_margin=float(relative_margin) if relative_margin else None,
            margin=float(margin) if margin else None,
        )
        diagnostics = mining_diagnostics(database, project, flt)
    except (ValueError, LookupError) as exc:
        return None, f"**Cannot diagnose:** {html.escape(str(exc))}"
    if not diagnostics.queries:
        return None, "No mined queries yet: generate and mine first."
    ratio = axis != GUARD_AXES[1]
    if ratio:
        values = diagnostics.relative_scores
        cut = flt.relative_margin if flt.relative_margin is not None else 1.0
        rule = f"relative margin {cut:.2f}" if flt.relative_margin is not None else "GISTEmbed rule"
    else:
        values = diagnostics.score_gaps
        cut = -flt.margin if flt.margin is not None else 0.0
        rule = f"margin {flt.margin:.2f}" if flt.margin is not None else "GISTEmbed rule"
    discarded, judged = diagnostics.discarded, diagnostics.in_window
    share = f" ({discarded / judged:.0%})" if judged else ""
    reasons = ", ".join(f"{n} by {r}" for r, n in sorted(diagnostics.dropped.items()))
    title = f"The guard discards {discarded:,} of {judged:,} candidates{share}"
    summary = (
        f"**{html.escape(title)}** over {diagnostics.queries:,} mined queries "
        f"(dropped: {html.escape(reasons or 'none')}); "
        f"{diagnostics.queries_without_negative:,} queries are left without an admissible "
        f"negative. The line is the {html.escape(rule)}; candidates right of it (red) are "
        "discarded by that rule."
    )
    if ratio and diagnostics.queries_with_weak_positive:
        summary += (
            f" {diagnostics.queries_with_weak_positive:,} queries whose seed the guide scores "
            "<= 0 (suspect queries) have no ratio and are not in the histogram."
        )
    spec = _histogram_spec(
        values,
        cut,
        bins,
        title=title,
        subtitle=f"line: {rule}",
        x_title="candidate guide score / seed passage's score"
        if ratio
        else "candidate guide score - seed passage's score",
    )
    return spec, summary


def _histogram_spec(
    values: list[float], cut: float, bins: int, *, title: str, subtitle: str, x_title: str
) -> dict:
    """A Vega-Lite layered chart: ``values`` in ``bins`` bins, one edge exactly at ``cut``
    (so each bar is wholly on one side of it), bars past ``cut`` red, a rule at ``cut``."""
    import math

    import numpy as np

    data = np.asarray(values, dtype=float)
    low = min(float(data.min()) if data.size else cut, cut)
    high = max(float(data.max()) if data.size else cut, cut)
    width = (high - low) / bins or 0.05
    start = cut - math.ceil((cut - low) / width - 1e-9) * width
    count = max(1, math.ceil((high - start) / width + 1e-9))
    if start + count * width <= high:
        count += 1
    edges = start + width * np.arange(count + 1)
    counts, _ = np.histogram(data, bins=edges)
    rows = [
        {
            "start": round(float(a), 6),
            "end": round(float(b), 6),
            "count": int(n),
            "side": "discarded" if a >= cut - 1e-9 else "kept",
        }
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": title, "subtitle": subtitle},
        "width": 640,
        "height": 240,
        "layer": [
            {
                "data": {"values": rows},
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {
                        "field": "start",
                        "type": "quantitative",
                        "bin": {"binned": True},
                        "title": x_title,
                    },
                    "x2": {"field": "end"},
                    "y": {"field": "count", "type": "quantitative", "title": "candidates"},
                    "color": {
                        "field": "side",
                        "type": "nominal",
                        "title": "",
                        "scale": {
                            "domain": ["kept", "discarded"],
                            "range": [KEPT_COLOR, DISCARDED_COLOR],
                        },
                    },
                },
            },
            {
                "data": {"values": [{"cut": cut}]},
                "mark": {"type": "rule", "color": "black", "strokeWidth": 2, "strokeDash": [6, 3]},
                "encoding": {"x": {"field": "cut", "type": "quantitative"}},
            },
        ],
    }


INGEST_FORMATS = ("auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder")
INGEST_ERROR_COLUMNS = ["file", "line", "field", "error"]
SHOWN_ERRORS = 200


def _stored_upload(upload, data_dir) -> Path:
    """A copy of an uploaded file under ``<data dir>/uploads/<content hash>/<its name>``,
    so the source path stored with the passages outlives the app's temporary files."""
    import hashlib
    import shutil

    source = Path(upload if isinstance(upload, (str, Path)) else upload.name)
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    target = Path(data_dir) / "uploads" / digest.hexdigest()[:16] / source.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target


def _error_row(error) -> list:
    name = error.file.replace("\\", "/").rsplit("/", 1)[-1]
    return [name, "" if error.line is None else str(error.line), error.field or "", error.message]


def run_ingest(
    database: Database,
    project: str,
    data_dir,
    upload,
    server_path: str,
    fmt: str = "auto",
    id_field: str = "",
    title_field: str = "title",
    text_field: str = "text",
    chunk: bool = False,
    chunk_words: float = 100,
    chunk_overlap: float = 20,
    on_error: str = "abort",
    *,
    allow_server_path: bool = True,
    progress=None,
) -> tuple[str, list[list]]:
    """Ingest an uploaded file (kept under ``<data dir>/uploads/``) or a path on the server,
    with the options of ``curator ingest``; returns (a Markdown summary, escaped; the
    errors as [file, line, field, error] rows, which Dataframe cells show as text).

    ``allow_server_path=False`` (the app behind a login) refuses server paths, so an
    annotator cannot read the server's files into the corpus.
    """
    from curator.pipeline.chunking import ChunkingConfig
    from curator.pipeline.readers import FieldMap, IngestError
    from curator.services.ingest import IngestAborted, ingest_path

    typed = (server_path or "").strip()
    if upload is not None and upload != []:
        if isinstance(upload, list):
            upload = upload[0]
        path = _stored_upload(upload, data_dir)
    elif typed:
        if not allow_server_path:
            return (
                "**Cannot ingest:** server paths are off when the app runs with a login; "
                "upload the file, or run `curator ingest` on the server.",
                [],
            )
        path = Path(typed).expanduser()
    else:
        return "**Cannot ingest:** upload a file or give a path on the server.", []
    try:
        chunking = ChunkingConfig(int(chunk_words), int(chunk_overlap)) if chunk else None
        fields = FieldMap(
            id=(id_field or "").strip() or None,
            title=(title_field or "").strip() or None,
            text=(text_field or "").strip() or "text",
        )
        report = ingest_path(
            database,
            project,
            path,
            fmt=fmt or "auto",
            fields=fields,
            chunking=chunking,
            on_error=on_error or "abort",
            progress=progress,
        )
    except IngestAborted as exc:
        return (
            f"**Nothing stored from {html.escape(path.name)}:** the first bad record stops "
            "the file (choose *skip* to store the good records and list the bad ones).",
            [_error_row(exc.error)],
        )
    except IngestError as exc:
        return f"**Cannot read {html.escape(path.name)}.**", [_error_row(exc)]
    except (ValueError, OSError) as exc:
        return f"**Cannot ingest:** {html.escape(str(exc))}", []
    summary = html.escape(report.summary().replace(str(path), path.name, 1))
    if len(report.errors) > SHOWN_ERRORS:
        summary += (
            f" The first {SHOWN_ERRORS} errors are listed; all are in pipeline run {report.run_id}."
        )
    return summary, [_error_row(e) for e in report.errors[:SHOWN_ERRORS]]
