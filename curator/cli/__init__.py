"""The ``curator`` command line.

Heavy libraries (torch, gradio, litellm) are imported inside the commands that need
them, so ``curator --help`` and ``curator status`` start fast.

One module per command group: ``corpus`` (init, ingest, import, export, status,
jobs), ``pipeline`` (generate, mine, diagnose, rerank), ``training`` (train, eval),
``server`` (serve, annotator, doctor); ``common`` holds what they share. In each, a
command is a ``cmd_*`` function (its docstring is its help) and an ``_*_options``
function that adds its options; the module's ``add_commands`` registers them all.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from curator import __version__
from curator.cli import corpus, pipeline, server, training
from curator.cli.common import _open, check_model_names
from curator.config import Settings, resolve_settings


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
    for group in (corpus, pipeline, training, server):
        group.add_commands(commands)
    return parser


def _run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen command; a heavy job first takes the data folder's job lock."""
    job = getattr(args, "heavy_job", None)
    if job is None:
        return args.func(args, settings)
    from curator.services.jobs import cli_job

    def waiting(holder: str) -> None:
        print(
            f"waiting for another job in {settings.data_dir} ({holder}); Ctrl-C to stop, "
            "--no-wait to refuse instead",
            file=sys.stderr,
            flush=True,
        )

    with cli_job(
        _open(settings),
        settings.project,
        job,
        _job_params(args),
        settings.data_dir,
        wait=not args.no_wait,
        on_wait=waiting,
    ) as handle:
        args.job = handle  # its stages write their progress to the job's row
        handle.exit_code = args.func(args, settings)
        return handle.exit_code


def _job_params(args: argparse.Namespace) -> dict:
    """The command's options as JSON values, for its row in the jobs table."""
    params = {}
    for name, value in vars(args).items():
        if name in ("func", "heavy_job", "job", "verbose", "db", "data_dir") or callable(value):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        params[name] = value
    return params


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    existing = set(logging.getLogger().handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in set(logging.getLogger().handlers) - existing:
        # some libraries (bm25s) set their own loggers to DEBUG: filter at our handler
        handler.setLevel(level)
    settings = resolve_settings(args.data_dir, args.db, args.project)
    try:
        check_model_names(args)  # before anything is stored
        return _run_command(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
