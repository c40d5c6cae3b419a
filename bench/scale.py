"""Scale benchmark: a million passages, ten thousand queries, the app's interactive calls.

What it does, in one process (peak RSS read with ``resource.getrusage``):

1. ingests ``--passages`` generated passages (synthetic words with a Zipf-like frequency,
   a title of 3 words and a text of 60) through the real ingest service
   (``ingest_records``: hashing, deduplication, the FTS5 triggers of migration 0007);
2. writes **synthetic** unit vectors (384 dims, clustered around 1,000 random centres)
   into the embedding store for every passage: all-MiniLM-L6-v2 on 2 CPU cores encodes
   about 60 passages/s, so a million would take hours; the index and the search are real;
3. builds the passage index the miner would (``load_or_build``, kind ``auto``: IVF-PQ on
   the memory-mapped vectors above 200,000 passages) and searches the top 30 for
   ``--queries`` synthetic query vectors; recall@10 against exact search on 100 of them;
4. inserts ``--queries`` generated_queries rows directly (model ``bench-synthetic``,
   prompt version ``bench-scale``: marked as not written by an LLM), their top-30 index
   results as candidates, and judgments by two annotators on the first fifth;
5. times the app's calls: ``passages_table`` (the Passages page's search, page 1) over
   ``--searches`` word searches, and ``annotation.show`` (the Annotate page's next card:
   next query, queue position, the card) over ``--cards`` calls, an accept stored
   between cards as an annotator would; also every queue's count once and the overview.

    python bench/scale.py --passages 100000                 # development size
    python bench/scale.py                                   # 1,000,000 passages
    python bench/scale.py --database-url postgresql+psycopg://user@host/db   # PostgreSQL

Goals: peak RSS < 4 GB, search p95 < 200 ms, next card p95 < 150 ms. With
``--database-url`` the database must be empty (a fresh one); the embedding store and the
index go under ``--work`` (a new temporary folder by default).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
PROJECT = "scale"
VOCABULARY = 50_000
WORDS_PER_TEXT = 60
ANNOTATORS = ("bench-a", "bench-b")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def p95(seconds: list[float]) -> float:
    return float(np.percentile(seconds, 95)) * 1000


def stage(name: str, started: float) -> None:
    print(f"{name:<42} {time.perf_counter() - started:8.1f} s   peak RSS {peak_rss_mb():7,.0f} MB")


def vocabulary(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Pronounceable made-up words and Zipf-like probabilities (word i ~ 1 / (i + 10))."""
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words = sorted(
        {
            "".join(
                consonants[rng.integers(18)] + vowels[rng.integers(5)]
                for _ in range(rng.integers(2, 5))
            )
            for _ in range(VOCABULARY * 2)
        }
    )[:VOCABULARY]
    rng.shuffle(words)
    weights = 1.0 / (np.arange(len(words)) + 10.0)
    return words, weights / weights.sum()


def records(n: int, words: list[str], probs: np.ndarray, seed: int = 1):
    """``n`` SourceRecords of generated text, made in blocks of 10,000."""
    from curator.pipeline.readers import SourceRecord

    rng = np.random.default_rng(seed)
    vocab = np.array(words, dtype=object)
    for start in range(0, n, 10_000):
        size = min(10_000, n - start)
        drawn = vocab[rng.choice(len(words), size=(size, WORDS_PER_TEXT + 3), p=probs)]
        for i, row in enumerate(drawn):
            number = start + i
            text = " ".join(row[3:]) + f" item {number}."
            yield SourceRecord(f"p{number}", " ".join(row[:3]), text, "generated", number + 1)


def unit_rows(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    picks = rng.integers(0, len(centers), n)
    rows = centers[picks] + 0.6 * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def passage_keys(database) -> tuple[np.ndarray, list[str]]:
    from sqlalchemy import select

    from db.models import Passage

    with database.sessions() as session:
        rows = session.execute(select(Passage.id, Passage.content_hash).order_by(Passage.id)).all()
    return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def write_vectors(store, hashes: list[str], centers: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    for start in range(0, len(hashes), 50_000):
        chunk = hashes[start : start + 50_000]
        store.add(chunk, unit_rows(rng, centers, len(chunk)))


def exact_top10(mapped, queries: np.ndarray) -> np.ndarray:
    """Exact top-10 rows (positions in ``mapped``) by inner product, read in blocks."""
    best_scores = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 10), dtype=np.int64)
    for start in range(0, len(mapped), 100_000):
        block = mapped.take(slice(start, start + 100_000))
        scores = queries @ block.T
        scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.concatenate(
            [
                best_rows,
                np.broadcast_to(np.arange(start, start + len(block)), scores[:, 10:].shape),
            ],
            axis=1,
        )
        top = np.argsort(-scores, axis=1)[:, :10]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_rows = np.take_along_axis(rows, top, axis=1)
    return best_rows


def build_and_search(work: Path, ids, hashes, centers, n_queries: int, kind: str):
    """(index kind, top-30 passage ids per query, guide scores) and the recall@10 line."""
    from curator.retrieval.index import load_or_build
    from curator.retrieval.store import EmbeddingStore

    started = time.perf_counter()
    store = EmbeddingStore(work / "embeddings" / "synthetic-384", DIM)
    write_vectors(store, hashes, centers)
    stage(f"synthetic vectors into the store ({len(hashes):,})", started)
    started = time.perf_counter()
    index, _ = load_or_build(work / "index", lambda: store.view(hashes), ids, "synthetic-384", kind)
    stage(f"index build ({index.kind})", started)
    queries = unit_rows(np.random.default_rng(3), centers, n_queries)
    started = time.perf_counter()
    scores, found = index.search(queries, 30)
    seconds = time.perf_counter() - started
    stage(f"index search, top 30 of {n_queries:,} queries", started)
    print(f"  {1000 * seconds / n_queries:.2f} ms a query")
    mapped = store.view(hashes)
    exact = ids[exact_top10(mapped, queries[:100])]
    recall = np.mean(
        [len(set(f[:10]) & set(e)) / 10 for f, e in zip(found[:100], exact, strict=True)]
    )
    print(f"  recall@10 against exact search (100 queries): {recall:.3f}")
    return index.kind, found, scores


def insert_queries(database, found: np.ndarray, scores: np.ndarray, ids: np.ndarray) -> list[int]:
    """Generated queries (marked bench-synthetic), their candidates and some judgments."""
    from sqlalchemy import insert, select

    from curator.services.annotate import annotator_id
    from curator.services.runs import finish_run, start_run
    from db.models import Candidate, GeneratedQuery, Judgment, ProposedLabel, RunStatus, Stage
    from db.queries import get_project

    rng = np.random.default_rng(4)
    with database.sessions() as session, session.begin():
        project_id = get_project(session, PROJECT).id
        seeds = [int(row[0]) if row[0] >= 0 else int(ids[0]) for row in found]
        session.execute(
            insert(GeneratedQuery),
            [
                {
                    "project_id": project_id,
                    "seed_passage_id": seed,
                    "sample_index": i,
                    "task": "Given a query, retrieve passages that answer it",
                    "query": f"synthetic query {i} word{rng.integers(1000)}",
                    "model": "bench-synthetic",
                    "prompt_version": "bench-scale",
                    "raw_output": "(inserted by bench/scale.py, not written by an LLM)",
                    "status": "ok",
                }
                for i, seed in enumerate(seeds)
            ],
        )
        query_ids = list(
            session.scalars(
                select(GeneratedQuery.id)
                .where(GeneratedQuery.model == "bench-synthetic")
                .order_by(GeneratedQuery.id)
            )
        )
    with database.sessions() as session, session.begin():
        rows = [
            {
                "query_id": query_id,
                "passage_id": int(passage),
                "guide_model": "synthetic-384",
                "guide_score": float(score),
                "guide_rank": rank,
            }
            for query_id, passages, row_scores in zip(query_ids, found, scores, strict=True)
            for rank, (passage, score) in enumerate(zip(passages, row_scores, strict=True), start=1)
            if passage >= 0
        ]
        for start in range(0, len(rows), 50_000):
            session.execute(insert(Candidate), rows[start : start + 50_000])
    for stage, labels in zip(
        (Stage.MINE, Stage.RERANK), proposed_labels(query_ids, found, rng), strict=True
    ):
        run_id = start_run(database, project_id, stage, {"bench": "scale.py, synthetic"})
        with database.sessions() as session, session.begin():
            session.execute(insert(ProposedLabel), [{**row, "run_id": run_id} for row in labels])
        finish_run(database, run_id, RunStatus.DONE, {"queries": len(query_ids)})
    who = [annotator_id(database, name) for name in ANNOTATORS]
    judged = query_ids[: len(query_ids) // 5]
    with database.sessions() as session, session.begin():
        session.execute(
            insert(Judgment),
            [
                {"query_id": q, "annotator_id": a, "decision": "accept", "note": "bench"}
                for q in judged
                for a in who
            ],
        )
    return query_ids


def proposed_labels(query_ids: list[int], found: np.ndarray, rng) -> tuple[list, list]:
    """(mining's labels, reranking's labels) as those stages propose them: the seed as the
    positive and the guide's 10th passage as a negative; then the reranker's positive
    (another passage for a fifth of the queries, with a confidence) and its negative."""
    mined, reranked = [], []
    for query_id, passages in zip(query_ids, found, strict=True):
        seed, negative = int(passages[0]), int(passages[9])
        changed = bool(rng.random() < 0.2)
        mined += [
            {"query_id": query_id, "passage_id": seed, "label": "positive", "provenance": "seed"},
            {
                "query_id": query_id,
                "passage_id": negative,
                "label": "negative",
                "provenance": "guide",
            },
        ]
        reranked += [
            {
                "query_id": query_id,
                "passage_id": int(passages[1]) if changed else seed,
                "label": "positive",
                "provenance": "llm",
                "confidence": float(rng.random()),
                "differs_from_seed": changed,
            },
            {
                "query_id": query_id,
                "passage_id": negative,
                "label": "negative",
                "provenance": "llm",
            },
        ]
    return mined, reranked


def time_searches(database, words: list[str], n: int) -> list[float]:
    """Seconds of ``passages_table`` (the Passages page) for ``n`` searches: one common
    word, one mid-frequency word, two words, a rare word, in turn."""
    from curator.ui.context import Context
    from curator.ui.passages import passages_table

    ctx = Context(database, PROJECT, Path("."))
    rng = np.random.default_rng(5)
    kinds = [
        lambda: words[rng.integers(0, 20)],
        lambda: words[rng.integers(100, 2_000)],
        lambda: f"{words[rng.integers(0, 200)]} {words[rng.integers(200, 5_000)]}",
        lambda: words[rng.integers(10_000, len(words))],
    ]
    seconds, totals = [], []
    for i in range(n):
        search = kinds[i % len(kinds)]()
        started = time.perf_counter()
        _, caption, _ = passages_table(ctx, search, 1)
        seconds.append(time.perf_counter() - started)
        totals.append(caption.split(" passage")[0])
    print(f"  e.g. {totals[:4]} (common, mid, two words, rare)")
    return seconds


def time_cards(database, n: int) -> list[float]:
    """Seconds of ``annotation.show`` (the Annotate page's next card) for ``n`` cards, a
    judgment (accept) stored after each (not timed), as an annotator goes through the queue."""
    from curator.services.annotate import record_judgment
    from curator.ui.annotation import show

    seconds, after = [], None
    for _ in range(n):
        started = time.perf_counter()
        page = show(database, PROJECT, "bench-c", "not_judged", after=after)
        seconds.append(time.perf_counter() - started)
        if page.query_id is None:
            raise RuntimeError(f"the queue ran empty: {page.message}")
        assert page.rows, "a card without candidates"
        record_judgment(database, page.query_id, "bench-c", "accept")
        after = page.query_id
    return seconds


def time_queue_counts(database) -> None:
    from curator.services.annotate import QUEUE_FILTERS, queue_position
    from curator.ui.context import Context
    from curator.ui.passages import overview_markdown

    for queue in QUEUE_FILTERS:
        started = time.perf_counter()
        _, total = queue_position(database, PROJECT, "bench-c", queue, None)
        ms = 1000 * (time.perf_counter() - started)
        print(f"  queue {queue:<18} {total:7,} queries   {ms:7.1f} ms")
    started = time.perf_counter()
    overview_markdown(Context(database, PROJECT, Path(".")))
    print(f"  overview (counts per stage)        {1000 * (time.perf_counter() - started):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--cards", type=int, default=200)
    parser.add_argument("--index", default="auto", choices=["auto", "flat", "hnsw", "ivfpq"])
    parser.add_argument("--database-url", help="an empty database (default: SQLite in --work)")
    parser.add_argument("--work", type=Path, help="folder for the store, index and SQLite file")
    args = parser.parse_args()

    from curator.services.ingest import ingest_records
    from db import open_database
    from db.session import sqlite_url

    work = args.work or Path(tempfile.mkdtemp(prefix="curator-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    url = args.database_url or sqlite_url(work / "curator.db")
    database = open_database(url)
    print(f"database {database.engine.url.render_as_string(hide_password=True)}; work {work}")
    print("passage vectors are SYNTHETIC (clustered unit vectors), not MiniLM embeddings\n")

    rng = np.random.default_rng(0)
    words, probs = vocabulary(rng)
    started = time.perf_counter()
    report = ingest_records(database, PROJECT, records(args.passages, words, probs), source="bench")
    stage(f"ingest {report.added:,} passages (real service)", started)
    print(f"  {report.added / (time.perf_counter() - started):,.0f} passages/s")

    ids, hashes = passage_keys(database)
    centers = np.random.default_rng(1).standard_normal((1_000, DIM)) / np.sqrt(DIM)
    kind, found, scores = build_and_search(work, ids, hashes, centers, args.queries, args.index)
    del hashes

    started = time.perf_counter()
    insert_queries(database, found, scores, ids)
    stage(f"insert {args.queries:,} queries + candidates", started)

    started = time.perf_counter()
    searches = time_searches(database, words, args.searches)
    stage(f"{args.searches} passage searches", started)
    started = time.perf_counter()
    cards = time_cards(database, args.cards)
    stage(f"{args.cards} next cards", started)
    time_queue_counts(database)

    peak = peak_rss_mb()
    dialect = database.engine.dialect.name
    print(f"\n{args.passages:,} passages, {args.queries:,} queries, index {kind}, {dialect}")
    for name, values, goal in (("passage search", searches, 200), ("next card", cards, 150)):
        verdict = "OK" if p95(values) < goal else "MISSED"
        print(
            f"{name:<15} median {1000 * statistics.median(values):6.1f} ms   "
            f"p95 {p95(values):6.1f} ms   goal < {goal} ms: {verdict}"
        )
    print(f"peak RSS {peak:,.0f} MB   goal < 4,096 MB: {'OK' if peak < 4096 else 'MISSED'}")


if __name__ == "__main__":
    main()
