"""The pipeline commands: generate, mine, diagnose, rerank."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curator.cli.common import (
    _open,
    add_command,
    add_llm_options,
    cli_progress,
    options_from_args,
)
from curator.config import Settings


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    """write a task and a query for passages with an LLM (FRet step 1)

    Ask the LLM for a retrieval task and a query per passage. Resumable: passages already
    done for this model and prompt version are skipped, so running the same command again
    continues where it stopped. Replies that do not parse are stored raw and flagged (retry
    them with --retry-failed).
    """
    from curator.llm.client import LLMSettings
    from curator.services.generate import GenerateOptions, GenerationFailed, generate_queries
    from curator.services.llm import open_llm

    llm = options_from_args(
        LLMSettings,
        args,
        "model api_base api_key temperature max_tokens timeout retries concurrency",
    )
    options = options_from_args(
        GenerateOptions,
        args,
        "queries_per_passage seed limit retry_failed best_of max_passage_words resample",
        sample=None if args.all else args.sample,
        examples_path=Path(args.examples) if args.examples else None,
        use_curated=not args.no_curated_examples,
    )
    client = open_llm(settings.data_dir, llm, threads=args.threads, use_cache=not args.no_cache)
    report = _run_llm_stage(
        generate_queries, settings, client, options, GenerationFailed, cli_progress(args)
    )
    if report is None:
        return 1
    usage = report.usage
    print(
        f"usage: {usage['requests']} requests ({usage['cache_hits']} from cache), "
        f"{usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens"
        + (f", ${usage['cost_usd']:.4f}" if usage["cost_usd"] else "")
    )
    return 0


def _negative_filter(args: argparse.Namespace):
    from curator.pipeline.negatives import NegativeFilter

    return options_from_args(
        NegativeFilter,
        args,
        "min_rank max_rank margin max_score",
        relative_margin=None if args.relative_margin <= 0 else args.relative_margin,
        gist=not args.no_gist,
    )


def cmd_mine(args: argparse.Namespace, settings: Settings) -> int:
    """retrieve candidates with the guide model and BM25, propose hard negatives

    For each generated query without candidates: the guide model's top-N passages (FAISS)
    with BM25 scores alongside, the seed passage as provisional positive and hard
    negatives that pass the false-negative guard. Passage embeddings are cached on disk;
    runs resume.
    """
    from curator.retrieval.guide import GuideSettings
    from curator.services.mine import MineOptions, mine_candidates

    guide = options_from_args(
        GuideSettings, args, "backend max_seq_length batch_size", model=args.guide
    )
    options = options_from_args(
        MineOptions,
        args,
        "top_n limit",
        guide=guide,
        index_kind=args.index,
        negative_filter=_negative_filter(args),
        negatives_per_query=args.negatives,
        consistency_k=args.consistency_k or None,
    )
    report = mine_candidates(
        _open(settings), settings.project, settings.data_dir, options, progress=cli_progress(args)
    )
    print(report.summary())
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(f"time: {timings}")
    return 0


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
    """what a false-negative guard setting discards, on the mined queries"""
    from curator.pipeline.negatives import guard_histogram
    from curator.services.mine import mining_diagnostics

    flt = _negative_filter(args)
    result = mining_diagnostics(_open(settings), settings.project, flt)
    print(f"{result.queries} mined queries, {result.candidates} non-positive candidates")
    print(f"kept as admissible negatives: {result.kept}")
    for reason, n in sorted(result.dropped.items()):
        print(f"dropped by {reason:<16} {n}")
    print(f"queries without an admissible negative: {result.queries_without_negative}")
    print(
        f"queries whose positive the guide scores <= 0 (suspect; not in the histogram): "
        f"{result.queries_with_weak_positive}"
    )
    if result.relative_scores:
        cut = flt.relative_margin if flt.relative_margin is not None else 1.0
        print(f"\ncandidate score / positive score (in the rank window; x: >= {cut:.2f}):")
        bars = guard_histogram(result.relative_scores, cut, bins=20)
        peak = max(b.count for b in bars) or 1
        for b in bars:
            bar = ("x" if b.discarded else "#") * round(40 * b.count / peak)
            label = f"{b.start:.2f}-{b.end:.2f}"
            print(f"  {label:<11} {bar:<40} {b.count}")
    return 0


def cmd_rerank(args: argparse.Namespace, settings: Settings) -> int:
    """score candidates with the LLM (QL, RC) and fuse rankings by RRF

    FRet step 2: the LLM scores each mined query's top-k candidates by query likelihood
    (ql) and/or relevance classification (rc); with the guide's ranking they are fused by
    Reciprocal Rank Fusion. The top fused passage is proposed as positive (often not the
    seed) and negatives are taken from fused rank --negative-rank down, through the
    false-negative guard. Runs resume.
    """
    from curator.llm.client import LLMError
    from curator.services.llm import open_llm, rerank_llm_settings
    from curator.services.rerank import RerankOptions, rerank_queries

    options = options_from_args(
        RerankOptions,
        args,
        "k top_k negative_rank negatives limit",
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        negative_filter=_negative_filter(args),
    )
    # the app's Rerank button uses the same settings (one reply-cache key per action)
    llm = rerank_llm_settings(args.model, args.api_base, timeout=args.timeout, api_key=args.api_key)
    client = open_llm(settings.data_dir, llm, threads=args.threads)
    report = _run_llm_stage(rerank_queries, settings, client, options, LLMError, cli_progress(args))
    return 1 if report is None else 0


def _run_llm_stage(stage, settings: Settings, client, options, failure: type[Exception], progress):
    """Run the LLM stage service ``stage(database, project, client, options, progress=)``
    with ``progress`` (:func:`cli_progress`) and print its report's summary; return the
    report, or None after printing ``error: ...`` when the stage raised ``failure``."""
    try:
        report = stage(_open(settings), settings.project, client, options, progress=progress)
    except failure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print(report.summary())
    return report


def _generate_options(generate: argparse.ArgumentParser) -> None:
    """The ``generate`` command's options."""
    add_llm_options(
        generate,
        model_help="litellm model string: local/gemma3-270m (embedded, default), "
        "local/<file>.gguf, openai/..., anthropic/..., ollama/...",
    )
    which = generate.add_mutually_exclusive_group()
    which.add_argument(
        "--sample",
        type=int,
        default=None,
        help="a seeded random sample of N passages (default: all passages)",
    )
    which.add_argument("--all", action="store_true", help="every passage of the project")
    generate.add_argument("--limit", type=int, help="handle at most N passages in this run")
    generate.add_argument("--queries-per-passage", "-n", type=int, default=1)
    generate.add_argument(
        "--best-of",
        type=int,
        default=1,
        help="sample K replies and keep the query the model finds most likely "
        "given the passage (local models)",
    )
    generate.add_argument(
        "--retry-failed", action="store_true", help="ask again for replies that did not parse"
    )
    generate.add_argument(
        "--examples",
        help="few-shot examples JSONL (title, passage, task, query); default: the "
        "project's accepted or edited queries once there are 3, else the file shipped "
        "with curator",
    )
    generate.add_argument(
        "--no-curated-examples",
        action="store_true",
        help="use the shipped examples even when the project has curated ones",
    )
    generate.add_argument(
        "--resample",
        type=int,
        default=2,
        help="extra draws when a query copies its passage or is junk (0: keep the first)",
    )
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--temperature", type=float, default=0.3)
    generate.add_argument("--max-tokens", type=int, default=64)
    generate.add_argument(
        "--max-passage-words",
        type=int,
        default=300,
        help="longer passages are cut (noted on the query)",
    )
    generate.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    generate.add_argument("--retries", type=int, default=3)
    generate.add_argument(
        "--concurrency", type=int, default=4, help="parallel requests to remote providers"
    )
    generate.add_argument(
        "--threads",
        type=int,
        help="CPU threads for the local model (default: the free cores, or CURATOR_THREADS)",
    )
    generate.add_argument("--no-cache", action="store_true", help="do not reuse cached replies")


def _mine_options(mine: argparse.ArgumentParser) -> None:
    """The ``mine`` command's options."""
    mine.add_argument(
        "--guide",
        default="all-MiniLM-L6-v2",
        help="sentence-transformers model: the packaged all-MiniLM-L6-v2 "
        "(default), a local folder or a hub name",
    )
    mine.add_argument(
        "--backend", default="auto", choices=["auto", "torch", "bf16", "onnx", "onnx-int8"]
    )
    mine.add_argument("--max-seq-length", type=int, default=256)
    mine.add_argument("--batch-size", type=int, default=64)
    mine.add_argument("--top-n", type=int, default=30)
    mine.add_argument("--index", default="auto", choices=["auto", "flat", "hnsw", "ivfpq"])
    mine.add_argument(
        "--negatives", type=int, default=1, help="hard negatives to propose per query"
    )
    mine.add_argument("--limit", type=int, help="mine at most N queries in this run")
    mine.add_argument(
        "--consistency-k",
        type=int,
        default=10,
        help="flag a query 'inconsistent' when the guide does not rank its seed passage in "
        "the top K (round-trip consistency; 0: no check)",
    )
    add_filter_options(mine)


def _rerank_options(rerank: argparse.ArgumentParser) -> None:
    """The ``rerank`` command's options."""
    add_llm_options(rerank)
    rerank.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    rerank.add_argument(
        "--methods",
        default="ql,guide",
        help="comma-separated: ql, rc, guide (default from bench/rerank.py)",
    )
    rerank.add_argument("--k", type=float, default=0.0, help="RRF k (Gecko: 0)")
    rerank.add_argument("--top-k", type=int, default=20, help="candidates per query to score")
    rerank.add_argument(
        "--negative-rank",
        type=int,
        default=20,
        help="fused rank to take the hard negative from (Gecko: 20)",
    )
    rerank.add_argument("--negatives", type=int, default=1)
    rerank.add_argument("--limit", type=int, help="rerank at most N queries in this run")
    rerank.add_argument("--threads", type=int)
    add_filter_options(rerank)


def add_filter_options(command) -> None:
    """The false-negative guard's options (mine, rerank, diagnose)."""
    group = command.add_argument_group("false-negative guard")
    group.add_argument("--min-rank", type=int, default=1)
    group.add_argument("--max-rank", type=int, default=30)
    group.add_argument(
        "--relative-margin",
        type=float,
        default=0.95,
        help="keep a negative only if its score <= this x the positive's (0 turns it off)",
    )
    group.add_argument(
        "--margin",
        type=float,
        default=None,
        help="keep a negative only if its score <= positive - margin",
    )
    group.add_argument("--max-score", type=float, default=None)
    group.add_argument(
        "--no-gist",
        action="store_true",
        help="keep negatives the guide scores above the positive",
    )


def add_commands(commands) -> None:
    """Register this module's commands on the ``commands`` subparsers."""
    add_command(commands, "generate", cmd_generate, _generate_options, job="generate")
    add_command(commands, "mine", cmd_mine, _mine_options, job="mine")
    add_command(commands, "rerank", cmd_rerank, _rerank_options, job="rerank")
    add_command(commands, "diagnose", cmd_diagnose, add_filter_options)
