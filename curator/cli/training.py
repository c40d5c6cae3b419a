"""Training and evaluation: train, eval."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curator.cli.common import _open, add_command, job_progress, options_from_args
from curator.config import Settings


def default_loss(policy: str) -> str:
    """``gist`` when the training set takes unreviewed machine labels (its guide model masks
    in-batch negatives that look like positives: chosen on SciFact's train queries in
    bench/label_free.py), ``mnrl`` for judged queries only."""
    return "mnrl" if policy == "none" else "gist"


def _train_settings(args: argparse.Namespace):
    from trainer.finetune import TrainSettings

    return options_from_args(
        TrainSettings,
        args,
        "epochs batch_size max_seq_length negatives matryoshka bf16 max_steps save_steps",
        loss=args.loss or default_loss(args.policy),
        learning_rate=args.lr,
    )


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """fine-tune the base model on the curated set, then evaluate it

    Fine-tune a bi-encoder on the judged queries (plus unreviewed ones by --policy),
    held-out split apart; an interrupted run with the same settings resumes from its last
    checkpoint. Then BM25, base, fine-tuned and hybrid are compared on the held-out queries
    (skip with --no-eval).
    """
    from tqdm import tqdm

    from curator.services.train import TrainOptions, train_project

    options = options_from_args(
        TrainOptions,
        args,
        "base_model policy eval_fraction",
        split_seed=args.seed,
        settings=_train_settings(args),
        processes=args.processes if args.launcher == "accelerate" else 1,
    )
    database = _open(settings)
    bar = tqdm(desc="fine-tune", unit="step")
    row = job_progress(args)

    def on_step(step: int, total: int, loss: float | None) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-")
        bar.refresh()
        if row is not None:
            shown = f"{loss:.4f}" if loss is not None else "-"
            row.update(step, total, f"fine-tune (loss {shown})")

    try:
        report = train_project(database, settings.project, settings.data_dir, options, on_step)
    except ValueError as error:
        bar.close()
        print(f"error: {error}", file=sys.stderr)
        return 2
    bar.close()
    print(report.summary())
    if args.no_eval:
        return 0
    return _print_evaluation(database, settings, run_id=report.run_id, args=args)


def _print_evaluation(database, settings: Settings, *, run_id, args, beir=None) -> int:
    from curator.services.train import evaluate_project
    from trainer.evaluate import METRICS

    try:
        report = evaluate_project(
            database,
            settings.project,
            settings.data_dir,
            run_id=run_id,
            beir=beir,
            split=getattr(args, "split", "test"),
            base_model=args.base_model,
            split_seed=args.seed,
            eval_fraction=args.eval_fraction,
        )
    except (ValueError, LookupError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{report.dataset} ({report.queries} queries)")
    if report.split == "held-out-generated":
        print(
            "note: no reviewed held-out queries yet; these are generated queries nobody has "
            "checked, scored against the passage each was written for. Judge queries for a "
            "real figure."
        )
    print(f"{'system':<12}" + "".join(f"{m:>12}" for m in METRICS))
    for system, values in report.metrics.items():
        print(f"{system:<12}" + "".join(f"{values[m]:>12.4f}" for m in METRICS))
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """nDCG@10, MRR@10, Recall@10/100, MAP@100 of BM25, base, fine-tuned, hybrid

    Evaluate on the held-out curated queries (default) or on a BEIR folder (--beir PATH,
    its qrels/<split>.tsv). Results are stored in the database.
    """
    return _print_evaluation(_open(settings), settings, run_id=args.run, args=args, beir=args.beir)


def _train_options(train: argparse.ArgumentParser) -> None:
    """The ``train`` command's options."""
    add_split_options(train)
    train.add_argument(
        "--policy",
        default="none",
        choices=["none", "high_confidence", "all"],
        help="unreviewed queries: none (default), high_confidence, all",
    )
    train.add_argument(
        "--loss",
        default=None,
        choices=["mnrl", "cached_mnrl", "gist", "margin_mse"],
        help="default: mnrl for judged queries only (--policy none), gist when unreviewed "
        "machine labels are in (label-free)",
    )
    train.add_argument("--epochs", type=float, default=2.0)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=5e-5)
    train.add_argument("--max-seq-length", type=int, default=256)
    train.add_argument("--negatives", type=int, default=1, help="hard negatives per row")
    train.add_argument("--matryoshka", action="store_true", help="wrap the loss in MatryoshkaLoss")
    train.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    train.add_argument("--max-steps", type=int, default=-1, help="stop after N steps")
    train.add_argument("--save-steps", type=int, default=20, help="checkpoint every N steps")
    train.add_argument("--no-eval", action="store_true", help="do not evaluate afterwards")
    train.add_argument(
        "--launcher",
        default="none",
        choices=["none", "accelerate"],
        help="accelerate: train in --processes data-parallel processes (gloo on CPU)",
    )
    train.add_argument("--processes", type=int, default=2, help="processes with --launcher")


def _eval_options(evaluate: argparse.ArgumentParser) -> None:
    """The ``eval`` command's options."""
    add_split_options(evaluate)
    evaluate.add_argument("--run", type=int, help="training run (default: the latest)")
    evaluate.add_argument("--beir", type=Path, help="a BEIR folder to evaluate on instead")
    evaluate.add_argument("--split", default="test", help="qrels split of --beir")


def add_split_options(command) -> None:
    """The base model and held-out split options (train, eval)."""
    command.add_argument(
        "--base-model", default="all-MiniLM-L6-v2", help="model to start from / compare"
    )
    command.add_argument("--seed", type=int, default=13, help="held-out split seed")
    command.add_argument(
        "--eval-fraction", type=float, default=0.2, help="share of seed passages held out"
    )


def add_commands(commands) -> None:
    """Register this module's commands on the ``commands`` subparsers."""
    add_command(commands, "train", cmd_train, _train_options, job="train")
    add_command(commands, "eval", cmd_eval, _eval_options, job="eval")
