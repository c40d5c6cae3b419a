"""What every command group shares: opening the database and the options of heavy jobs
and remote LLM providers."""

from __future__ import annotations

import argparse

from curator.config import Settings


def _open(settings: Settings):
    from db import open_database

    return open_database(settings.database_url)


def add_api_key_option(command) -> None:
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
