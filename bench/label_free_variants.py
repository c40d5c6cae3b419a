"""Two variants of the label-free loop, on a copy of `bench/label_free.py`'s SciFact project.

Run after `bench/label_free.py --corpus scifact` (it leaves the project database, the
LLM cache, the embeddings and the indexes in `bench/out/label_free/scifact/`). Each variant
works on a copy of that database in `bench/out/label_free_variants/<variant>/`, trains and
prints nDCG@10 of BM25, the base model, the fine-tuned model and the hybrid on the real
queries of `--split` (choose on `train`).

- `bm25-consistent`: queries flagged `inconsistent` (the guide misses the seed) whose seed
  BM25 ranks in the top `--bm25-k` are unflagged, so training also sees the lexical
  matches the dense model misses; GIST, 2 epochs, lr 5e-5 (the label-free default).
- `ql-teacher`: the flagged queries are dropped (the label-free policy leaves them out),
  the rest are reranked by the LLM (query likelihood + guide, top `--top-k`; resumable:
  run it again after an interruption), then trained with `--loss` (`margin_mse`: the LLM's
  query likelihoods as teacher, GPL-style; `gist`: the reranked positives).

    python bench/label_free_variants.py bm25-consistent --split train
    python bench/label_free_variants.py ql-teacher --loss margin_mse --split train
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench" / "out" / "label_free" / "scifact"
OUT = ROOT / "bench" / "out" / "label_free_variants"
BEIR = ROOT.parent / "shared" / "datasets" / "scifact"

UNFLAG_BM25 = """DELETE FROM query_flags WHERE kind = 'inconsistent' AND query_id IN (
  SELECT g.id FROM generated_queries g JOIN candidates c
  ON c.query_id = g.id AND c.passage_id = g.seed_passage_id
  WHERE c.bm25_rank IS NOT NULL AND c.bm25_rank <= ?)"""
DROP_FLAGGED = "DELETE FROM generated_queries WHERE id IN (SELECT query_id FROM query_flags)"


STORES = ("embeddings", "eval_cache", "index", "cache")


def link_stores(source: Path, folder: Path, names: tuple[str, ...] = STORES) -> None:
    """A new ``folder`` whose large stores (``names``) and GGUF files are links to the
    source bench folder's, not copies."""
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).symlink_to(source / name)
    (folder / "models").mkdir()
    for model in source.glob("models/*.gguf*"):
        (folder / "models" / model.name).symlink_to(model)


def copy_database(source: Path, folder: Path, statement: str = "", params: tuple = ()) -> int:
    """A copy of the source's database in ``folder`` with ``statement`` applied (its row
    count returned) and no training run or fine-tuned model."""
    shutil.copy(source / "bench.db", folder / "bench.db")
    changed = 0
    with sqlite3.connect(folder / "bench.db") as connection:
        connection.execute("PRAGMA foreign_keys = ON")
        if statement:
            changed = connection.execute(statement, params).rowcount
        connection.execute("DELETE FROM models WHERE kind = 'fine-tuned'")
        connection.execute("DELETE FROM training_runs")
    return changed


def copy_project(source: Path, folder: Path, statement: str, params: tuple = ()) -> None:
    """A copy of the SciFact project in ``folder`` with ``statement`` applied and no
    training run (the large stores are linked, not copied)."""
    if (folder / "bench.db").exists():
        return
    if not (source / "bench.db").exists():
        raise SystemExit(f"{source / 'bench.db'} not found: run bench/label_free.py first")
    link_stores(source, folder)
    changed = copy_database(source, folder, statement, params)
    print(f"{folder.name}: {changed} rows changed by the variant", flush=True)


def rerank(database, folder: Path, top_k: int) -> None:
    from curator.llm.client import LLMSettings
    from curator.services.llm import open_llm
    from curator.services.rerank import RerankOptions, rerank_queries

    client = open_llm(folder, LLMSettings())
    print(rerank_queries(database, "bench", client, RerankOptions(top_k=top_k)).summary())


def train_and_evaluate(database, folder: Path, loss: str, split: str) -> None:
    from curator.services.train import TrainOptions, evaluate_project, train_project
    from trainer.finetune import TrainSettings

    settings = TrainSettings(loss=loss, epochs=2.0, learning_rate=5e-5, save_steps=10_000)
    trained = train_project(
        database, "bench", folder, TrainOptions(policy="all", settings=settings)
    )
    print(trained.summary(), flush=True)
    report = evaluate_project(
        database, "bench", folder, run_id=trained.run_id, beir=BEIR, split=split
    )
    print(f"{loss}, real {split} queries, nDCG@10:")
    for system, values in report.metrics.items():
        print(f"  {system:<12}{values['ndcg@10']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variant", choices=("bm25-consistent", "ql-teacher"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--bm25-k", type=int, default=10)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--loss", default="margin_mse")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the SciFact bench folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from db import open_database

    if args.variant == "bm25-consistent":
        folder = args.out / f"bm25-consistent-{args.bm25_k}"
        copy_project(args.source, folder, UNFLAG_BM25, (args.bm25_k,))
        loss = "gist"
    else:
        folder = args.out / f"ql-teacher-{args.top_k}"
        copy_project(args.source, folder, DROP_FLAGGED)
        loss = args.loss
    database = open_database(f"sqlite:///{folder / 'bench.db'}")
    if args.variant == "ql-teacher":
        rerank(database, folder, args.top_k)
    train_and_evaluate(database, folder, loss, args.split)


if __name__ == "__main__":
    main()
