"""The ``curator`` command line.

Heavy libraries (torch, gradio, litellm) are imported inside the commands that need
them, so ``curator --help`` and ``curator status`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from curator import __version__
from curator.config import DEMO_PROJECT, Settings, resolve_settings


def _open(settings: Settings):
    from db import open_database

    return open_database(settings.database_url)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.projects import ensure_project

    database = _open(settings)
    ensure_project(database, settings.project, description=args.description)
    print(f"database: {settings.database_url} (schema {database.current_revision()})")
    print(f"project:  {settings.project}")
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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from curator.ui.network import check_bind_address

    check_bind_address(args.host)
    project = settings.project
    database = _open(settings)
    if args.demo:
        from curator.services.demo import ensure_demo_project

        project = DEMO_PROJECT if settings.project == "default" else settings.project
        report = ensure_demo_project(database, project)
        if report is not None:
            print(report.summary())
    from curator.ui.app import launch

    launch(database, project, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curator",
        description="Curate training data for text-embedding models: ingest a corpus, generate "
        "queries, mine and rerank candidates, annotate, train, export.",
    )
    parser.add_argument("--version", action="version", version=f"curator {__version__}")
    parser.add_argument("--data-dir", help="data folder (env CURATOR_DATA_DIR, default ./data)")
    parser.add_argument(
        "--db",
        help="SQLAlchemy database URL (env CURATOR_DATABASE_URL, "
        "default sqlite:///<data dir>/curator.db)",
    )
    parser.add_argument(
        "--project", help="curation project (env CURATOR_PROJECT, default 'default')"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create or upgrade the database and a project")
    init.add_argument("--description", default="", help="what the project is about")
    init.set_defaults(func=cmd_init)

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

    status = commands.add_parser("status", help="counts per table and pipeline stage")
    status.set_defaults(func=cmd_status)

    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="serve the embedded demo project (Python language reference), "
        "ingesting it on first use",
    )
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    settings = resolve_settings(args.data_dir, args.db, args.project)
    try:
        return args.func(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
