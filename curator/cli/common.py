"""What every command group shares: registering a command, opening the database, filling
a service's options from the command line, and the options of heavy jobs and LLM
providers."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

from curator.config import Settings

Command = Callable[[argparse.Namespace, Settings], int]
#: the options that name a model (argparse dest -> option), checked by ``check_model_names``
MODEL_OPTIONS = {
    "model": "--model",
    "guide": "--guide",
    "base_model": "--base-model",
    "allow_model": "--allow-model",
}


def _open(settings: Settings):
    from db import open_database

    return open_database(settings.database_url)


def add_command(
    commands,
    name: str,
    run: Command,
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
    *,
    job: str | None = None,
) -> argparse.ArgumentParser:
    """Register the command ``name`` on the ``commands`` subparsers and return its parser.

    ``run(args, settings)`` carries it out: the first paragraph of its docstring is the
    command's line in ``curator --help``, the rest (if any) its description in
    ``curator NAME --help``. ``add_options(parser)`` adds its options; a heavy ``job``
    (see :func:`add_job_options`) gets ``--no-wait`` after them.
    """
    help_text, _, description = inspect.cleandoc(run.__doc__ or "").partition("\n\n")
    command = commands.add_parser(name, help=help_text, description=description or None)
    if add_options is not None:
        add_options(command)
    command.set_defaults(func=run)
    if job is not None:
        add_job_options(command, job)
    return command


def check_model_names(args: argparse.Namespace) -> None:
    """Refuse a model name over ``db.limits.MAX_MODEL_CHARS`` (the model columns' size)
    given to any of ``MODEL_OPTIONS``, before the command opens the database or records a
    job: :class:`db.limits.TextTooLong` (a ``ValueError``; the CLI prints it in one line and
    exits 2) naming the option, the length and the limit."""
    from db.limits import MAX_MODEL_CHARS, check_length

    for name, option in MODEL_OPTIONS.items():
        value = getattr(args, name, None)
        for given in value if isinstance(value, list) else [value]:
            if isinstance(given, str):
                check_length(f"the model name given to {option}", given, MAX_MODEL_CHARS)


def options_from_args(cls: type, args: argparse.Namespace, names: str, **values: Any):
    """``cls(...)`` (a service's options dataclass) from the command-line options ``names``
    (space-separated, each the name of a field and of an argument, as ``namedtuple``
    takes them) and ``values`` for the fields whose value is renamed or computed; the
    fields named by neither keep their defaults."""
    return cls(**{name: getattr(args, name) for name in names.split()}, **values)


def job_progress(args: argparse.Namespace, also=None):
    """A :class:`curator.services.jobs.JobProgress` on the row of the job the command runs
    as (``args.job``, the :class:`curator.services.jobs.CliJob` that
    ``curator.cli._run_command`` sets): done, total and message, at most once a second and
    at each start and finish, so ``curator jobs`` and the app's Jobs panel show how far it
    is; ``also`` gets every call too. None when the command runs outside a job."""
    job = getattr(args, "job", None)
    if job is None or job.database is None:
        return None
    from curator.services.jobs import CLI_PROGRESS_SECONDS, JobProgress

    return JobProgress(job.database, job.job_id, also=also, interval=CLI_PROGRESS_SECONDS)


def cli_progress(args: argparse.Namespace):
    """The progress a CLI stage reports to: a tqdm bar on stderr, and the job's row
    (:func:`job_progress`) when the command runs as a job."""
    from curator.progress import TqdmProgress

    bar = TqdmProgress()
    return job_progress(args, also=bar) or bar


def add_llm_options(command: argparse.ArgumentParser, *, model_help: str | None = None) -> None:
    """The LLM a command calls: ``--model``, ``--api-base``, ``--api-key`` (generate, rerank)."""
    command.add_argument("--model", default="local/gemma3-270m", help=model_help)
    command.add_argument("--api-base", help="base URL of an OpenAI-compatible server (vLLM...)")
    command.add_argument(
        "--api-key",
        default=None,
        help="API key of a remote provider (default: CURATOR_API_KEY, else the provider's "
        "own variable such as OPENAI_API_KEY; a local --api-base server needs none)",
    )


def add_job_options(command: argparse.ArgumentParser, job: str) -> None:
    """Mark ``command`` as a heavy job: one at a time per data folder, ``--no-wait``."""
    command.add_argument(
        "--no-wait",
        action="store_true",
        help="refuse to start while another job (generate, mine, rerank, train, eval, export, "
        "ingest; from the CLI or the app) runs or waits on the same data folder, instead of "
        "waiting for it",
    )
    command.set_defaults(heavy_job=job)
