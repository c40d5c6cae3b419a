"""Time the Annotate card in a real browser: key press to the next card, keys per judgment.

    python bench/ui_browser.py                 # 30 demo passages -> generate, mine, rerank
    python bench/ui_browser.py --sample 12     # a quicker run
    python bench/ui_browser.py --data DIR      # reuse a folder prepared before

Prepares the demo project in a temporary folder with the app's own handlers (generate with
the embedded model, mine, rerank; as bench/screenshot.py does), starts `curator serve
--demo` on a free port and drives headless Chromium (/usr/bin/chromium) at 1440x900 with
the keyboard only: every judged query alternates between an accept (**a**) and an override
that moves the positive to another row (unmark the proposed positive's digit, press the new
row's digit, Enter). For each key press that saves, the page itself records the time from
the keydown to the moment the next card is in the DOM (a MutationObserver on the card,
then one animation frame), so the figure is what an annotator waits for: the request, the
server's handler, the response and the render. Prints the median, p95 and max, the keys per
accept and per override, and the machine's load average (figures from a loaded machine are
slower: say so when quoting them).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from screenshot import ARGS, demo_server, prepare  # noqa: E402

# registered before any key press: each keydown stamps the time, and each new card
# (another data-query on .cc-card) appends the time since the last keydown
OBSERVER = """() => {
  window.__times = [];
  document.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
  const host = document.querySelector('#annotate-card');
  let shown = host.querySelector('.cc-card')?.dataset.query;
  new MutationObserver(() => {
    const card = host.querySelector('.cc-card');
    const query = card ? card.dataset.query : undefined;
    if (query === shown || window.__t0 === undefined) return;
    shown = query;
    const t0 = window.__t0;
    requestAnimationFrame(() => window.__times.push(performance.now() - t0));
  }).observe(host, {subtree: true, childList: true, attributes: true});
}"""


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def card(page) -> dict:
    """The card shown: its query id and each row's passage id, key and mark."""
    return page.evaluate(
        """() => {
        const c = document.querySelector('#annotate-card .cc-card');
        return {query: c.dataset.query, rows: [...c.querySelectorAll('tr[data-pid]')]
                .map(r => ({key: r.dataset.key, mark: r.dataset.mark}))};
        }"""
    )


def override_keys(shown: dict) -> list[str]:
    """Keys that move the positive from the proposed row to the first unmarked keyed row
    and save: [its digit (unmark), the new row's digit, Enter]."""
    keyed = [r for r in shown["rows"] if r["key"]]
    positive = next(r for r in keyed if r["mark"] == "positive")
    target = next(r for r in keyed if not r["mark"])
    return [f"Digit{positive['key']}", f"Digit{target['key']}", "Enter"]


def run(port: int, limit: int | None) -> dict:
    """Judge the not_judged queue by keys; returns the timings and key counts."""
    from playwright.sync_api import sync_playwright

    times_keys: dict[str, list[int]] = {"accept": [], "override": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("tab", name="Annotate").click()
        page.locator("#annotate-card .cc-card[data-query]").first.wait_for(timeout=60_000)
        page.evaluate(OBSERVER)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        judged = 0
        while card(page)["query"] and (limit is None or judged < limit):
            shown = card(page)
            action = "accept" if judged % 2 == 0 else "override"
            keys = ["a"] if action == "accept" else override_keys(shown)
            for key in keys:
                page.keyboard.press(key)
            times_keys[action].append(len(keys))
            judged += 1
            page.wait_for_function("n => window.__times.length >= n", arg=judged, timeout=60_000)
            line = page.inner_text("#annotate-message")
            if f"({action})" not in line:
                raise SystemExit(f"judgment {judged} not saved as {action}: {line!r}")
        times = page.evaluate("window.__times")
        browser.close()
    return {"times": times, "keys": times_keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=30, help="demo passages to generate from")
    parser.add_argument("--limit", type=int, help="judge at most this many queries")
    parser.add_argument(
        "--data", type=Path, help="a data folder prepared before (its demo project): reuse it"
    )
    args = parser.parse_args()

    if args.data:
        data = args.data
    else:
        data = Path(tempfile.mkdtemp(prefix="curator-uibench-"))
        started = time.perf_counter()
        prepare(data, args.sample)
        print(f"prepared {data} in {time.perf_counter() - started:.0f} s", flush=True)
    with demo_server(data) as port:
        load_before = os.getloadavg()[0]
        result = run(port, args.limit)
        load_after = os.getloadavg()[0]
    times = result["times"]
    keys = result["keys"]
    print(f"{len(times)} judgments by keys, 1440x900, headless Chromium")
    print(
        f"key press -> next card: median {statistics.median(times):.0f} ms, "
        f"p95 {percentile(times, 0.95):.0f} ms, max {max(times):.0f} ms"
    )
    for action, counts in keys.items():
        if counts:
            print(f"keys per {action}: {statistics.mean(counts):.1f} (n={len(counts)})")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")


if __name__ == "__main__":
    main()
