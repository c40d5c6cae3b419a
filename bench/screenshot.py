"""Save screenshots of the app on the demo project to assets/ (for the README).

    python bench/screenshot.py     # writes assets/passages.png, annotate.png (one 1440x900
                                   # screen), pipeline.png
    python bench/screenshot.py --pages finetune     # assets/finetune.png (trains: minutes)
    python bench/screenshot.py --pages pipeline     # only some of them

Prepares a temporary data folder with the demo project and a few generated, mined and
reranked queries (the app's own handlers, 6 passages; 40, all accepted, for the
Fine-tune page, which then trains with the button), starts `curator serve --demo` on a
free port, opens it in headless Chromium (/usr/bin/chromium) and takes the pictures.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def prepare(data: Path, sample: int = 6, accept_all: bool = False) -> None:
    """The demo project with ``sample`` generated, mined and reranked queries in ``data``
    (all accepted by annotator ``demo`` when ``accept_all``)."""
    from curator.services.annotate import record_judgment
    from curator.services.demo import ensure_demo_project
    from curator.ui.handlers import run_generation, run_mining, run_reranking
    from db import open_database
    from db.session import sqlite_url

    database = open_database(sqlite_url(data / "curator.db"))
    ensure_demo_project(database, "demo")
    run_generation(database, "demo", data, "local/gemma3-270m", sample, 1, 1)
    run_mining(database, "demo", data, 30, 1, 0.95)
    run_reranking(database, "demo", data, "local/gemma3-270m", ["ql", "guide"], 10, 0)
    if accept_all:
        from sqlalchemy import select

        from db.models import GeneratedQuery, QueryStatus

        with database.sessions() as session:
            ids = session.scalars(
                select(GeneratedQuery.id).where(GeneratedQuery.status == QueryStatus.OK.value)
            ).all()
        for query_id in ids:
            record_judgment(database, query_id, "demo", "accept")
    database.dispose()


PAGES = ("passages", "annotate", "pipeline", "finetune")


@contextmanager
def demo_server(data: Path) -> Iterator[int]:
    """Run `curator serve --demo` on ``data`` at a free local port; yields the port once it
    answers, and stops the server after the block."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "curator.cli", "--data-dir", str(data)),
            *("serve", "--demo", "--port", str(port)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(180):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description="Screenshots of the app for the README.")
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES[:3]))
    parser.add_argument("--data", type=Path, help="a data folder prepared before: reuse it")
    args = parser.parse_args()
    pages = set(args.pages)
    if "finetune" in pages and len(pages) > 1:
        parser.error("take --pages finetune on its own (its queries are all judged)")

    data = args.data or Path(tempfile.mkdtemp(prefix="curator-shot-"))
    if args.data is None:
        prepare(data, *((40, True) if "finetune" in pages else (6, False)))
    with demo_server(data) as port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        search = page.get_by_label("Search passages (id, title or text)")
        search.wait_for(timeout=60_000)
        if "passages" in pages:
            page.locator("[role=gridcell]").first.wait_for(timeout=30_000)  # the load's page
            search.fill("decorator")
            search.press("Enter")
            page.get_by_text("page 1 of 1").wait_for(timeout=30_000)
            page.locator("[role=gridcell]").nth(0).click()
            time.sleep(1.5)
            out = ROOT / "assets" / "passages.png"
            page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out}")
        if "annotate" in pages:
            page.set_viewport_size({"width": 1440, "height": 900})
            page.get_by_role("tab", name="Annotate").click()
            # the queue opens on its first card; the picture is one 1440x900 screen
            page.locator("#annotate-card .cc-card[data-query]").first.wait_for(timeout=30_000)
            time.sleep(1.0)
            out = ROOT / "assets" / "annotate.png"
            page.screenshot(path=str(out))
            page.set_viewport_size({"width": 1280, "height": 900})
            print(f"wrote {out}")
        if "pipeline" in pages:
            page.get_by_role("tab", name="Pipeline").click()
            page.locator("#guard-plot canvas, #guard-plot svg").first.wait_for(timeout=60_000)
            time.sleep(1.0)
            out = ROOT / "assets" / "pipeline.png"
            page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out}")
        if "finetune" in pages:
            page.get_by_role("tab", name="Fine-tune").click()
            page.get_by_label("Batch size").fill("8")  # a few steps on ~30 queries
            page.get_by_label("Epochs").fill("2")
            status = "document.querySelector('#finetune-status textarea')?.value || ''"
            page.wait_for_function(f"() => /^(training run|No training run)/.test({status})")
            before = page.locator("#finetune-status textarea").input_value()
            page.locator("#finetune-button").click()
            # this click's run is done (a reused folder already shows an earlier one)
            page.wait_for_function(
                f"([before]) => {{ const v = {status}; return v !== before &&"
                " /^training run \\d+:/.test(v) && !v.includes('evaluating'); }",
                arg=[before],
                timeout=900_000,
            )
            page.locator("#metrics-table").get_by_text("hybrid").wait_for(timeout=60_000)
            page.get_by_label("Type a query").fill("how do I write a decorator")
            page.locator("#compare-button").click()
            page.wait_for_function(
                "() => document.querySelector('#compare-message textarea')?.value"
                ".startsWith('Query:')",
                timeout=120_000,
            )
            time.sleep(1.5)
            out = ROOT / "assets" / "finetune.png"
            page.screenshot(path=str(out), full_page=True)
            print(f"wrote {out}")
        browser.close()


if __name__ == "__main__":
    main()
