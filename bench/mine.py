"""Mining benchmarks: guide-model encoding backends on SciFact, and mining at scale.

Part 1 (``--part encode``): encodes the whole SciFact corpus (5,183 passages, title + text,
max_seq 256, batch 64) with each backend (torch fp32, bf16, onnx, onnx-int8), prints
passages/s, the ratio to torch, and nDCG@10 on the SciFact test queries (exact search,
scored by pytrec_eval through ``trainer.evaluate.ir_metrics``), to compare with the
published MTEB figure for torch (0.6451).

Part 2 (``--part scale``): mining 10,000 queries over 100,000 passages through the real
service, with the passage embeddings precomputed (random unit vectors put in the
embedding store, so no passage is encoded) and synthetic passage texts for BM25. Prints
the time of each phase (index build, query encoding + search + BM25 + writes) and the peak
RSS. Goal: under 60 s on 2 cores.

    python bench/mine.py                 # both parts
    python bench/mine.py --part scale --passages 100000 --queries 10000
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"


def ndcg_at_10(ranked: list[list[str]], query_ids: list[str], qrels: dict[str, dict[str, int]]):
    """Mean nDCG@10 of ranked document lists (best first), one per query id, scored by
    ``trainer.evaluate.ir_metrics`` (pytrec_eval, the trec_eval / BEIR definition)."""
    from trainer.evaluate import ir_metrics

    run = {
        q: {d: float(len(docs) - i) for i, d in enumerate(docs)}
        for q, docs in zip(query_ids, ranked, strict=True)
    }
    return ir_metrics(run, {q: qrels[q] for q in query_ids})["ndcg@10"]


def part_encode(backends: list[str]) -> None:
    from curator.retrieval.guide import GuideModel, GuideSettings
    from trainer.evaluate import load_beir

    test = load_beir(SCIFACT, "test")
    texts, doc_ids = test.doc_texts, test.doc_ids
    query_ids = sorted(test.queries, key=int)
    qrels, queries = test.qrels, test.queries
    work = Path(tempfile.mkdtemp(prefix="curator-bench-mine-"))
    results = []
    for backend in backends:
        guide = GuideModel(GuideSettings(backend=backend), work_dir=work)
        guide.encode(texts[:64])  # warm-up (and the one-off ONNX export)
        start = time.perf_counter()
        corpus = guide.encode(texts)
        seconds = time.perf_counter() - start
        q = guide.encode([queries[i] for i in query_ids])
        top = np.argsort(-(q @ corpus.T), axis=1)[:, :10]
        ndcg = ndcg_at_10([[doc_ids[j] for j in row] for row in top], query_ids, qrels)
        results.append((backend, len(texts) / seconds, seconds, ndcg))
        print(
            f"{backend:<10} {len(texts) / seconds:6.1f} passages/s  {seconds:6.1f} s  "
            f"nDCG@10 {ndcg:.4f}",
            flush=True,
        )
    base = next((r for r in results if r[0] == "torch"), results[0])
    print("\nbackend     passages/s   ratio   nDCG@10   change (points)")
    for backend, rate, _, ndcg in results:
        print(
            f"{backend:<10} {rate:10.1f} {rate / base[1]:7.2f} {ndcg:9.4f} "
            f"{100 * (ndcg - base[3]):+9.2f}"
        )


def part_scale(n_passages: int, n_queries: int, index_kind: str) -> None:
    from sqlalchemy import insert, select

    from curator.pipeline.readers import SourceRecord
    from curator.retrieval.guide import GuideModel, GuideSettings
    from curator.retrieval.store import EmbeddingStore
    from curator.services.ingest import ingest_records
    from curator.services.mine import MineOptions, mine_candidates
    from db import open_database
    from db.models import GeneratedQuery, Passage
    from db.session import sqlite_url

    rng = random.Random(0)
    vocabulary = [f"term{i}" for i in range(20_000)]
    work = Path(tempfile.mkdtemp(prefix="curator-bench-scale-"))
    database = open_database(sqlite_url(work / "curator.db"))
    start = time.perf_counter()
    records = (
        SourceRecord(f"d{i}", "", " ".join(rng.choices(vocabulary, k=60)), "synthetic", i + 1)
        for i in range(n_passages)
    )
    ingest_records(database, "scale", records, source="synthetic")
    print(f"ingested {n_passages:,} synthetic passages in {time.perf_counter() - start:.1f} s")

    guide = GuideModel(GuideSettings(), work_dir=work / "models")
    with database.sessions() as session:
        rows = session.execute(select(Passage.id, Passage.content_hash).order_by(Passage.id)).all()
    store = EmbeddingStore(work / "data" / "embeddings" / guide.key, guide.dim)
    vectors = np.random.default_rng(0).standard_normal((len(rows), guide.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.add([h for _, h in rows], vectors)
    del vectors
    with database.sessions() as session, session.begin():
        session.execute(
            insert(GeneratedQuery),
            [
                {
                    "project_id": 1,
                    "seed_passage_id": rows[i % len(rows)][0],
                    "sample_index": 0,
                    "task": "t",
                    "query": " ".join(rng.choices(vocabulary, k=8)),
                    "model": "bench",
                    "prompt_version": "bench",
                    "raw_output": "",
                    "status": "ok",
                }
                for i in range(n_queries)
            ],
        )
    print(f"prepared {n_queries:,} queries and {len(rows):,} precomputed passage embeddings")

    start = time.perf_counter()
    report = mine_candidates(
        database, "scale", work / "data", MineOptions(top_n=30, index_kind=index_kind), guide=guide
    )
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nmining {n_queries:,} queries x {n_passages:,} passages "
        f"(index {report.index_kind}, top 30): {total:.1f} s in all"
    )
    for phase, seconds in report.seconds.items():
        print(f"  {phase:<8} {seconds:6.1f} s")
    print(f"  candidates stored: {report.candidates:,}; encoded passages: {report.encoded}")
    print(f"peak RSS {peak:,.0f} MB; goal under 60 s: {'OK' if total < 60 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["encode", "scale", "all"], default="all")
    parser.add_argument("--backends", default="torch,bf16,onnx,onnx-int8")
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--index", default="auto", choices=["auto", "flat", "hnsw"])
    args = parser.parse_args()
    if args.part in ("encode", "all"):
        part_encode(args.backends.split(","))
    if args.part in ("scale", "all"):
        part_scale(args.passages, args.queries, args.index)


if __name__ == "__main__":
    main()
