"""Many annotators at once through the real HTTP app, on SQLite or PostgreSQL.

    python bench/annotate_http.py --db sqlite --seconds 180
    python bench/annotate_http.py --db postgres --seconds 180     # a throwaway server
    python bench/annotate_http.py --db postgresql+psycopg://user@host/db   # an empty database

Builds project ``p``: the test suite's toy corpus (10 passages) and 8 queries in
``--wordings`` wordings each, mined (the packaged MiniLM) and reranked by the guide; adds
``--clients`` accounts; serves the app with ``--login`` in this process; and drives each
account from its own thread with gradio_client for ``--seconds`` (mostly accepts, some
rejects, an undo now and then: ``tests/http_app.py``). Prints the judgments stored, per
second, the p50 / p95 / max seconds per call, and what was lost or duplicated (every
judgment the app reported saved must be stored once; nothing else may be).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _database(spec: str, work: Path):
    """(open Database, a function that cleans up) for --db ``spec``."""
    from db import open_database
    from db.session import sqlite_url

    if spec == "sqlite":
        return open_database(sqlite_url(work / "data" / "curator.db")), lambda: None
    if spec == "postgres":
        import postgres
        from conftest import fresh_postgres_database

        folder = Path(tempfile.mkdtemp(prefix="curator-pg-"))  # reachable by user postgres
        server = postgres.start(folder)
        url, drop = fresh_postgres_database(server)

        def stop() -> None:
            drop()
            postgres.stop(folder)
            shutil.rmtree(folder, ignore_errors=True)

        return open_database(url), stop
    return open_database(spec), lambda: None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", help="sqlite, postgres or a database URL")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--wordings", type=int, default=50, help="queries = 8 x wordings")
    args = parser.parse_args()

    from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
    from http_app import annotate_concurrently, judgment_discrepancies, serving_app

    from curator.retrieval.guide import GuideModel, GuideSettings
    from curator.services.auth import set_password

    work = Path(tempfile.mkdtemp(prefix="annotate-http-"))
    database, cleanup = _database(args.db, work)
    try:
        guide = GuideModel(GuideSettings(), work_dir=work / "guide")
        queries = [(f"{q} {n}", seed) for n in range(args.wordings) for q, seed in TOY_QUERIES]
        mine_small_project(database, work, guide, TOY_DOCS, queries, top_n=5, rerank_by_guide=True)
        accounts = [(f"annotator{i:02d}", f"password-{i:02d}") for i in range(args.clients)]
        for name, password in accounts:
            set_password(database, name, password)
        with serving_app(database, "p", work / "data", login=True) as url:
            start = time.perf_counter()
            logs = annotate_concurrently(url, accounts, args.seconds)
            took = time.perf_counter() - start
        problems = judgment_discrepancies(database, logs)
        saved = sum(len(log.saved) for log in logs)
        undone = sum(len(log.undone) for log in logs)
        latencies = sorted(t for log in logs for t in log.latencies)
        p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
        print(f"database: {database.engine.dialect.name}; {args.clients} clients, {took:.0f} s")
        print(f"judgments stored: {saved} ({saved / took:.1f}/s), undos: {undone}")
        print(
            f"seconds per call: p50 {statistics.median(latencies):.3f}, p95 {p95:.3f}, "
            f"max {latencies[-1]:.3f} ({len(latencies)} calls)"
        )
        bad = {key: value for key, value in problems.items() if value}
        print("lost / duplicated / errors: none" if not bad else f"PROBLEMS: {bad}")
        database.dispose()
    finally:
        cleanup()
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
