"""Commands over the stored corpus and labels: init, ingest, import, export, status, jobs.
Each command is a ``cmd_*`` function and an ``_add_*`` parser
function; ``add_commands`` registers them all."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curator.cli.common import _open, add_job_options
from curator.config import Settings
from curator.pipeline.export import FORMATS as EXPORT_FORMATS
from curator.pipeline.training_set import (
    DEFAULT_EVAL_FRACTION,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_SEED,
    SCORE_SOURCES,
)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
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
    from curator.pipeline.chunking import ChunkingConfig
    from curator.pipeline.readers import FieldMap, IngestError
    from curator.progress import TqdmProgress
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
                progress=TqdmProgress(),
            )
        except IngestAborted as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        except IngestError as exc:
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
    from curator.services.import_labels import ImportOptions, import_labels

    path = Path(args.path)
    fmt = args.format
    if fmt == "auto":
        fmt = "beir" if (path / "queries.jsonl").is_file() else "flag"
    options = ImportOptions(
        fmt=fmt,
        task=args.task,
        annotator=args.annotator,
        seed=args.seed,
        add_passages=not args.no_add_passages,
    )
    report = import_labels(_open(settings), settings.project, path, options)
    print(report.summary())
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.export import ExportOptions, export_dataset

    options = ExportOptions(
        fmt=args.format,
        policy=args.policy,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        min_confidence=args.min_confidence,
        negatives=args.negatives,
        scores=args.scores,
        force=args.force,
    )
    report = export_dataset(_open(settings), settings.project, Path(args.out), options)
    print(report.summary())
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
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


def _add_init(commands) -> None:
    """The ``init`` command's arguments."""
    init = commands.add_parser("init", help="create or upgrade the database and a project")
    init.add_argument("--description", default="", help="what the project is about")
    init.add_argument(
        "--allow-model",
        action="append",
        metavar="MODEL",
        help="a litellm model string the app may use besides the embedded local model "
        "(repeat for several; replaces the project's list; --allow-model '' clears it)",
    )
    init.set_defaults(func=cmd_init)


def _add_ingest(commands) -> None:
    """The ``ingest`` command's arguments."""
    ingest = commands.add_parser(
        "ingest",
        help="add passages from corpus files",
        description="Add passages from BEIR corpus.jsonl, JSONL, CSV, TSV, Parquet files or a "
        "folder of .txt/.md files. Re-ingesting a file adds nothing. With --on-error abort "
        "(default) a bad record rolls back the whole file; with skip, bad records are "
        "reported and the rest is stored.",
    )
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
    ingest.set_defaults(func=cmd_ingest)
    add_job_options(ingest, "ingest")


def _add_import(commands) -> None:
    """The ``import`` command's arguments."""
    imports = commands.add_parser(
        "import",
        help="add an existing dataset's labels (BEIR qrels, FlagEmbedding JSONL) as judgments",
        description="Store the labelled queries of a BEIR folder (queries.jsonl, qrels/*.tsv; "
        "its corpus ingested first) or FlagEmbedding JSONL as judgments with provenance "
        "'imported', to curate on top of them. One transaction: a bad line stores nothing.",
    )
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
    imports.set_defaults(func=cmd_import)


def _add_export(commands) -> None:
    """The ``export`` command's arguments."""
    export = commands.add_parser(
        "export",
        help="write the curated set for sentence-transformers, FlagEmbedding, BEIR or audits",
        description="Export the curated training set with the trainer's policy (human "
        "judgments over proposals, rejected queries dropped, unreviewed queries by --policy) "
        "into the folder --out, the held-out split (test) apart from train, with a "
        "manifest.json. The folder is written under a temporary name and renamed at the end; "
        "an existing one is replaced only with --force. Formats: see docs/export.md.",
    )
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
    export.set_defaults(func=cmd_export)
    add_job_options(export, "export")


def _add_jobs(commands) -> None:
    """The ``jobs`` command's arguments."""
    jobs = commands.add_parser(
        "jobs",
        help="recent jobs of the CLI and the app: running, waiting, done, failed",
        description="The jobs table: one heavy job (generate, mine, rerank, train, eval, "
        "export, ingest) runs at a time per data folder; the others wait in turn. A job whose "
        "process died is shown failed.",
    )
    jobs.add_argument("--limit", type=int, default=20, help="show the N newest jobs")
    jobs.add_argument("--cancel", type=int, metavar="ID", help="cancel a waiting or running job")
    jobs.set_defaults(func=cmd_jobs)


def _add_status(commands) -> None:
    """The ``status`` command's arguments."""
    status = commands.add_parser("status", help="counts per table and pipeline stage")
    status.set_defaults(func=cmd_status)


def add_commands(commands) -> None:
    """Register this module's commands on the ``commands`` subparsers."""
    _add_init(commands)
    _add_ingest(commands)
    _add_import(commands)
    _add_export(commands)
    _add_jobs(commands)
    _add_status(commands)
