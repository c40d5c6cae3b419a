"""The app and its accounts, and the install check: serve, annotator, doctor."""

from __future__ import annotations

import argparse
import sys

from curator.cli.common import _open, add_command
from curator.config import DEMO_PROJECT, Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """run the web app"""
    from curator.services.auth import has_accounts
    from curator.ui.network import check_bind_address

    project = settings.project
    database = _open(settings)
    if args.login and not has_accounts(database):
        raise ValueError(
            "--login needs annotator accounts: add one with `curator annotator add NAME`"
        )
    if not args.login:
        check_bind_address(args.host)
    if args.demo:
        from curator.services.demo import ensure_demo_project

        project = DEMO_PROJECT if settings.project == "default" else settings.project
        report = ensure_demo_project(database, project)
        if report is not None:
            print(report.summary())
    from curator.ui.app import launch

    launch(
        database,
        project,
        data_dir=settings.data_dir,
        host=args.host,
        port=args.port,
        login=args.login,
    )
    return 0


def cmd_annotator_add(args: argparse.Namespace, settings: Settings) -> int:
    """create an account or set its password"""
    import getpass

    from curator.services.auth import set_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    set_password(_open(settings), args.name, password, role=args.role)
    role = f" as {args.role}" if args.role else ""
    print(f"annotator {args.name!r} can log in{role} (curator serve --login)")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """check the database, the models, threads, CPU flags and memory

    One line per check, ok or FAIL; exits non-zero when a check fails. The embedded LLM
    runs on a prompt of >= 600 tokens and the guide model encodes a sentence, each in a
    child process, so a crash (e.g. an illegal instruction from a llama.cpp build that does
    not suit this CPU) is reported with its fix.
    """
    from curator.services.doctor import run_checks

    skip = [name.strip() for value in args.skip for name in value.split(",") if name.strip()]
    failed = []
    for check in run_checks(settings.database_url, settings.data_dir, skip=skip):
        print(check.line(), flush=True)
        if not check.ok:
            failed.append(check.name)
    if failed:
        print(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _serve_options(serve: argparse.ArgumentParser) -> None:
    """The ``serve`` command's options."""
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="serve the embedded demo project (Python language reference), "
        "ingesting it on first use",
    )
    serve.add_argument(
        "--login",
        action="store_true",
        help="require annotators to log in (accounts: curator annotator add); "
        "needed to listen on a non-loopback address",
    )


def _doctor_options(doctor: argparse.ArgumentParser) -> None:
    """The ``doctor`` command's options."""
    doctor.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="CHECK",
        help="leave out checks (comma-separated or repeated): "
        "cpu, threads, memory, database, guide, llm",
    )


def _annotator_add_options(add: argparse.ArgumentParser) -> None:
    """The ``annotator add`` command's options."""
    add.add_argument("name")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    add.add_argument(
        "--role",
        choices=["admin", "annotator"],
        help="admins run the pipeline, training, export and ingest in the app; annotators "
        "annotate (new accounts: annotator; omitted: an existing account keeps its role)",
    )


def add_commands(commands) -> None:
    """Register this module's commands on the ``commands`` subparsers."""
    add_command(commands, "serve", cmd_serve, _serve_options)
    add_command(commands, "doctor", cmd_doctor, _doctor_options)
    annotator = commands.add_parser("annotator", help="manage annotator accounts")
    annotator_commands = annotator.add_subparsers(dest="annotator_command", required=True)
    add_command(annotator_commands, "add", cmd_annotator_add, _annotator_add_options)
