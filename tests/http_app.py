"""The real app on a free local port, in this process, for tests and benchmarks that drive
it over HTTP (``gradio_client``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
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
