"""Commands over the stored corpus and labels: init, ingest, import, export, status, jobs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curator.cli.common import _open, add_command, cli_progress, options_from_args
from curator.config import Settings
from curator.pipeline.export import FORMATS as EXPORT_FORMATS
from curator.pipeline.training_set import (
    DEFAULT_EVAL_FRACTION,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_SEED,
    SCORE_SOURCES,
)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """create or upgrade the database and a project"""
    from curator.services.projects import ensure_project
    from curator.services.status import _redact

    database = _open(settings)
    ensure_project(database, settings.project, description=args.description)
    print(f"database: {_redact(settings.database_url)} (schema {database.current_revision()})")
    print(f"project:  {settings.project}")
    if args.allow_model is not None:
        from curator.services.access import set_allowed_models

        models = set_allowed_models(database, settings.project, args.allow_model)
        print(f"models the app may use: {', '.join(models)}")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """add passages from corpus files

    Add passages from BEIR corpus.jsonl, JSONL, CSV, TSV, Parquet files or a folder of
    .txt/.md files. Re-ingesting a file adds nothing. With --on-error abort (default) a bad
    record rolls back the whole file; with skip, bad records are reported and the rest is
    stored.
    """
    from curator.pipeline.chunking import ChunkingConfig
    from curator.pipeline.readers import FieldMap, IngestError
    from curator.services.ingest import IngestAborted, ingest_path

    chunking = ChunkingConfig(args.chunk_words, args.chunk_overlap) if args.chunk else None
    fields = FieldMap(id=args.id_field, title=args.title_field or None, text=args.text_field)
    database = _open(settings)
    failed = False
    for path in args.paths:
        try:
            report = ingest_path(
                database,
                settings.project,
                Path(path),
                fmt=args.format,
                fields=fields,
                chunking=chunking,
                on_error=args.on_error,
                encoding=args.encoding,
                progress=cli_progress(args),
            )
        except (IngestAborted, IngestError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(report.summary())
        for error in report.errors[: args.show_errors]:
            print(f"  skipped: {error}", file=sys.stderr)
        if len(report.errors) > args.show_errors:
            print(
                f"  ... and {len(report.errors) - args.show_errors} more "
                f"(all listed in pipeline run {report.run_id})",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """add an existing dataset's labels (BEIR qrels, FlagEmbedding JSONL) as judgments

    Store the labelled queries of a BEIR folder (queries.jsonl, qrels/*.tsv; its corpus
    ingested first) or FlagEmbedding JSONL as judgments with provenance 'imported', to
    curate on top of them. One transaction: a bad line stores nothing.
    """
    from curator.services.import_labels import ImportOptions, import_labels

    path = Path(args.path)
    fmt = args.format
    if fmt == "auto":
        fmt = "beir" if (path / "queries.jsonl").is_file() else "flag"
    options = options_from_args(
        ImportOptions,
        args,
        "task annotator seed",
        fmt=fmt,
        add_passages=not args.no_add_passages,
    )
    report = import_labels(_open(settings), settings.project, path, options)
    print(report.summary())
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """write the curated set for sentence-transformers, FlagEmbedding, BEIR or audits

    Export the curated training set with the trainer's policy (human judgments over
    proposals, rejected queries dropped, unreviewed queries by --policy) into the folder
    --out, the held-out split (test) apart from train, with a manifest.json. The folder is
    written under a temporary name and renamed at the end; an existing one is replaced only
    with --force. Formats: see docs/export.md.
    """
    from curator.services.export import ExportOptions, export_dataset

    options = options_from_args(
        ExportOptions,
        args,
        "policy seed eval_fraction min_confidence negatives scores force",
        fmt=args.format,
    )
    report = export_dataset(_open(settings), settings.project, Path(args.out), options)
    print(report.summary())
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """counts per table and pipeline stage"""
    from curator.services.status import project_status

    status = project_status(_open(settings), settings.project)
    print(f"project:  {status.project}")
    print(f"database: {status.database}")
    print()
    for stage, line in status.stage_lines():
        print(f"  {stage:<9} {line}")
    if status.runs:
        print("\nlatest runs:")
        for run in status.runs:
            counts = ", ".join(f"{k}={v}" for k, v in run.counts.items())
            print(f"  #{run.id:<4} {run.started_at}  {run.stage:<8} {run.status:<11} {counts}")
            if run.error and run.status != "done":
                print(f"        {run.error.splitlines()[0][:160]}")
    return 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    """recent jobs of the CLI and the app: running, waiting, done, failed

    The jobs table: one heavy job (generate, mine, rerank, train, eval, export, ingest) runs
    at a time per data folder; the others wait in turn. A job whose process died is shown
    failed.
    """
    from curator.services.jobs import cancel, list_jobs

    database = _open(settings)
    if args.cancel is not None:
        job = cancel(database, args.cancel)
        print(f"job #{job.id} {job.kind}: {job.status}")
        return 0
    jobs = list_jobs(database, limit=args.limit)
    if not jobs:
        print("no jobs yet")
    for job in jobs:
        print(job.line())
    return 0


def _init_options(init: argparse.ArgumentParser) -> None:
    """The ``init`` command's options."""
    init.add_argument("--description", default="", help="what the project is about")
    init.add_argument(
        "--allow-model",
        action="append",
        metavar="MODEL",
        help="a litellm model string the app may use besides the embedded local model "
        "(repeat for several; replaces the project's list; --allow-model '' clears it)",
    )


def _ingest_options(ingest: argparse.ArgumentParser) -> None:
    """The ``ingest`` command's options."""
    ingest.add_argument("paths", nargs="+", help="files or folders")
    ingest.add_argument(
        "--format",
        default="auto",
        choices=["auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder"],
    )
    ingest.add_argument("--id-field", default=None, help="id field (default: _id, else id)")
    ingest.add_argument("--title-field", default="title", help="title field ('' for none)")
    ingest.add_argument("--text-field", default="text", help="text field")
    ingest.add_argument("--encoding", default="utf-8", help="text encoding of the files")
    ingest.add_argument(
        "--chunk",
        action="store_true",
        help="split documents into passages of about --chunk-words words",
    )
    ingest.add_argument("--chunk-words", type=int, default=100)
    ingest.add_argument("--chunk-overlap", type=int, default=20)
    ingest.add_argument("--on-error", choices=["abort", "skip"], default="abort")
    ingest.add_argument(
        "--show-errors", type=int, default=20, help="how many skipped records to list"
    )


def _import_options(imports: argparse.ArgumentParser) -> None:
    """The ``import`` command's options."""
    imports.add_argument("path", help="a BEIR folder, or a FlagEmbedding .jsonl file or folder")
    imports.add_argument("--format", default="auto", choices=["auto", "beir", "flag"])
    imports.add_argument(
        "--task",
        default="Given a query, retrieve passages that answer it.",
        help="task description for queries whose file gives none",
    )
    imports.add_argument("--annotator", help="store the judgments under this name")
    imports.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed to store")
    imports.add_argument(
        "--no-add-passages",
        action="store_true",
        help="FlagEmbedding texts must match passages of the project (else they are added)",
    )
    imports.add_argument("--project", default=argparse.SUPPRESS, help="project to import into")


def _export_options(export: argparse.ArgumentParser) -> None:
    """The ``export`` command's options."""
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--out", required=True, help="folder to write (must not exist)")
    export.add_argument(
        "--policy",
        default="none",
        choices=["none", "high_confidence", "all"],
        help="unreviewed queries: none (only judged ones, default), high_confidence, all",
    )
    export.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    export.add_argument("--eval-fraction", type=float, default=DEFAULT_EVAL_FRACTION)
    export.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    export.add_argument(
        "--negatives", type=int, default=3, help="negatives per row (st-ntuples, st-margin-mse)"
    )
    export.add_argument(
        "--scores",
        default="auto",
        choices=SCORE_SOURCES,
        help="teacher scores for st-margin-mse and flag: auto (LLM QL if any, else guide)",
    )
    export.add_argument("--force", action="store_true", help="replace an existing --out")
    export.add_argument("--project", default=argparse.SUPPRESS, help="project to export")


def _jobs_options(jobs: argparse.ArgumentParser) -> None:
    """The ``jobs`` command's options."""
    jobs.add_argument("--limit", type=int, default=20, help="show the N newest jobs")
    jobs.add_argument("--cancel", type=int, metavar="ID", help="cancel a waiting or running job")


def add_commands(commands) -> None:
    """Register this module's commands on the ``commands`` subparsers."""
    add_command(commands, "init", cmd_init, _init_options)
    add_command(commands, "ingest", cmd_ingest, _ingest_options, job="ingest")
    add_command(commands, "import", cmd_import, _import_options)
    add_command(commands, "export", cmd_export, _export_options, job="export")
    add_command(commands, "jobs", cmd_jobs, _jobs_options)
    add_command(commands, "status", cmd_status)
