"""Fine-tuning benchmark on SciFact: does the curated set beat BM25?

The SciFact train qrels stand in for a curated set (809 queries, 919 query-passage
pairs); the test qrels (300 queries) are the evaluation. Steps, all through the
project's own code:

1. BM25 (``trainer.evaluate.bm25_run``) and the zero-shot base model (the packaged
   all-MiniLM-L6-v2) on the test queries;
2. hard negatives for each training query from the base model's top ``--depth`` with the
   miner's false-negative guard (``curator.pipeline.negatives``, relative margin 0.95);
3. ``trainer.finetune.fine_tune`` with the given settings (defaults: the trainer's);
4. the fine-tuned model and the hybrid RRF(BM25, fine-tuned) on the test queries.

Prints nDCG@10 / MRR@10 / Recall@10 / Recall@100 / MAP@100 per system and the wall time
of each step. Goal (issue 7): fine-tuned >= 0.70 and above BM25 (0.679); hybrid above both.

    python bench/train.py                      # defaults
    python bench/train.py --epochs 2 --lr 1e-4 --negatives 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"


def main() -> None:
    from trainer.finetune import TrainSettings

    defaults = TrainSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SCIFACT)
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-seq", type=int, default=defaults.max_seq_length)
    parser.add_argument("--negatives", type=int, default=defaults.negatives)
    parser.add_argument("--loss", default=defaults.loss)
    parser.add_argument("--depth", type=int, default=30, help="mining depth for negatives")
    parser.add_argument("--relative-margin", type=float, default=0.95)
    parser.add_argument("--out", type=Path, default=None, help="keep the model here")
    args = parser.parse_args()

    import numpy as np

    from curator.pipeline.negatives import GuideCandidate, NegativeFilter, select_negatives
    from curator.pipeline.training_set import Example, PassageRecord, TrainingSet, training_rows
    from curator.retrieval.guide import GuideModel, GuideSettings
    from trainer.evaluate import (
        METRICS,
        bm25_run,
        dense_run,
        hybrid_run,
        ir_metrics,
        load_beir,
    )
    from trainer.finetune import fine_tune

    timings: dict[str, float] = {}
    results: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    test = load_beir(args.data, "test")
    train = load_beir(args.data, "train")
    timings["load"] = time.perf_counter() - started

    t = time.perf_counter()
    bm25 = bm25_run(test)
    results["BM25"] = ir_metrics(bm25, test.qrels)
    timings["bm25"] = time.perf_counter() - t

    t = time.perf_counter()
    base = GuideModel(GuideSettings(backend="auto", max_seq_length=args.max_seq))
    base_run, doc_vectors = dense_run(base.encode, test)
    results["base (MiniLM zero-shot)"] = ir_metrics(base_run, test.qrels)
    timings["base encode+eval"] = time.perf_counter() - t

    # the curated set: train qrels as judged positives, mined hard negatives
    t = time.perf_counter()
    row_of = {d: i for i, d in enumerate(test.doc_ids)}  # same corpus file for both splits
    train_ids = list(train.queries)
    query_vectors = base.encode([train.queries[q] for q in train_ids])
    flt = NegativeFilter(max_rank=args.depth, relative_margin=args.relative_margin)
    examples, without_negative = [], 0
    for number, (query_id, vector) in enumerate(zip(train_ids, query_vectors, strict=True)):
        scores = doc_vectors @ vector
        top = np.argsort(-scores)[: args.depth]
        positives = [row_of[d] for d, r in train.qrels[query_id].items() if r > 0]
        selection = select_negatives(
            [GuideCandidate(int(i), float(scores[i]), rank) for rank, i in enumerate(top, start=1)],
            {p: float(scores[p]) for p in positives},
            flt,
            limit=args.negatives,
        )
        without_negative += not selection.negatives
        examples.append(
            Example(
                query_id=number,
                seed_passage_id=positives[0],
                task="",
                query=train.queries[query_id],
                positives=positives,
                negatives=[c.passage_id for c in selection.negatives],
                source="human",
            )
        )
    passages = {
        i: PassageRecord(i, d, "", text)
        for i, (d, text) in enumerate(zip(test.doc_ids, test.doc_texts, strict=True))
    }
    curated = TrainingSet(examples, passages, "none", 0, 0.0, 0.0)
    rows = training_rows(curated, "train", negatives=args.negatives)
    timings["mine negatives"] = time.perf_counter() - t
    print(
        f"curated set: {len(examples)} queries, {len(rows)} rows, "
        f"{without_negative} queries without an admissible hard negative (filled at random)"
    )

    settings = TrainSettings(
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_seq_length=args.max_seq,
        negatives=args.negatives,
        save_steps=10_000,
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-train-"))
    t = time.perf_counter()

    def report(step: int, total: int, loss: float | None) -> None:
        if step % 5 == 0 or step == total:
            print(f"  step {step}/{total} loss {loss if loss is None else round(loss, 4)}")

    result = fine_tune("all-MiniLM-L6-v2", rows, out, settings, on_step=report)
    timings["fine-tune"] = time.perf_counter() - t

    t = time.perf_counter()
    tuned = GuideModel(
        GuideSettings(model=str(result.model_path), backend="auto", max_seq_length=args.max_seq)
    )
    tuned_run, _ = dense_run(tuned.encode, test)
    results["fine-tuned"] = ir_metrics(tuned_run, test.qrels)
    results["hybrid RRF(BM25, fine-tuned)"] = ir_metrics(hybrid_run(bm25, tuned_run), test.qrels)
    results["hybrid RRF(BM25, base)"] = ir_metrics(hybrid_run(bm25, base_run), test.qrels)
    timings["fine-tuned encode+eval"] = time.perf_counter() - t

    print(f"\nsettings: {settings.as_dict()}  bf16={result.bf16}  steps={result.steps}")
    print(
        f"loss: first {result.loss_curve[0]['loss']:.4f} last {result.loss_curve[-1]['loss']:.4f}"
    )
    print(f"\nSciFact test ({len(test.queries)} queries)")
    print("| system | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for system, values in results.items():
        print(f"| {system} | " + " | ".join(f"{values[m]:.4f}" for m in METRICS) + " |")
    print("\n" + "  ".join(f"{k}: {v:.1f} s" for k, v in timings.items()))
    print(f"total wall time: {time.perf_counter() - started:.1f} s; model at {result.model_path}")


if __name__ == "__main__":
    main()
