"""LLM reranking on SciFact: does fusing LLM scores with the guide beat the guide alone?

SciFact train queries (real queries and qrels; a seeded sample of N, default 100); for
each, the packaged all-MiniLM-L6-v2's top-20 passages over the whole corpus (5,183) are
scored by query likelihood (QL) and relevance classification (RC) with the embedded
`local/gemma3-270m`, using the same prompts and code as `curator rerank`. Prints nDCG@10
of the top-20 reordered by each method and by RRF of the method sets (k = 0, Gecko's
setting, and k = 60), and the milliseconds per pair of each LLM method.

    python bench/rerank.py [--queries 100] [--top-k 20]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"
sys.path.insert(0, str(ROOT / "bench"))

from mine import ndcg_at_10  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    from curator.llm.client import LLMSettings
    from curator.llm.likelihood import log_likelihood, yes_no_log_odds
    from curator.llm.local import configure_local
    from curator.pipeline.fusion import (
        fused_order,
        rankings_from_scores,
        reciprocal_rank_fusion,
    )
    from curator.pipeline.label_readers import read_beir
    from curator.pipeline.likelihood import build_ql_prefix, ql_continuation
    from curator.pipeline.rerank import build_rc_prefix
    from curator.retrieval.guide import GuideModel, GuideSettings

    train = read_beir(SCIFACT, "train")
    docs = train.documents
    doc_ids = [d.doc_id for d in docs]
    qrels, texts = train.qrels, train.queries
    query_ids = sorted(random.Random(args.seed).sample(sorted(qrels), args.queries), key=int)

    guide = GuideModel(GuideSettings(backend="bf16"), work_dir=Path(tempfile.mkdtemp()))
    cache = ROOT / "bench" / "out" / f"scifact-{guide.key}.npy"
    if cache.exists():
        corpus = np.load(cache)
    else:
        print("encoding the SciFact corpus once (cached in bench/out/)...", flush=True)
        corpus = guide.encode([f"{d.title} {d.text}".strip() for d in docs])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, corpus)
    q_vectors = guide.encode([texts[q] for q in query_ids])
    sims = q_vectors @ corpus.T
    top = np.argsort(-sims, axis=1)[:, : args.top_k]

    configure_local(
        models_dir=Path(tempfile.mkdtemp()) / "models",
        n_threads=args.threads,
        n_threads_batch=args.threads,
    )
    llm = LLMSettings(model="local/gemma3-270m")
    log_likelihood(llm, "Passage: warm-up\nQuery:", " x")  # load the model before timing
    scores: dict[str, list[dict[int, float]]] = {"guide": [], "ql": [], "rc": []}
    seconds = {"ql": 0.0, "rc": 0.0}
    pairs = 0
    started = time.perf_counter()
    for row, qid in enumerate(query_ids):
        per = {m: {} for m in scores}
        for j in top[row]:
            doc = docs[j]
            per["guide"][int(j)] = float(sims[row, j])
            t = time.perf_counter()
            per["ql"][int(j)] = log_likelihood(
                llm, build_ql_prefix(doc.title, doc.text), ql_continuation(texts[qid])
            )[0]
            seconds["ql"] += time.perf_counter() - t
            t = time.perf_counter()
            per["rc"][int(j)] = yes_no_log_odds(
                llm, build_rc_prefix(doc.title, doc.text, texts[qid])
            )
            seconds["rc"] += time.perf_counter() - t
            pairs += 1
        for m in scores:
            scores[m].append(per[m])
        if (row + 1) % 10 == 0:
            print(
                f"  {row + 1}/{len(query_ids)} queries, {time.perf_counter() - started:.0f} s",
                flush=True,
            )

    def ndcg_of(methods: tuple[str, ...], k: float) -> float:
        ranked = []
        for row in range(len(query_ids)):
            rankings = rankings_from_scores({m: scores[m][row] for m in methods})
            fused = reciprocal_rank_fusion(rankings, k)
            order = fused_order(fused, scores["guide"][row])
            ranked.append([doc_ids[p] for p in order])
        return ndcg_at_10(ranked, query_ids, qrels)

    recall = np.mean([any(doc_ids[j] in qrels[q] for j in top[r]) for r, q in enumerate(query_ids)])
    print(
        f"\n{len(query_ids)} SciFact train queries, top-{args.top_k} guide candidates "
        f"({pairs} pairs); a qrels positive is in the top {args.top_k} for "
        f"{recall:.1%} of queries"
    )
    print(
        f"ms per pair: QL {1000 * seconds['ql'] / pairs:.0f}, "
        f"RC {1000 * seconds['rc'] / pairs:.0f} (2 threads)"
    )
    print("\nordering                 nDCG@10 (k=0)   nDCG@10 (k=60)")
    for size in (1, 2, 3):
        for methods in combinations(("guide", "ql", "rc"), size):
            name = " + ".join(methods) if size > 1 else f"{methods[0]} alone"
            k0 = ndcg_of(methods, 0.0)
            k60 = ndcg_of(methods, 60.0) if size > 1 else k0
            print(f"{name:<24} {k0:13.4f}   {k60:13.4f}")


if __name__ == "__main__":
    main()
