"""The real app on a free local port, in this process, for tests and benchmarks that drive
it over HTTP (``gradio_client``)."""

from __future__ import annotations

import random
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving_app(database, project: str, data_dir: Path, *, login: bool) -> Iterator[str]:
    """Serve ``build_ui(...)`` as ``curator serve`` does (queue, ``show_error`` off, the
    login check with its throttle under ``login``); yields the base URL."""
    from curator.ui.app import CSS, SHORTCUTS, authenticator, build_ui, queued

    app = queued(build_ui(database, project, data_dir, login=login))
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        show_error=False,
        quiet=True,
        head=SHORTCUTS,
        css=CSS,
        auth=authenticator(database) if login else None,
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def client(url: str, auth: tuple[str, str] | None = None):
    """A gradio_client Client (one session: its gr.State survives between calls)."""
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False, download_files=False)


@dataclass
class AnnotatorLog:
    """What one client did: the judgment ids the app reported saved and undone, and the
    seconds each call took."""

    name: str
    saved: list[int] = field(default_factory=list)
    undone: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


SAVED = re.compile(r"Saved judgment #(\d+) ")
UNDONE = re.compile(r"Judgment #(\d+) undone")


def annotate(url: str, name: str, password: str, seconds: float, seed: int) -> AnnotatorLog:
    """One annotator in the Annotate page's calls (``/show``, ``/accept``, ``/reject``,
    ``/undo``) for ``seconds``: mostly accepts, some rejects, an undo every few
    judgments; returns its log."""
    rng = random.Random(seed)
    log = AnnotatorLog(name)
    session = client(url, auth=(name, password))
    session.predict(name, "not_judged", api_name="/show")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        roll = rng.random()
        action = "undo" if roll < 0.15 else "reject" if roll < 0.3 else "accept"
        start = time.perf_counter()
        try:
            outputs = session.predict(
                "", name, "not_judged", "", "bad_query", api_name=f"/{action}"
            )
        except Exception as error:  # kept and reported: the test fails on any
            log.errors.append(f"{action}: {error}")
            continue
        log.latencies.append(time.perf_counter() - start)
        message = outputs[-1]
        if found := SAVED.search(message):
            log.saved.append(int(found.group(1)))
        elif found := UNDONE.search(message):
            log.undone.append(int(found.group(1)))
        elif "queue is empty" in outputs[0]:
            session.predict("", name, "not_judged", "", "unanswerable", api_name="/undo")
    return log


def annotate_concurrently(
    url: str, accounts: list[tuple[str, str]], seconds: float
) -> list[AnnotatorLog]:
    """Run ``annotate`` for every (name, password) at once, one thread each."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(accounts)) as pool:
        futures = [
            pool.submit(annotate, url, name, password, seconds, seed)
            for seed, (name, password) in enumerate(accounts)
        ]
        return [future.result() for future in futures]


def judgment_discrepancies(database, logs: list[AnnotatorLog]) -> dict[str, object]:
    """Compare what the clients were told with the judgments table: ``lost`` (reported
    saved, not stored), ``unreported`` (stored, never reported), ``duplicated`` (ids
    reported twice), ``double_judged`` (an annotator with two standing judgments of one
    query), and undo mismatches. All empty when nothing was lost or duplicated."""
    from collections import Counter

    from sqlalchemy import select

    from db.models import Annotator, Judgment

    with database.sessions() as session:
        rows = session.execute(
            select(
                Judgment.id,
                Judgment.query_id,
                Judgment.decision,
                Judgment.retracts_judgment_id,
                Annotator.username,
            ).join(Annotator)
        ).all()
    saved = [i for log in logs for i in log.saved]
    undone = [i for log in logs for i in log.undone]
    stored = {r.id for r in rows if r.decision != "retract"}
    retracted = [r.retracts_judgment_id for r in rows if r.decision == "retract"]
    standing = Counter(
        (r.username, r.query_id) for r in rows if r.decision != "retract" and r.id not in retracted
    )
    return {
        "lost": sorted(set(saved) - stored),
        "unreported": sorted(stored - set(saved)),
        "duplicated": sorted(i for i, n in Counter(saved).items() if n > 1),
        "double_judged": sorted(key for key, n in standing.items() if n > 1),
        "undo_mismatch": sorted(
            (Counter(undone) - Counter(retracted)) + (Counter(retracted) - Counter(undone))
        ),
        "errors": [e for log in logs for e in log.errors],
    }
