"""Save screenshots of the app on the demo project to assets/ (for the README).

    python bench/screenshot.py     # writes assets/passages.png, annotate.png, pipeline.png
    python bench/screenshot.py --pages pipeline     # only some of them

Prepares a temporary data folder with the demo project and a few generated, mined and
reranked queries (the app's own handlers, 6 passages), starts `curator serve --demo` on a
free port, opens it in headless Chromium (/usr/bin/chromium) and takes the pictures.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
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


def prepare(data: Path) -> None:
    """The demo project with 6 generated, mined and reranked queries in ``data``."""
    from curator.services.demo import ensure_demo_project
    from curator.ui.handlers import run_generation, run_mining, run_reranking
    from db import open_database
    from db.session import sqlite_url

    database = open_database(sqlite_url(data / "curator.db"))
    ensure_demo_project(database, "demo")
    run_generation(database, "demo", data, "local/gemma3-270m", 6, 1, 1)
    run_mining(database, "demo", data, 30, 1, 0.95)
    run_reranking(database, "demo", data, "local/gemma3-270m", ["ql", "guide"], 10, 0)
    database.dispose()


PAGES = ("passages", "annotate", "pipeline")


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description="Screenshots of the app for the README.")
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES))
    pages = set(parser.parse_args().pages)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="curator-shot-"))
    prepare(data)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curator.cli",
            "--data-dir",
            str(data),
            "serve",
            "--demo",
            "--port",
            str(port),
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
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            search = page.get_by_label("Search passages (id, title or text)")
            search.wait_for(timeout=60_000)
            if "passages" in pages:
                search.fill("decorator")
                search.press("Enter")
                page.locator("[role=gridcell]").first.wait_for(timeout=30_000)
                page.locator("[role=gridcell]").nth(0).click()
                time.sleep(1.5)
                out = ROOT / "assets" / "passages.png"
                page.screenshot(path=str(out), full_page=True)
                print(f"wrote {out}")
            if "annotate" in pages:
                page.get_by_role("tab", name="Annotate").click()
                page.get_by_role("button", name="Load next").click()
                page.get_by_text("Query #").first.wait_for(timeout=30_000)
                time.sleep(1.0)
                out = ROOT / "assets" / "annotate.png"
                page.screenshot(path=str(out), full_page=True)
                print(f"wrote {out}")
            if "pipeline" in pages:
                page.get_by_role("tab", name="Pipeline").click()
                page.locator("#guard-plot canvas, #guard-plot svg").first.wait_for(timeout=60_000)
                time.sleep(1.0)
                out = ROOT / "assets" / "pipeline.png"
                page.screenshot(path=str(out), full_page=True)
                print(f"wrote {out}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
