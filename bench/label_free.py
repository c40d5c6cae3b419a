"""The label-free loop, end to end: does it make a better retriever than its base model?

For each corpus, through the project's own services, with the embedded defaults and no
labels: ingest the BEIR corpus; generate one query for a seeded sample of passages with
`local/gemma3-270m`; mine with the packaged all-MiniLM-L6-v2 (candidates, guarded hard
negatives, round-trip consistency flags); optionally rerank; train under the label-free
policy (`all`: every unreviewed query that no stage flagged); evaluate BM25, the base
model, the fine-tuned model and the hybrid on the corpus's *real* queries and qrels.

Prints per corpus: passages sampled, queries parsed / flagged by each check / kept,
training rows, nDCG@10 and Recall@100 of each system, and the wall time of each stage.

The database is made anew on each run; the LLM's replies (`<out>/cache/llm.sqlite`), the
passage embeddings and the packaged models are kept in `bench/out/label_free/<corpus>/`,
so a second run with other filter or training settings does not regenerate (a changed
prompt does). Settings are chosen with `--split train` on SciFact (its 809 train
queries), never on the test split; the README quotes the test figures.

    python bench/label_free.py --corpus scifact --split train      # choose settings
    python bench/label_free.py                                     # all three, test split
    python bench/label_free.py --corpus dbpedia --loss margin_mse --rerank-top-k 10
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "bench" / "out" / "label_free"
CORPORA = {
    "scifact": ("scifact", 1000),
    "dbpedia": ("dbpedia-entity-subset5k", 1000),
    "msmarco": ("msmarco-dl19-subset5k", 1000),
}
PROJECT = "bench"


def parse_args() -> argparse.Namespace:
    from trainer.finetune import TrainSettings

    defaults = TrainSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument(
        "--split", default="test", help="qrels split(s) to evaluate on, e.g. train,test"
    )
    parser.add_argument("--sample", type=int, default=None, help="passages to generate for")
    parser.add_argument("--seed", type=int, default=0, help="passage sample seed")
    parser.add_argument("--resample", type=int, default=2, help="extra draws for copies/junk")
    parser.add_argument("--consistency-k", type=int, default=10)
    parser.add_argument("--no-consistency", action="store_true")
    parser.add_argument("--rerank-top-k", type=int, default=0, help="0: no reranking")
    parser.add_argument("--policy", default="all")
    parser.add_argument(
        "--loss", default="gist", help="gist: chosen on SciFact's train queries (README)"
    )
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--negatives", type=int, default=defaults.negatives)
    parser.add_argument(
        "--variants",
        default="",
        help='several trainings on the same data: "loss,epochs,lr;loss,epochs,lr"',
    )
    parser.add_argument("--threads", type=int, default=None, help="LLM threads")
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def fresh_database(folder: Path):
    """A new database in ``folder`` (the old one and the project's indexes removed)."""
    from db import open_database

    for name in ("bench.db", "bench.db-wal", "bench.db-shm"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "index", ignore_errors=True)
    shutil.rmtree(folder / "models" / PROJECT, ignore_errors=True)
    return open_database(f"sqlite:///{folder / 'bench.db'}")


def run_corpus(name: str, args: argparse.Namespace) -> dict:
    """The whole loop on one corpus; returns counts, metrics and stage times."""
    from curator.llm.client import LLMSettings
    from curator.services.generate import GenerateOptions, generate_queries
    from curator.services.ingest import ingest_path
    from curator.services.llm import open_llm
    from curator.services.mine import MineOptions, mine_candidates
    from curator.services.projects import ensure_project
    from curator.services.training_set import load_training_set
    from trainer.finetune import TrainSettings

    folder_name, default_sample = CORPORA[name]
    beir = DATASETS / folder_name
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    database = fresh_database(out)
    ensure_project(database, PROJECT)
    times: dict[str, float] = {}
    result: dict = {"corpus": name, "times": times}

    clock = time.perf_counter()
    ingest_path(database, PROJECT, beir / "corpus.jsonl")
    times["ingest"] = time.perf_counter() - clock

    clock = time.perf_counter()
    client = open_llm(out, LLMSettings(), threads=args.threads)
    options = GenerateOptions(
        sample=args.sample or default_sample, seed=args.seed, resample=args.resample
    )
    generated = generate_queries(database, PROJECT, client, options)
    times["generate"] = time.perf_counter() - clock
    result["generate"] = generated.counts() | {"cache_hits": client.usage.cache_hits}
    print(generated.summary(), flush=True)

    clock = time.perf_counter()
    consistency = None if args.no_consistency else args.consistency_k
    mined = mine_candidates(database, PROJECT, out, MineOptions(consistency_k=consistency))
    times["mine"] = time.perf_counter() - clock
    result["mine"] = {"inconsistent": mined.inconsistent, "mined": mined.queries_mined}
    print(mined.summary(), flush=True)

    if args.rerank_top_k:
        from curator.services.rerank import RerankOptions, rerank_queries

        clock = time.perf_counter()
        reranked = rerank_queries(database, PROJECT, client, RerankOptions(top_k=args.rerank_top_k))
        times["rerank"] = time.perf_counter() - clock
        print(reranked.summary(), flush=True)

    training_set = load_training_set(database, PROJECT, args.policy)
    result["training_set"] = training_set.counts()
    result["variants"] = []
    for loss, epochs, lr in variants(args):
        settings = TrainSettings(
            loss=loss,
            epochs=epochs,
            learning_rate=lr,
            batch_size=args.batch_size,
            negatives=args.negatives,
            save_steps=10_000,
        )
        result["variants"].append(train_and_evaluate(database, out, beir, args, settings))
    times.update(result["variants"][0].pop("times"))
    return result


def variants(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    """(loss, epochs, learning rate) to train, from --variants or the single options."""
    if not args.variants:
        return [(args.loss, args.epochs, args.lr)]
    chosen = []
    for item in args.variants.split(";"):
        loss, epochs, lr = item.split(",")
        chosen.append((loss.strip(), float(epochs), float(lr)))
    return chosen


def train_and_evaluate(database, out: Path, beir: Path, args, settings) -> dict:
    """Train one model on the project and evaluate it on the held-out generated queries and
    on the real queries of each split in --split."""
    from curator.services.train import TrainOptions, evaluate_project, train_project

    times: dict[str, float] = {}
    clock = time.perf_counter()
    trained = train_project(
        database, PROJECT, out, TrainOptions(policy=args.policy, settings=settings)
    )
    times["train"] = time.perf_counter() - clock
    print(trained.summary(), flush=True)
    clock = time.perf_counter()
    held_out = evaluate_project(database, PROJECT, out, run_id=trained.run_id)
    result = {
        "label": f"{settings.loss}, {settings.epochs:g} epochs, lr {settings.learning_rate:g}",
        "train_rows": trained.train_rows,
        "held_out_generated": {
            "queries": held_out.queries,
            **{s: round(v["ndcg@10"], 4) for s, v in held_out.metrics.items()},
        },
        "splits": {},
        "times": times,
    }
    for split in args.split.split(","):
        if not (beir / "qrels" / f"{split}.tsv").exists():
            continue
        report = evaluate_project(
            database, PROJECT, out, run_id=trained.run_id, beir=beir, split=split
        )
        result["splits"][split] = (report.queries, report.metrics)
    times["evaluate"] = time.perf_counter() - clock
    return result


def print_result(result: dict) -> None:
    generate = result["generate"]
    flagged = {k[len("flagged_") :]: v for k, v in generate.items() if k.startswith("flagged_")}
    counts = result["training_set"]
    print(f"\n=== {result['corpus']} ===")
    print(
        f"passages {generate['planned'] + generate['already_done']}, parsed {generate['ok']}, "
        f"parse failures {generate['parse_failed']}, resampled {generate['resampled']}, "
        f"flagged at generation {flagged or 'none'}, inconsistent {result['mine']['inconsistent']}"
        f"; kept {counts['examples']} (train {counts['train']}, held out {counts['eval']}); "
        f"left out {counts['dropped']}"
    )
    parsed = max(generate["ok"], 1)
    print(
        f"copy rate {flagged.get('copy', 0) / parsed:.1%}, junk rate "
        f"{(flagged.get('junk', 0) + flagged.get('duplicate', 0)) / parsed:.1%} of parsed queries"
    )
    for variant in result["variants"]:
        print(f"-- {variant['label']}: {variant['train_rows']} training rows")
        for split, (queries, metrics) in variant["splits"].items():
            print(f"real {split} queries: {queries}")
            print(f"{'system':<12}{'nDCG@10':>10}{'R@100':>10}")
            for system, values in metrics.items():
                print(f"{system:<12}{values['ndcg@10']:>10.4f}{values['recall@100']:>10.4f}")
        print(f"held-out generated queries: {variant['held_out_generated']}")
    print(
        "seconds (first variant): " + ", ".join(f"{k} {v:.0f}" for k, v in result["times"].items())
    )


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    names = list(CORPORA) if args.corpus == "all" else [args.corpus]
    results = []
    for name in names:
        started = time.perf_counter()
        results.append(run_corpus(name, args))
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    for result in results:
        print_result(result)


if __name__ == "__main__":
    main()
