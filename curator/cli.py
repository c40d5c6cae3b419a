"""The ``curator`` command line.

Heavy libraries (torch, gradio, litellm) are imported inside the commands that need
them, so ``curator --help`` and ``curator status`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from curator import __version__
from curator.config import DEMO_PROJECT, Settings, resolve_settings


def _open(settings: Settings):
    from db import open_database

    return open_database(settings.database_url)


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.projects import ensure_project
    from curator.services.status import _redact

    database = _open(settings)
    ensure_project(database, settings.project, description=args.description)
    print(f"database: {_redact(settings.database_url)} (schema {database.current_revision()})")
    print(f"project:  {settings.project}")
    if args.allow_model is not None:
        from curator.services.access import set_allowed_models

        models = set_allowed_models(database, settings.project, args.allow_model)
        print(f"models the app may use: {', '.join(models)}")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from curator.pipeline.chunking import ChunkingConfig
    from curator.pipeline.readers import FieldMap, IngestError
    from curator.progress import TqdmProgress
    from curator.services.ingest import IngestAborted, ingest_path

    chunking = ChunkingConfig(args.chunk_words, args.chunk_overlap) if args.chunk else None
    fields = FieldMap(id=args.id_field, title=args.title_field or None, text=args.text_field)
    database = _open(settings)
    failed = False
    for path in args.paths:
        try:
            report = ingest_path(
                database,
                settings.project,
                Path(path),
                fmt=args.format,
                fields=fields,
                chunking=chunking,
                on_error=args.on_error,
                encoding=args.encoding,
                progress=TqdmProgress(),
            )
        except IngestAborted as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        except IngestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        print(report.summary())
        for error in report.errors[: args.show_errors]:
            print(f"  skipped: {error}", file=sys.stderr)
        if len(report.errors) > args.show_errors:
            print(
                f"  ... and {len(report.errors) - args.show_errors} more "
                f"(all listed in pipeline run {report.run_id})",
                file=sys.stderr,
            )
    return 1 if failed else 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from curator.llm.client import LLMSettings
    from curator.progress import TqdmProgress
    from curator.services.generate import GenerateOptions, GenerationFailed, generate_queries
    from curator.services.llm import open_llm

    llm = LLMSettings(
        model=args.model,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        retries=args.retries,
        concurrency=args.concurrency,
        api_base=args.api_base,
        api_key=args.api_key,
    )
    options = GenerateOptions(
        queries_per_passage=args.queries_per_passage,
        sample=None if args.all else args.sample,
        seed=args.seed,
        limit=args.limit,
        retry_failed=args.retry_failed,
        best_of=args.best_of,
        examples_path=Path(args.examples) if args.examples else None,
        max_passage_words=args.max_passage_words,
        resample=args.resample,
        use_curated=not args.no_curated_examples,
    )
    client = open_llm(settings.data_dir, llm, threads=args.threads, use_cache=not args.no_cache)
    try:
        report = generate_queries(
            _open(settings), settings.project, client, options, progress=TqdmProgress()
        )
    except GenerationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    usage = report.usage
    print(
        f"usage: {usage['requests']} requests ({usage['cache_hits']} from cache), "
        f"{usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens"
        + (f", ${usage['cost_usd']:.4f}" if usage["cost_usd"] else "")
    )
    return 0


def _negative_filter(args: argparse.Namespace):
    from curator.pipeline.negatives import NegativeFilter

    return NegativeFilter(
        min_rank=args.min_rank,
        max_rank=args.max_rank,
        margin=args.margin,
        relative_margin=None if args.relative_margin <= 0 else args.relative_margin,
        max_score=args.max_score,
        gist=not args.no_gist,
    )


def cmd_mine(args: argparse.Namespace, settings: Settings) -> int:
    from curator.progress import TqdmProgress
    from curator.retrieval.guide import GuideSettings
    from curator.services.mine import MineOptions, mine_candidates

    options = MineOptions(
        guide=GuideSettings(
            model=args.guide,
            backend=args.backend,
            max_seq_length=args.max_seq_length,
            batch_size=args.batch_size,
        ),
        top_n=args.top_n,
        index_kind=args.index,
        negative_filter=_negative_filter(args),
        negatives_per_query=args.negatives,
        limit=args.limit,
        consistency_k=args.consistency_k or None,
    )
    report = mine_candidates(
        _open(settings), settings.project, settings.data_dir, options, progress=TqdmProgress()
    )
    print(report.summary())
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(f"time: {timings}")
    return 0


def cmd_diagnose(args: argparse.Namespace, settings: Settings) -> int:
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


def default_loss(policy: str) -> str:
    """``gist`` when the training set takes unreviewed machine labels (its guide model masks
    in-batch negatives that look like positives: chosen on SciFact's train queries in
    bench/label_free.py), ``mnrl`` for judged queries only."""
    return "mnrl" if policy == "none" else "gist"


def _train_settings(args: argparse.Namespace):
    from trainer.finetune import TrainSettings

    return TrainSettings(
        loss=args.loss or default_loss(args.policy),
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_seq_length=args.max_seq_length,
        negatives=args.negatives,
        matryoshka=args.matryoshka,
        bf16=args.bf16,
        max_steps=args.max_steps,
        save_steps=args.save_steps,
    )


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from curator.services.train import TrainOptions, train_project

    options = TrainOptions(
        base_model=args.base_model,
        policy=args.policy,
        split_seed=args.seed,
        eval_fraction=args.eval_fraction,
        settings=_train_settings(args),
        processes=args.processes if args.launcher == "accelerate" else 1,
    )
    database = _open(settings)
    bar = tqdm(desc="fine-tune", unit="step")

    def on_step(step: int, total: int, loss: float | None) -> None:
        bar.total = total
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}" if loss is not None else "-")
        bar.refresh()

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
            "checked, scored against their proposed positive. Judge queries for a real figure."
        )
    print(f"{'system':<12}" + "".join(f"{m:>12}" for m in METRICS))
    for system, values in report.metrics.items():
        print(f"{system:<12}" + "".join(f"{values[m]:>12.4f}" for m in METRICS))
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    return _print_evaluation(_open(settings), settings, run_id=args.run, args=args, beir=args.beir)


def cmd_rerank(args: argparse.Namespace, settings: Settings) -> int:
    from curator.llm.client import LLMError
    from curator.progress import TqdmProgress
    from curator.services.llm import open_llm, rerank_llm_settings
    from curator.services.rerank import RerankOptions, rerank_queries

    options = RerankOptions(
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        k=args.k,
        top_k=args.top_k,
        negative_rank=args.negative_rank,
        negatives=args.negatives,
        negative_filter=_negative_filter(args),
        limit=args.limit,
    )
    # the app's Rerank button uses the same settings (one reply-cache key per action)
    llm = rerank_llm_settings(args.model, args.api_base, timeout=args.timeout, api_key=args.api_key)
    client = open_llm(settings.data_dir, llm, threads=args.threads)
    try:
        report = rerank_queries(
            _open(settings), settings.project, client, options, progress=TqdmProgress()
        )
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.status import project_status

    status = project_status(_open(settings), settings.project)
    print(f"project:  {status.project}")
    print(f"database: {status.database}")
    print()
    for stage, line in status.stage_lines():
        print(f"  {stage:<9} {line}")
    if status.runs:
        print("\nlatest runs:")
        for run in status.runs:
            counts = ", ".join(f"{k}={v}" for k, v in run.counts.items())
            print(f"  #{run.id:<4} {run.started_at}  {run.stage:<8} {run.status:<11} {counts}")
            if run.error and run.status != "done":
                print(f"        {run.error.splitlines()[0][:160]}")
    return 0


def cmd_jobs(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.jobs import cancel, list_jobs

    database = _open(settings)
    if args.cancel is not None:
        job = cancel(database, args.cancel)
        print(f"job #{job.id} {job.kind}: {job.status}")
        return 0
    jobs = list_jobs(database, limit=args.limit)
    if not jobs:
        print("no jobs yet")
    for job in jobs:
        print(job.line())
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.auth import has_accounts
    from curator.ui.network import check_bind_address

    project = settings.project
    database = _open(settings)
    if args.login and not has_accounts(database):
        raise ValueError(
            "--login needs annotator accounts: add one with `curator annotator add NAME`"
        )
    if not args.login:
        check_bind_address(args.host)
    if args.demo:
        from curator.services.demo import ensure_demo_project

        project = DEMO_PROJECT if settings.project == "default" else settings.project
        report = ensure_demo_project(database, project)
        if report is not None:
            print(report.summary())
    from curator.ui.app import launch

    launch(
        database,
        project,
        data_dir=settings.data_dir,
        host=args.host,
        port=args.port,
        login=args.login,
    )
    return 0


def cmd_annotator_add(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from curator.services.auth import set_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    set_password(_open(settings), args.name, password, role=args.role)
    role = f" as {args.role}" if args.role else ""
    print(f"annotator {args.name!r} can log in{role} (curator serve --login)")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.export import ExportOptions, export_dataset

    options = ExportOptions(
        fmt=args.format,
        policy=args.policy,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        min_confidence=args.min_confidence,
        negatives=args.negatives,
        scores=args.scores,
        force=args.force,
    )
    report = export_dataset(_open(settings), settings.project, Path(args.out), options)
    print(report.summary())
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.import_labels import ImportOptions, import_labels

    path = Path(args.path)
    fmt = args.format
    if fmt == "auto":
        fmt = "beir" if (path / "queries.jsonl").is_file() else "flag"
    options = ImportOptions(
        fmt=fmt,
        task=args.task,
        annotator=args.annotator,
        seed=args.seed,
        add_passages=not args.no_add_passages,
    )
    report = import_labels(_open(settings), settings.project, path, options)
    print(report.summary())
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from curator.services.doctor import run_checks

    skip = [name.strip() for value in args.skip for name in value.split(",") if name.strip()]
    failed = []
    for check in run_checks(settings.database_url, settings.data_dir, skip=skip):
        print(check.line(), flush=True)
        if not check.ok:
            failed.append(check.name)
    if failed:
        print(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_api_key_option(command) -> None:
    command.add_argument(
        "--api-key",
        default=None,
        help="API key of a remote provider (default: CURATOR_API_KEY, else the provider's "
        "own variable such as OPENAI_API_KEY; a local --api-base server needs none)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curator",
        description="Curate training data for text-embedding models: ingest a corpus, generate "
        "queries, mine and rerank candidates, annotate, train, export.",
    )
    parser.add_argument("--version", action="version", version=f"curator {__version__}")
    parser.add_argument("--data-dir", help="data folder (env CURATOR_DATA_DIR, default ./data)")
    parser.add_argument(
        "--db",
        help="SQLAlchemy database URL (env CURATOR_DATABASE_URL, "
        "default sqlite:///<data dir>/curator.db)",
    )
    parser.add_argument(
        "--project", help="curation project (env CURATOR_PROJECT, default 'default')"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="create or upgrade the database and a project")
    init.add_argument("--description", default="", help="what the project is about")
    init.add_argument(
        "--allow-model",
        action="append",
        metavar="MODEL",
        help="a litellm model string the app may use besides the embedded local model "
        "(repeat for several; replaces the project's list; --allow-model '' clears it)",
    )
    init.set_defaults(func=cmd_init)

    ingest = commands.add_parser(
        "ingest",
        help="add passages from corpus files",
        description="Add passages from BEIR corpus.jsonl, JSONL, CSV, TSV, Parquet files or a "
        "folder of .txt/.md files. Re-ingesting a file adds nothing. With --on-error abort "
        "(default) a bad record rolls back the whole file; with skip, bad records are "
        "reported and the rest is stored.",
    )
    ingest.add_argument("paths", nargs="+", help="files or folders")
    ingest.add_argument(
        "--format",
        default="auto",
        choices=["auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder"],
    )
    ingest.add_argument("--id-field", default=None, help="id field (default: _id, else id)")
    ingest.add_argument("--title-field", default="title", help="title field ('' for none)")
    ingest.add_argument("--text-field", default="text", help="text field")
    ingest.add_argument("--encoding", default="utf-8", help="text encoding of the files")
    ingest.add_argument(
        "--chunk",
        action="store_true",
        help="split documents into passages of about --chunk-words words",
    )
    ingest.add_argument("--chunk-words", type=int, default=100)
    ingest.add_argument("--chunk-overlap", type=int, default=20)
    ingest.add_argument("--on-error", choices=["abort", "skip"], default="abort")
    ingest.add_argument(
        "--show-errors", type=int, default=20, help="how many skipped records to list"
    )
    ingest.set_defaults(func=cmd_ingest)
    add_job_options(ingest, "ingest")

    generate = commands.add_parser(
        "generate",
        help="write a task and a query for passages with an LLM (FRet step 1)",
        description="Ask the LLM for a retrieval task and a query per passage. Resumable: "
        "passages already done for this model and prompt version are skipped, so running the "
        "same command again continues where it stopped. Replies that do not parse are stored "
        "raw and flagged (retry them with --retry-failed).",
    )
    generate.add_argument(
        "--model",
        default="local/gemma3-270m",
        help="litellm model string: local/gemma3-270m (embedded, default), "
        "local/<file>.gguf, openai/..., anthropic/..., ollama/...",
    )
    generate.add_argument("--api-base", help="base URL of an OpenAI-compatible server (vLLM...)")
    add_api_key_option(generate)
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
    generate.set_defaults(func=cmd_generate)
    add_job_options(generate, "generate")

    def add_filter_options(command) -> None:
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

    mine = commands.add_parser(
        "mine",
        help="retrieve candidates with the guide model and BM25, propose hard negatives",
        description="For each generated query without candidates: the guide model's top-N "
        "passages (FAISS) with BM25 scores alongside, the seed passage as provisional positive "
        "and hard negatives that pass the false-negative guard. Passage embeddings are cached "
        "on disk; runs resume.",
    )
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
    mine.set_defaults(func=cmd_mine)
    add_job_options(mine, "mine")

    rerank = commands.add_parser(
        "rerank",
        help="score candidates with the LLM (QL, RC) and fuse rankings by RRF",
        description="FRet step 2: the LLM scores each mined query's top-k candidates by query "
        "likelihood (ql) and/or relevance classification (rc); with the guide's ranking they "
        "are fused by Reciprocal Rank Fusion. The top fused passage is proposed as positive "
        "(often not the seed) and negatives are taken from fused rank --negative-rank down, "
        "through the false-negative guard. Runs resume.",
    )
    rerank.add_argument("--model", default="local/gemma3-270m")
    rerank.add_argument("--api-base", help="base URL of an OpenAI-compatible server (vLLM...)")
    add_api_key_option(rerank)
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
    rerank.set_defaults(func=cmd_rerank)
    add_job_options(rerank, "rerank")

    diagnostics = commands.add_parser(
        "diagnose", help="what a false-negative guard setting discards, on the mined queries"
    )
    add_filter_options(diagnostics)
    diagnostics.set_defaults(func=cmd_diagnose)

    def add_split_options(command) -> None:
        command.add_argument(
            "--base-model", default="all-MiniLM-L6-v2", help="model to start from / compare"
        )
        command.add_argument("--seed", type=int, default=13, help="held-out split seed")
        command.add_argument(
            "--eval-fraction", type=float, default=0.2, help="share of seed passages held out"
        )

    train = commands.add_parser(
        "train",
        help="fine-tune the base model on the curated set, then evaluate it",
        description="Fine-tune a bi-encoder on the judged queries (plus unreviewed ones by "
        "--policy), held-out split apart; an interrupted run with the same settings resumes "
        "from its last checkpoint. Then BM25, base, fine-tuned and hybrid are compared on "
        "the held-out queries (skip with --no-eval).",
    )
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
    train.set_defaults(func=cmd_train)
    add_job_options(train, "train")

    evaluate = commands.add_parser(
        "eval",
        help="nDCG@10, MRR@10, Recall@10/100, MAP@100 of BM25, base, fine-tuned, hybrid",
        description="Evaluate on the held-out curated queries (default) or on a BEIR folder "
        "(--beir PATH, its qrels/<split>.tsv). Results are stored in the database.",
    )
    add_split_options(evaluate)
    evaluate.add_argument("--run", type=int, help="training run (default: the latest)")
    evaluate.add_argument("--beir", type=Path, help="a BEIR folder to evaluate on instead")
    evaluate.add_argument("--split", default="test", help="qrels split of --beir")
    evaluate.set_defaults(func=cmd_eval)
    add_job_options(evaluate, "eval")

    from curator.pipeline.export import FORMATS as EXPORT_FORMATS
    from curator.pipeline.training_set import (
        DEFAULT_EVAL_FRACTION,
        DEFAULT_MIN_CONFIDENCE,
        DEFAULT_SEED,
        SCORE_SOURCES,
    )

    export = commands.add_parser(
        "export",
        help="write the curated set for sentence-transformers, FlagEmbedding, BEIR or audits",
        description="Export the curated training set with the trainer's policy (human "
        "judgments over proposals, rejected queries dropped, unreviewed queries by --policy) "
        "into the folder --out, the held-out split (test) apart from train, with a "
        "manifest.json. The folder is written under a temporary name and renamed at the end; "
        "an existing one is replaced only with --force. Formats: see docs/export.md.",
    )
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument("--out", required=True, help="folder to write (must not exist)")
    export.add_argument(
        "--policy",
        default="none",
        choices=["none", "high_confidence", "all"],
        help="unreviewed queries: none (only judged ones, default), high_confidence, all",
    )
    export.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    export.add_argument("--eval-fraction", type=float, default=DEFAULT_EVAL_FRACTION)
    export.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE)
    export.add_argument(
        "--negatives", type=int, default=3, help="negatives per row (st-ntuples, st-margin-mse)"
    )
    export.add_argument(
        "--scores",
        default="auto",
        choices=SCORE_SOURCES,
        help="teacher scores for st-margin-mse and flag: auto (LLM QL if any, else guide)",
    )
    export.add_argument("--force", action="store_true", help="replace an existing --out")
    export.add_argument("--project", default=argparse.SUPPRESS, help="project to export")
    export.set_defaults(func=cmd_export)
    add_job_options(export, "export")

    imports = commands.add_parser(
        "import",
        help="add an existing dataset's labels (BEIR qrels, FlagEmbedding JSONL) as judgments",
        description="Store the labelled queries of a BEIR folder (queries.jsonl, qrels/*.tsv; "
        "its corpus ingested first) or FlagEmbedding JSONL as judgments with provenance "
        "'imported', to curate on top of them. One transaction: a bad line stores nothing.",
    )
    imports.add_argument("path", help="a BEIR folder, or a FlagEmbedding .jsonl file or folder")
    imports.add_argument("--format", default="auto", choices=["auto", "beir", "flag"])
    imports.add_argument(
        "--task",
        default="Given a query, retrieve passages that answer it.",
        help="task description for queries whose file gives none",
    )
    imports.add_argument("--annotator", help="store the judgments under this name")
    imports.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed to store")
    imports.add_argument(
        "--no-add-passages",
        action="store_true",
        help="FlagEmbedding texts must match passages of the project (else they are added)",
    )
    imports.add_argument("--project", default=argparse.SUPPRESS, help="project to import into")
    imports.set_defaults(func=cmd_import)

    jobs = commands.add_parser(
        "jobs",
        help="recent jobs of the CLI and the app: running, waiting, done, failed",
        description="The jobs table: one heavy job (generate, mine, rerank, train, eval, "
        "export, ingest) runs at a time per data folder; the others wait in turn. A job whose "
        "process died is shown failed.",
    )
    jobs.add_argument("--limit", type=int, default=20, help="show the N newest jobs")
    jobs.add_argument("--cancel", type=int, metavar="ID", help="cancel a waiting or running job")
    jobs.set_defaults(func=cmd_jobs)

    status = commands.add_parser("status", help="counts per table and pipeline stage")
    status.set_defaults(func=cmd_status)

    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument(
        "--demo",
        action="store_true",
        help="serve the embedded demo project (Python language reference), "
        "ingesting it on first use",
    )
    serve.add_argument(
        "--login",
        action="store_true",
        help="require annotators to log in (accounts: curator annotator add); "
        "needed to listen on a non-loopback address",
    )
    serve.set_defaults(func=cmd_serve)

    doctor = commands.add_parser(
        "doctor",
        help="check the database, the models, threads, CPU flags and memory",
        description="One line per check, ok or FAIL; exits non-zero when a check fails. The "
        "embedded LLM runs on a prompt of >= 600 tokens and the guide model encodes a "
        "sentence, each in a child process, so a crash (e.g. an illegal instruction from a "
        "llama.cpp build that does not suit this CPU) is reported with its fix.",
    )
    doctor.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="CHECK",
        help="leave out checks (comma-separated or repeated): "
        "cpu, threads, memory, database, guide, llm",
    )
    doctor.set_defaults(func=cmd_doctor)

    annotator = commands.add_parser("annotator", help="manage annotator accounts")
    annotator_commands = annotator.add_subparsers(dest="annotator_command", required=True)
    add = annotator_commands.add_parser("add", help="create an account or set its password")
    add.add_argument("name")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    add.add_argument(
        "--role",
        choices=["admin", "annotator"],
        help="admins run the pipeline, training, export and ingest in the app; annotators "
        "annotate (new accounts: annotator; omitted: an existing account keeps its role)",
    )
    add.set_defaults(func=cmd_annotator_add)
    return parser


def add_job_options(command: argparse.ArgumentParser, job: str) -> None:
    """Mark ``command`` as a heavy job: one at a time per data folder, ``--no-wait``."""
    command.add_argument(
        "--no-wait",
        action="store_true",
        help="refuse to start while another job (generate, mine, rerank, train, eval, export, "
        "ingest; from the CLI or the app) runs or waits on the same data folder, instead of "
        "waiting for it",
    )
    command.set_defaults(heavy_job=job)


def _run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen command; a heavy job first takes the data folder's job lock."""
    job = getattr(args, "heavy_job", None)
    if job is None:
        return args.func(args, settings)
    from curator.services.jobs import cli_job

    def waiting(holder: str) -> None:
        print(
            f"waiting for another job in {settings.data_dir} ({holder}); Ctrl-C to stop, "
            "--no-wait to refuse instead",
            file=sys.stderr,
            flush=True,
        )

    with cli_job(
        _open(settings),
        settings.project,
        job,
        _job_params(args),
        settings.data_dir,
        wait=not args.no_wait,
        on_wait=waiting,
    ) as handle:
        handle.exit_code = args.func(args, settings)
        return handle.exit_code


def _job_params(args: argparse.Namespace) -> dict:
    """The command's options as JSON values, for its row in the jobs table."""
    params = {}
    for name, value in vars(args).items():
        if name in ("func", "heavy_job", "verbose", "db", "data_dir") or callable(value):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        params[name] = value
    return params


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    existing = set(logging.getLogger().handlers)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in set(logging.getLogger().handlers) - existing:
        # some libraries (bm25s) set their own loggers to DEBUG: filter at our handler
        handler.setLevel(level)
    settings = resolve_settings(args.data_dir, args.db, args.project)
    try:
        return _run_command(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except (LookupError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
