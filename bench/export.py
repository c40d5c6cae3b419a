"""Export throughput and peak memory on a database of N judged queries (default 100,000).

Builds the database with bulk inserts (SQLAlchemy core; no LLM, no model): N passages of
~60 words, one query per passage (seed = that passage), a human judgment per query (one
positive, three hard negatives (none on every 25th), a false negative on every 10th,
every 20th rejected, every 7th with an edited query) and guide scores for every labelled
pair. Then runs the real ``curator export`` command in a child process per format (so its
peak RSS is its own) and prints seconds, queries per second, rows and peak RSS. Goal:
each under 60 s.

    python bench/export.py                          # 100k queries: st-triplets, beir, flag
    python bench/export.py --queries 20000 --formats st-triplets,judgments-jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GOAL_SECONDS = 60.0
BATCH = 20_000


def build_database(data_dir: Path, queries: int, seed: int = 0) -> float:
    """Create ``data_dir/curator.db`` with project ``bench`` and ``queries`` judged
    queries; returns the seconds it took."""
    from sqlalchemy import insert

    from curator.pipeline.text import content_hash
    from curator.services.projects import ensure_project
    from db import open_database
    from db.models import (
        Annotator,
        Candidate,
        GeneratedQuery,
        Judgment,
        JudgmentPassage,
        Passage,
    )
    from db.session import sqlite_url

    start = time.perf_counter()
    rng = random.Random(seed)
    vocabulary = [f"term{i}" for i in range(20_000)]
    database = open_database(sqlite_url(data_dir / "curator.db"))
    project_id = ensure_project(database, "bench")
    now = datetime.now(timezone.utc)
    with database.sessions() as session, session.begin():
        session.execute(
            insert(Annotator), [{"id": i, "username": f"annotator{i}"} for i in (1, 2, 3)]
        )
        for low in range(0, queries, BATCH):
            ids = range(low + 1, min(low + BATCH, queries) + 1)
            passages = []
            for i in ids:
                title, text = f"Document {i}", " ".join(rng.choices(vocabulary, k=60))
                passages.append(
                    {
                        "id": i,
                        "project_id": project_id,
                        "external_id": f"doc{i}",
                        "document_id": f"doc{i}",
                        "title": title,
                        "text": text,
                        "content_hash": content_hash(title, text),
                        "created_at": now,
                    }
                )
            session.execute(insert(Passage), passages)
            rows, judgments, labels, candidates = [], [], [], []
            for i in ids:
                rows.append(
                    {
                        "id": i,
                        "project_id": project_id,
                        "seed_passage_id": i,
                        "task": "Given a question, retrieve passages that answer it.",
                        "query": " ".join(rng.choices(vocabulary, k=8)),
                        "model": "bench/llm",
                        "prompt_version": "v1",
                        "status": "ok",
                        "created_at": now,
                    }
                )
                rejected = i % 20 == 0
                judgments.append(
                    {
                        "id": i,
                        "query_id": i,
                        "annotator_id": 1 + i % 3,
                        "decision": "reject" if rejected else "override",
                        "reject_reason": "bad_query" if rejected else None,
                        "edited_query": f"edited query {i}" if i % 7 == 0 else None,
                        "provenance": "human",
                        "created_at": now,
                    }
                )
                if rejected:
                    continue
                others = rng.sample(range(1, ids[-1] + 1), 5)
                others = [o for o in others if o != i][:4]
                negatives = [] if i % 25 == 0 else others[:3]
                marked = [(i, "positive"), *((o, "negative") for o in negatives)]
                if i % 10 == 0:
                    marked.append((others[3], "false_negative"))
                for rank, (passage, label) in enumerate(marked, start=1):
                    labels.append({"judgment_id": i, "passage_id": passage, "label": label})
                    candidates.append(
                        {
                            "query_id": i,
                            "passage_id": passage,
                            "guide_model": "bench-guide",
                            "guide_score": 1.0 - rank / 10,
                            "guide_rank": rank,
                            "created_at": now,
                        }
                    )
            session.execute(insert(GeneratedQuery), rows)
            session.execute(insert(Judgment), judgments)
            session.execute(insert(JudgmentPassage), labels)
            session.execute(insert(Candidate), candidates)
    database.dispose()
    return time.perf_counter() - start


def run_export(data_dir: Path, fmt: str, out: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, manifest) of one `curator export` child process."""
    command = [
        sys.executable,
        "-m",
        "curator.cli",
        "--data-dir",
        str(data_dir),
        "--project",
        "bench",
        "export",
        "--format",
        fmt,
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export {fmt} failed: {child.stderr.read()}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return seconds, usage.ru_maxrss / 1024, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--formats", default="st-triplets,beir,flag")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="curator-bench-export-"))
    try:
        built = build_database(work / "data", args.queries)
        print(f"database: {args.queries:,} judged queries built in {built:.1f} s ({work})")
        print(f"{'format':<16} {'seconds':>8} {'queries/s':>10} {'rows':>9} {'peak RSS':>9}  goal")
        for fmt in [f.strip() for f in args.formats.split(",") if f.strip()]:
            seconds, rss, manifest = run_export(work / "data", fmt, work / f"out-{fmt}")
            queries = manifest["counts"]["examples"]
            rows = sum(manifest["rows"].values())
            verdict = "ok" if seconds < GOAL_SECONDS else f"SLOWER than {GOAL_SECONDS:.0f} s"
            print(
                f"{fmt:<16} {seconds:>8.1f} {queries / seconds:>10,.0f} {rows:>9,} "
                f"{rss:>6,.0f} MB  {verdict}"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
