"""Save a screenshot of the app on the demo project to assets/ (for the README).

    python bench/screenshot.py            # writes assets/passages.png

Starts `curator serve --demo` on a free port in a temporary data folder, opens it in
headless Chromium (/usr/bin/chromium), searches the passages and takes the picture.
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


def main() -> None:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="curator-shot-"))
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
            search.fill("decorator")
            search.press("Enter")
            page.locator("[role=gridcell]").first.wait_for(timeout=30_000)
            page.locator("[role=gridcell]").nth(0).click()
            time.sleep(1.5)
            out = ROOT / "assets" / "passages.png"
            page.screenshot(path=str(out), full_page=True)
            browser.close()
            print(f"wrote {out}")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
