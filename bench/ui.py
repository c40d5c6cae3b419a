"""How fast the Annotate page loads the next query on a large project.

    python bench/ui.py                  # 100,000 queries, 3,000,000 candidates (~2 min build)
    python bench/ui.py --queries 5000   # smaller, for a quick look

Builds a SQLite database under /tmp (bulk SQLAlchemy Core inserts, one transaction per
table): passages, generated queries, ~30 guide candidates per query with BM25, the miner's
proposed labels for every query, the reranker's (LLM positive with confidence, 30% of
its positives differing from the seed) and its QL / RRF scores for a share of the
queries, and a few thousand judgments by five annotators (some undone). Then it times
``curator.ui.annotation.show``, the handler behind *Load next* and every judgment
(``next_query`` + ``query_view`` + the page's rows), ``--samples`` times per queue filter,
each time after a random query (as an annotator moving through the queue), and prints
p50 / p95 / max per filter. Goal: p95 under 150 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, text

from curator.services.annotate import next_query
from curator.ui.annotation import show
from db import Database, open_database
from db.models import (
    Annotator,
    Candidate,
    GeneratedQuery,
    Judgment,
    JudgmentPassage,
    LLMScore,
    Passage,
    PipelineRun,
    Project,
    ProposedLabel,
)
from db.session import sqlite_url

FILTERS = ("not_judged", "positive_changed", "low_confidence", "fewer_than_n", "judged_by_me")
ANNOTATORS = ("ann", "bob", "cat", "dan", "eve")
CHUNK = 20_000
WORDS = ("retrieval", "passage", "query", "model", "training", "data", "label", "corpus", "index")


def _insert(database: Database, table, rows, defaults: dict | None = None) -> int:
    """Insert the dicts from the iterable ``rows`` (missing keys from ``defaults``) in
    chunks, in one transaction."""
    count, batch = 0, []
    with database.engine.begin() as connection:
        for row in rows:
            batch.append({**defaults, **row} if defaults else row)
            if len(batch) >= CHUNK:
                connection.execute(insert(table), batch)
                count += len(batch)
                batch = []
        if batch:
            connection.execute(insert(table), batch)
            count += len(batch)
    return count


def build(path: Path, queries: int, per_query: int, reranked_share: float, judged: int) -> dict:
    """Write the benchmark database at ``path``; returns row counts and seconds per table."""
    rng = random.Random(0)
    database = open_database(sqlite_url(path))
    now = datetime.now(timezone.utc)
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}

    def timed(name: str, table, rows, defaults: dict | None = None) -> None:
        start = time.perf_counter()
        counts[name] = _insert(database, table, rows, defaults)
        seconds[name] = round(time.perf_counter() - start, 1)

    with database.engine.begin() as connection:
        connection.execute(insert(Project), [{"id": 1, "name": "bench", "created_at": now}])
        connection.execute(
            insert(PipelineRun),
            [
                {"id": i, "project_id": 1, "stage": stage, "status": "done", "started_at": now}
                for i, stage in ((1, "ingest"), (2, "generate"), (3, "mine"), (4, "rerank"))
            ],
        )
    n_passages = max(1000, 2 * queries)
    stride = n_passages // (per_query + 1)
    timed(
        "passages",
        Passage,
        (
            {
                "id": i,
                "project_id": 1,
                "external_id": f"doc{i}",
                "document_id": f"doc{i}",
                "chunk_index": 0,
                "title": f"Title {i}",
                "text": " ".join(rng.choice(WORDS) for _ in range(40)) + f" {i}",
                "content_hash": f"{i:064x}",
                "ingest_run_id": 1,
                "created_at": now,
            }
            for i in range(1, n_passages + 1)
        ),
    )

    def seed(q: int) -> int:
        return (q * 7) % n_passages + 1

    timed(
        "generated_queries",
        GeneratedQuery,
        (
            {
                "id": q,
                "project_id": 1,
                "seed_passage_id": seed(q),
                "sample_index": 0,
                "task": "Given a question, retrieve passages that answer it.",
                "query": f"what is {rng.choice(WORDS)} {q}",
                "model": "bench",
                "prompt_version": "v1",
                "raw_output": "",
                "status": "ok",
                "run_id": 2,
                "created_at": now,
            }
            for q in range(1, queries + 1)
        ),
    )

    def candidate_ids(q: int) -> list[int]:
        # the seed first, then passages spread over the corpus (distinct per query)
        return [(seed(q) - 1 + j * stride) % n_passages + 1 for j in range(per_query)]

    timed(
        "candidates",
        Candidate,
        (
            {
                "query_id": q,
                "passage_id": p,
                "guide_model": "bench-guide",
                "guide_score": 0.9 - 0.01 * rank,
                "guide_rank": rank,
                "bm25_score": 10.0 - 0.2 * rank,
                "bm25_rank": rank,
                "run_id": 3,
                "created_at": now,
            }
            for q in range(1, queries + 1)
            for rank, p in enumerate(candidate_ids(q), start=1)
        ),
    )
    reranked = [q for q in range(1, queries + 1) if rng.random() < reranked_share]

    def labels():
        for q in range(1, queries + 1):
            ids = candidate_ids(q)
            yield {
                "query_id": q,
                "passage_id": ids[0],
                "label": "positive",
                "provenance": "seed",
                "run_id": 3,
                "created_at": now,
            }
            yield {
                "query_id": q,
                "passage_id": ids[5],
                "label": "negative",
                "provenance": "guide",
                "run_id": 3,
                "created_at": now,
            }
        for q in reranked:
            ids = candidate_ids(q)
            changed = rng.random() < 0.3
            yield {
                "query_id": q,
                "passage_id": ids[1] if changed else ids[0],
                "label": "positive",
                "provenance": "llm",
                "fused_rank": 1,
                "confidence": rng.random(),
                "differs_from_seed": changed,
                "run_id": 4,
                "created_at": now,
            }
            yield {
                "query_id": q,
                "passage_id": ids[9],
                "label": "negative",
                "provenance": "llm",
                "fused_rank": 10,
                "run_id": 4,
                "created_at": now,
            }

    timed(
        "proposed_labels",
        ProposedLabel,
        labels(),
        {"fused_rank": None, "confidence": None, "differs_from_seed": False},
    )
    timed(
        "llm_scores",
        LLMScore,
        (
            {
                "query_id": q,
                "passage_id": p,
                "method": method,
                "score": -float(rank),
                "rank": rank,
                "model": "bench-llm",
                "prompt_version": "v1",
                "run_id": 4,
                "created_at": now,
            }
            for q in reranked
            for method in ("ql", "rrf")
            for rank, p in enumerate(candidate_ids(q)[:10], start=1)
        ),
    )
    timed(
        "annotators",
        Annotator,
        (
            {"id": i, "username": name, "display_name": name, "created_at": now}
            for i, name in enumerate(ANNOTATORS, start=1)
        ),
    )
    # annotators work through the queue in id order: the first queries get one to three
    # judgments each; every tenth judgment is undone (a retract row follows it)
    judgments, passages, retracts = [], [], []
    next_id, q = 1, 1
    while len(judgments) < judged and q <= queries:
        for who in rng.sample(range(1, len(ANNOTATORS) + 1), rng.randint(1, 3)):
            decision = rng.choice(("accept", "accept", "override", "reject"))
            judgments.append(
                {
                    "id": next_id,
                    "query_id": q,
                    "annotator_id": who,
                    "decision": decision,
                    "provenance": "human",
                    "reject_reason": "unanswerable" if decision == "reject" else None,
                    "created_at": now,
                }
            )
            if decision != "reject":
                ids = candidate_ids(q)
                passages += [
                    {"judgment_id": next_id, "passage_id": ids[0], "label": "positive"},
                    {"judgment_id": next_id, "passage_id": ids[5], "label": "negative"},
                ]
            if next_id % 10 == 0:
                retracts.append((q, who, next_id))
            next_id += 1
        q += 1
    for q, who, target in retracts:
        judgments.append(
            {
                "id": next_id,
                "query_id": q,
                "annotator_id": who,
                "decision": "retract",
                "provenance": "human",
                "retracts_judgment_id": target,
                "created_at": now,
            }
        )
        next_id += 1
    timed("judgments", Judgment, judgments, {"reject_reason": None, "retracts_judgment_id": None})
    timed("judgment_passages", JudgmentPassage, passages)
    start = time.perf_counter()
    with database.engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    seconds["analyze"] = round(time.perf_counter() - start, 1)
    database.dispose()
    return {"counts": counts, "seconds": seconds}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_filters(path: Path, samples: int) -> dict[str, tuple[list[float], int]]:
    """Per queue filter: milliseconds per ``show`` call, and how many found a query.

    Half the calls start at the queue's head, half after a random query (for
    ``judged_by_me``, one among the judged ones), as annotators moving through it."""
    rng = random.Random(1)
    database = open_database(sqlite_url(path))
    with database.engine.connect() as connection:
        last = connection.execute(text("SELECT max(id) FROM generated_queries")).scalar()
        judged = connection.execute(text("SELECT max(query_id) FROM judgments")).scalar() or 1
    show(database, "bench", "ann", "not_judged")  # warm the connection and the page cache
    results: dict[str, tuple[list[float], int]] = {}
    for queue in FILTERS:
        times, found = [], 0
        for _ in range(samples):
            who = rng.choice(ANNOTATORS)
            upto = judged if queue == "judged_by_me" else last
            after = rng.randint(1, upto) if rng.random() < 0.5 else None
            start = time.perf_counter()
            page = show(database, "bench", who, queue, after=after)
            times.append((time.perf_counter() - start) * 1000)
            found += page.query_id is not None
        results[queue] = (times, found)
    database.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--per-query", type=int, default=30, help="candidates per query")
    parser.add_argument("--reranked", type=float, default=0.3, help="share of queries reranked")
    parser.add_argument("--judgments", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=200, help="timed loads per filter")
    parser.add_argument("--db", type=Path, help="database path (default: a new file in /tmp)")
    parser.add_argument("--reuse", action="store_true", help="time an existing --db as it is")
    args = parser.parse_args()

    path = args.db or Path(tempfile.mkdtemp(prefix="curator-bench-ui-")) / "curator.db"
    if not args.reuse:
        if path.exists():
            raise SystemExit(f"{path} exists; remove it or pass --reuse")
        start = time.perf_counter()
        built = build(path, args.queries, args.per_query, args.reranked, args.judgments)
        print(f"database: {path} ({path.stat().st_size / 1e9:.2f} GB)")
        print(f"built in {time.perf_counter() - start:.1f} s")
        for name, n in built["counts"].items():
            print(f"  {name:<18} {n:>10,} rows  {built['seconds'][name]:>6.1f} s")
        print(f"  {'ANALYZE':<18} {'':>10}       {built['seconds']['analyze']:>6.1f} s")
    database = open_database(sqlite_url(path))
    first = next_query(database, "bench", "ann", "not_judged")
    database.dispose()
    print(f"\nfirst query not judged by anyone: #{first}")
    print(f"\nload next query (annotation.show), {args.samples} samples per filter, ms:")
    print(f"  {'filter':<18} {'p50':>7} {'p95':>7} {'max':>7}  query found")
    for queue, (times, found) in time_filters(path, args.samples).items():
        print(
            f"  {queue:<18} {statistics.median(times):>7.1f} {percentile(times, 0.95):>7.1f} "
            f"{max(times):>7.1f}  {found}/{len(times)}"
        )


if __name__ == "__main__":
    main()
