"""What a person's work buys: the label-free SciFact project plus N queries an annotator
fixed, trained and compared with the label-free model on real queries.

Run after `bench/label_free.py --corpus scifact` (it leaves the project, the LLM cache,
the embeddings and the label-free models in `bench/out/label_free/scifact/`).

The annotator is simulated through the annotation service, as the app would store it:
going through the generated queries in queue order (`not_judged`: by id), for each query
whose seed passage is relevant to a SciFact *train* claim, until the budget is spent, they
replace the machine's query with that claim (an edited query) and mark as positive the
card's candidates the claim's qrels name (an override, provenance `human`). So the
simulation stands for "a person wrote the query a user would ask of this passage"; it
does not simulate accepting or rejecting the other queries. The claims the annotator used
are left out of the evaluation: figures are on the **other** train claims (`train-rest`,
where settings may be chosen) and on the test claims (read once, reported).

Modes (each on its own copy in `bench/out/human_budget/<mode>-<budget>/`):

- `label-free`: no annotation; the source project's label-free model (`--source-run`),
  evaluated on the same `train-rest` claims, for comparison;
- `human-only`: the N fixed queries alone (`--policy none`, MNRL: the default for judged
  queries);
- `human+machine`: the N fixed queries and the unflagged machine queries (`--policy all`,
  GIST: the default when machine labels are in);
- `report`: prints a Markdown table of every result so far (`results.jsonl`);
- `human+curated`: as `human+machine`, but the machine queries are written again for the
  same passages with the fixed queries as few-shot examples (what `curator generate` does
  once a project has 3 accepted or edited queries), then mined again, and the annotator
  fixes the same passages' queries.

    python bench/human_budget.py label-free --budget 100
    python bench/human_budget.py human+machine --budget 100
    python bench/human_budget.py report        # the table of every result so far
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "bench" / "out" / "label_free" / "scifact"
OUT = ROOT / "bench" / "out" / "human_budget"
BEIR = ROOT.parent / "shared" / "datasets" / "scifact"
PROJECT = "bench"
ANNOTATOR = "simulated"
MODES = ("label-free", "human-only", "human+machine", "human+curated", "report")


def train_claims(beir: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """SciFact's train claims (id -> text) and their qrels (id -> {corpus id: 1})."""
    from curator.pipeline.label_readers import read_beir

    data = read_beir(beir, "train")
    return data.queries, data.qrels


def claims_by_passage(qrels: dict[str, dict[str, int]]) -> dict[str, str]:
    """Corpus id -> the first train claim (by claim id order) it is relevant to."""
    chosen: dict[str, str] = {}
    for claim in sorted(qrels, key=int):
        for doc, relevance in qrels[claim].items():
            if relevance > 0:
                chosen.setdefault(doc, claim)
    return chosen


def copy_links(source: Path, folder: Path, with_db: bool) -> None:
    """``folder`` with the source's stores linked (embeddings, evaluation cache, LLM cache,
    the GGUF file) and, with ``with_db``, its index linked and a copy of its database
    without training runs."""
    from label_free_variants import STORES, copy_database, link_stores

    link_stores(source, folder, STORES if with_db else ("embeddings", "eval_cache", "cache"))
    if with_db:
        copy_database(source, folder)


def queries_to_fix(database, budget: int, by_passage: dict[str, str]) -> list[tuple[int, str]]:
    """(query id, claim id) of the first ``budget`` queries, in queue order, whose seed
    passage is relevant to a train claim not used yet."""
    from sqlalchemy import select

    from db.models import GeneratedQuery, Passage, QueryStatus

    with database.sessions() as session:
        rows = session.execute(
            select(GeneratedQuery.id, Passage.external_id)
            .join(Passage, Passage.id == GeneratedQuery.seed_passage_id)
            .where(GeneratedQuery.status == QueryStatus.OK.value)
            .order_by(GeneratedQuery.id)
        ).all()
    chosen: dict[str, int] = {}
    for query_id, external in rows:
        claim = by_passage.get(external)
        if claim is not None and claim not in chosen:
            chosen[claim] = query_id
            if len(chosen) == budget:
                break
    return [(query_id, claim) for claim, query_id in chosen.items()]


def annotate(database, budget: int, claims: dict[str, str], qrels, by_passage) -> list[str]:
    """The simulated annotator: fix up to ``budget`` queries in queue order; returns the
    claim ids used. Stores nothing for a query already judged (a resumed run)."""
    from sqlalchemy import select

    from curator.services.annotate import query_view, record_judgment
    from db.models import Judgment

    with database.sessions() as session:
        judged = set(session.scalars(select(Judgment.query_id)))
    chosen = queries_to_fix(database, budget, by_passage)
    for query_id, claim in chosen:
        if query_id in judged:
            continue
        view = query_view(database, query_id)
        relevant = {d for d, r in qrels[claim].items() if r > 0}
        positives = [c.passage_id for c in view.candidates if c.external_id in relevant]
        record_judgment(
            database,
            query_id,
            ANNOTATOR,
            "override",
            positives=positives,
            edited_query=claims[claim],
        )
    return [claim for _query, claim in chosen]


def write_curated_examples(database, path: Path) -> int:
    """The project's curated few-shot examples (as `curator generate` would pick them) as
    an examples JSONL file; returns how many."""
    from curator.services.generate import curated_examples
    from curator.services.projects import require_project

    examples = curated_examples(database, require_project(database, PROJECT))
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps(asdict(example)) + "\n")
    return len(examples)


def regenerate(folder: Path, examples: Path, threads: int | None) -> None:
    """A fresh project in ``folder``: ingest SciFact, generate for the label-free bench's
    passage sample with ``examples``, mine (round-trip consistency, top 10)."""
    from curator.llm.client import LLMSettings
    from curator.services.generate import GenerateOptions, generate_queries
    from curator.services.ingest import ingest_path
    from curator.services.llm import open_llm
    from curator.services.mine import MineOptions, mine_candidates
    from curator.services.projects import ensure_project
    from db import open_database

    database = open_database(f"sqlite:///{folder / 'bench.db'}")
    ensure_project(database, PROJECT)
    ingest_path(database, PROJECT, BEIR / "corpus.jsonl")
    client = open_llm(folder, LLMSettings(), threads=threads)
    options = GenerateOptions(sample=1000, seed=0, resample=2, examples_path=examples)
    print(generate_queries(database, PROJECT, client, options).summary(), flush=True)
    print(mine_candidates(database, PROJECT, folder, MineOptions()).summary(), flush=True)


def train(database, folder: Path, mode: str, loss: str | None) -> int:
    """Train the mode's model with the CLI's defaults for its data (``loss`` None: the
    CLI's default loss for its policy); returns the run id."""
    from curator.cli.training import default_loss
    from curator.services.train import TrainOptions, train_project
    from trainer.finetune import TrainSettings

    policy = "none" if mode == "human-only" else "all"
    settings = TrainSettings(loss=loss or default_loss(policy), save_steps=10_000)
    report = train_project(
        database, PROJECT, folder, TrainOptions(policy=policy, settings=settings)
    )
    print(report.summary(), flush=True)
    return report.run_id


def evaluate(database, folder: Path, run_id: int, used: list[str]) -> dict:
    """nDCG@10 and Recall@100 of each system on train-rest and on test, and the paired
    bootstrap 95% interval of fine-tuned minus base nDCG@10 (the Fine-tune page's)."""
    from curator.services.train import evaluate_project, paired_comparison
    from trainer.evaluate import ir_metrics

    figures = {}
    used_set = set(used)
    for split in ("train", "test"):
        report = evaluate_project(
            database, PROJECT, folder, run_id=run_id, beir=BEIR, split=split, store=False
        )
        qrels = report.data.qrels
        name = split
        if split == "train":
            qrels = {q: docs for q, docs in qrels.items() if q not in used_set}
            name = "train-rest"
        figures[name] = {"queries": len(qrels)}
        for system, run in report.runs.items():
            metrics = ir_metrics(run, qrels)
            figures[name][system] = {k: round(metrics[k], 4) for k in ("ndcg@10", "recall@100")}
        paired = paired_comparison(report.runs["fine-tuned"], report.runs["base"], qrels)
        figures[name]["paired"] = {k: round(v, 4) for k, v in paired.values().items()}
    return figures


def run(args: argparse.Namespace) -> dict:
    from db import open_database

    claims, qrels = train_claims(BEIR)
    by_passage = claims_by_passage(qrels)
    suffix = "-keep-inconsistent" if args.keep_inconsistent else ""
    folder = args.out / f"{args.mode}-{args.budget}{suffix}"
    clock = time.perf_counter()
    if args.mode == "label-free":
        database = open_database(f"sqlite:///{args.source / 'bench.db'}")
        used = [c for _q, c in queries_to_fix(database, args.budget, by_passage)]
        figures = evaluate(database, args.source, args.source_run, used)
        return {
            "mode": args.mode,
            "budget": args.budget,
            "run": args.source_run,
            "used": len(used),
            **figures,
        }
    fresh = not folder.exists()
    if fresh:
        copy_links(args.source, folder, with_db=args.mode != "human+curated")
    if args.mode == "human+curated" and fresh:
        # the examples come from the label-free project after the same annotation
        helper = folder / "annotated"
        copy_links(args.source, helper, with_db=True)
        annotated = open_database(f"sqlite:///{helper / 'bench.db'}")
        annotate(annotated, args.budget, claims, qrels, by_passage)
        count = write_curated_examples(annotated, folder / "examples.jsonl")
        print(f"{count} curated examples written", flush=True)
        regenerate(folder, folder / "examples.jsonl", args.threads)
    database = open_database(f"sqlite:///{folder / 'bench.db'}")
    used = annotate(database, args.budget, claims, qrels, by_passage)
    print(f"{len(used)} queries fixed by the simulated annotator", flush=True)
    if args.keep_inconsistent:
        with sqlite3.connect(folder / "bench.db") as connection:
            connection.execute("DELETE FROM query_flags WHERE kind = 'inconsistent'")
    run_id = args.eval_run or train(database, folder, args.mode, args.loss)
    figures = evaluate(database, folder, run_id, used)
    seconds = round(time.perf_counter() - clock)
    return {
        "mode": args.mode,
        "budget": args.budget,
        "loss": args.loss,
        "run": run_id,
        "keep_inconsistent": args.keep_inconsistent,
        "used": len(used),
        "seconds": seconds,
        **figures,
    }


def report(path: Path) -> None:
    """A Markdown table of every result in ``path`` (one JSON object a line)."""
    systems = "base / fine-tuned / hybrid"
    print(
        f"| mode | fixed | loss | train-rest: {systems} | fine-tuned - base | test: {systems} "
        "| fine-tuned - base |"
    )
    print("|---|---|---|---|---|---|---|")
    for line in path.read_text(encoding="utf-8").splitlines():
        result = json.loads(line)
        mode = result["mode"] + (", all machine queries" if result.get("keep_inconsistent") else "")
        cells = []
        for split in ("train-rest", "test"):
            figures = result[split]
            cells.append(
                " / ".join(f"{figures[s]['ndcg@10']:.4f}" for s in ("base", "fine-tuned", "hybrid"))
            )
            paired = figures.get("paired")
            cells.append(
                f"{paired['ndcg@10 diff']:+.4f} [{paired['ndcg@10 diff low']:+.4f}, "
                f"{paired['ndcg@10 diff high']:+.4f}]"
                if paired
                else ""
            )
        loss = result.get("loss") or "default"
        print(f"| {mode} | {result['used']} | {loss} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--budget", type=int, default=100, help="queries the annotator fixes")
    parser.add_argument("--source", type=Path, default=SOURCE, help="the label-free SciFact folder")
    parser.add_argument("--source-run", type=int, default=2, help="label-free: its training run")
    parser.add_argument("--loss", default=None, help="default: the CLI's for the mode's policy")
    parser.add_argument(
        "--keep-inconsistent",
        action="store_true",
        help="train on the machine queries the guide misses too (no round-trip filter)",
    )
    parser.add_argument(
        "--eval-run", type=int, default=None, help="evaluate this training run, train none"
    )
    parser.add_argument("--threads", type=int, default=None, help="LLM threads")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.mode == "report":
        report(args.out / "results.jsonl")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    if not (args.source / "bench.db").exists():
        sys.exit(f"{args.source / 'bench.db'} not found: run bench/label_free.py first")
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "results.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
