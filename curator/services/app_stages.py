"""The pipeline stages as the app runs them (one job each, in ``curator.worker``): the
page's values in (a job's parameters, by name), the result the page shows out, as plain
JSON values (``curator.ui.results`` turns them into Markdown).

A stage that refuses to run or stops raises :class:`curator.services.errors.StageRefused`
with what the user is told; any other exception is a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from curator.services import Database
from curator.services.errors import StageRefused

DEFAULT_MODEL = "local/gemma3-270m"
#: what a service raises for a value it cannot use or a project or row that is not there
BAD_INPUT = (ValueError, LookupError)


@contextmanager
def refusing(title: str, *errors: type[Exception]) -> Iterator[None]:
    """Raise ``StageRefused(title, the error's message)`` for an ``errors`` exception
    inside the block."""
    try:
        yield
    except errors as exc:
        raise StageRefused(title, str(exc)) from exc


def generate(
    database: Database,
    project: str,
    data_dir: Path | str,
    *,
    model: str | None = None,
    sample: float | None = None,
    queries_per_passage: float | None = 1,
    best_of: float | None = 1,
    progress=None,
) -> dict[str, Any]:
    """Generate queries; ``sample`` empty or 0 means every passage. ``{"summary"}``."""
    from curator.llm.client import LLMSettings
    from curator.services.generate import GenerateOptions, GenerationFailed, generate_queries
    from curator.services.llm import open_llm

    with refusing("Cannot generate", *BAD_INPUT), refusing("Generation stopped", GenerationFailed):
        options = GenerateOptions(
            sample=int(sample) if sample else None,
            queries_per_passage=1 if queries_per_passage is None else int(queries_per_passage),
            best_of=1 if best_of is None else int(best_of),
        )
        client = open_llm(Path(data_dir), LLMSettings(model=(model or "").strip() or DEFAULT_MODEL))
        report = generate_queries(database, project, client, options, progress=progress)
    return {"summary": report.summary()}


def mine(
    database: Database,
    project: str,
    data_dir: Path | str,
    *,
    top_n: float = 30,
    negatives: float = 1,
    relative_margin: float | None = 0.95,
    margin: float | None = None,
    progress=None,
    guide=None,
) -> dict[str, Any]:
    """Mine candidates; ``relative_margin`` and ``margin`` (absolute) 0 or empty turn that
    rule off. ``{"summary", "guard"}``: the guard's effect on every mined query."""
    from curator.pipeline.negatives import NegativeFilter
    from curator.services.mine import MineOptions, mine_candidates, mining_diagnostics

    with refusing("Cannot mine", *BAD_INPUT):
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
    guard = {
        "queries": diagnostics.queries,
        "kept": diagnostics.kept,
        "candidates": diagnostics.candidates,
        "dropped": dict(sorted(diagnostics.dropped.items())),
        "queries_without_negative": diagnostics.queries_without_negative,
    }
    return {"summary": report.summary(), "guard": guard}


def rerank(
    database: Database,
    project: str,
    data_dir: Path | str,
    *,
    model: str | None = None,
    methods: list[str] | None = None,
    top_k: float = 10,
    k: float = 0,
    progress=None,
) -> dict[str, Any]:
    """Rerank mined queries with the LLM settings the CLI uses. ``{"summary"}``."""
    from curator.llm.client import LLMError
    from curator.services.llm import open_llm, rerank_llm_settings
    from curator.services.rerank import RerankOptions, rerank_queries

    with refusing("Cannot rerank", *BAD_INPUT), refusing("Reranking stopped", LLMError):
        options = RerankOptions(
            methods=tuple(methods or ()), top_k=int(top_k), k=float(k), negative_rank=int(top_k)
        )
        client = open_llm(Path(data_dir), rerank_llm_settings(model))
        report = rerank_queries(database, project, client, options, progress=progress)
    return {"summary": report.summary()}


#: the bad records an ingest lists on the page (all are in its pipeline run)
SHOWN_ERRORS = 200


def error_row(error) -> list[str]:
    """An ingest error as a table row of text: [file name, line, field, message]."""
    name = error.file.replace("\\", "/").rsplit("/", 1)[-1]
    return [name, "" if error.line is None else str(error.line), error.field or "", error.message]


def ingest(
    database: Database,
    project: str,
    data_dir: Path | str,
    *,
    path: str,
    fmt: str = "auto",
    id_field: str = "",
    title_field: str = "title",
    text_field: str = "text",
    chunk: bool = False,
    chunk_words: float = 100,
    chunk_overlap: float = 20,
    on_error: str = "abort",
    progress=None,
) -> dict[str, Any]:
    """Ingest the file or folder ``path`` with the options of ``curator ingest``.
    ``{"summary", "errors"}``: the skipped records as :func:`error_row` rows (the first
    ``SHOWN_ERRORS``); a refusal's ``errors`` hold the record that stopped the file."""
    from curator.pipeline.chunking import ChunkingConfig
    from curator.pipeline.readers import FieldMap, IngestError
    from curator.services.ingest import IngestAborted, ingest_path

    path = Path(path)
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
        raise StageRefused(
            f"Nothing stored from {path.name}",
            "the first bad record stops the file (choose *skip* to store the good records "
            "and list the bad ones).",
            errors=[error_row(exc.error)],
        ) from exc
    except IngestError as exc:
        raise StageRefused(f"Cannot read {path.name}.", errors=[error_row(exc)]) from exc
    except (ValueError, OSError) as exc:
        raise StageRefused("Cannot ingest", str(exc)) from exc
    summary = report.summary().replace(str(path), path.name, 1)
    if len(report.errors) > SHOWN_ERRORS:
        summary += (
            f" The first {SHOWN_ERRORS} errors are listed; all are in pipeline run {report.run_id}."
        )
    return {"summary": summary, "errors": [error_row(e) for e in report.errors[:SHOWN_ERRORS]]}


def export(
    database: Database,
    project: str,
    data_dir: Path | str,
    *,
    fmt: str = "st-triplets",
    policy: str = "none",
    negatives: float | int | None = 3,
    progress=None,
) -> dict[str, Any]:
    """Export ``project`` as ``fmt`` under ``policy`` into ``<data dir>/exports/`` and zip
    it. ``{"summary", "counts", "rows", "score_source", "folder", "archive"}``."""
    from curator.services.export import ExportOptions, export_zipped

    if progress is not None:
        progress.start(None, "", f"export ({fmt})")
    options = ExportOptions(fmt=fmt, policy=policy, negatives=int(negatives or 3), force=True)
    with refusing("Export failed", *BAD_INPUT, OSError):
        report, folder, archive = export_zipped(database, project, data_dir, options)
    return {
        "summary": report.summary(),
        "counts": report.manifest["counts"],
        "rows": report.manifest["rows"],
        "score_source": report.manifest.get("score_source"),
        "folder": str(folder),
        "archive": str(archive),
    }
