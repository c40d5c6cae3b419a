"""Time the app's demo defaults: from launch to reranked queries on the embedded corpus.

Runs the same handlers as the app's Pipeline buttons, with the app's defaults, on the
demo project (Python language reference, 834 passages) in a fresh data folder:
Generate (a sample of 40 passages), Mine (top 30), Rerank (QL + guide, top 10).

    python bench/demo_flow.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main() -> None:
    from curator.services.demo import ensure_demo_project
    from curator.ui.handlers import (
        DEMO_RERANK_TOP_K,
        DEMO_SAMPLE,
        run_generation,
        run_mining,
        run_reranking,
    )
    from db import open_database
    from db.session import sqlite_url

    data = Path(tempfile.mkdtemp(prefix="curator-demo-"))
    database = open_database(sqlite_url(data / "curator.db"))
    steps = [
        ("ingest", lambda: str(ensure_demo_project(database, "demo").summary())),
        (
            "generate",
            lambda: run_generation(database, "demo", data, "local/gemma3-270m", DEMO_SAMPLE, 1, 1),
        ),
        ("mine", lambda: run_mining(database, "demo", data, 30, 1, 0.95)),
        (
            "rerank",
            lambda: run_reranking(
                database, "demo", data, "local/gemma3-270m", ["ql", "guide"], DEMO_RERANK_TOP_K, 0
            ),
        ),
    ]
    total = 0.0
    for name, step in steps:
        start = time.perf_counter()
        summary = step()
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{name:<9} {seconds:6.1f} s  {summary.splitlines()[0]}")
    print(f"{'total':<9} {total:6.1f} s")


if __name__ == "__main__":
    main()
