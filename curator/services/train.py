"""Training and evaluation service: curated set -> fine-tuned model -> metrics in the DB.

``train_project`` reads the training set (``curator.services.training_set``), records a
``training_runs`` row (settings, data snapshot, split seed), fine-tunes
(``trainer.finetune``) into ``<data>/models/<project>/run-<id>``, then stores the loss
curve, the output path and a ``models`` row. A run that stopped (crash, Ctrl-C, kill -9)
is resumed by the next call with the same settings and data: same folder, last checkpoint.
While a run trains, its process holds an exclusive lock on ``run-<id>/train.lock``
(:mod:`curator.locks`); a run whose lock is held is not resumable, so two calls never
train into one folder: a second identical call while the first trains is refused
(:class:`TrainingBusy`), a call with other settings or data gets a run of its own.

``evaluate_project`` compares BM25, the base model, a fine-tuned model and the hybrid
RRF(BM25, fine-tuned) on the held-out curated queries (the ``eval`` side of the stored
split, against all the project's passages) or on a BEIR folder, and stores every metric
in ``evaluation_results``. ``compare_rankings`` gives the top 10 of each system for one
query, for the side-by-side view.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from curator.llm.client import one_line
from curator.locks import FileLock
from curator.pipeline.training_set import (
    TrainingSet,
    choose_score_source,
    margin_mse_rows,
    teacher_scale,
    training_rows,
)
from curator.services.mine import project_slug
from curator.services.projects import require_project
from curator.services.training_set import load_generated_held_out, load_training_set
from db import Database
from db.models import EmbeddingModel, EvaluationResult, Passage, RunStatus, TrainingRun, utcnow
from trainer.evaluate import METRICS as METRICS  # re-exported for the app
from trainer.evaluate import RetrievalData, Run
from trainer.finetune import StepCallback, TrainSettings

log = logging.getLogger(__name__)

BASE_MODEL = "all-MiniLM-L6-v2"
GENERATED_HELD_OUT = "held-out generated (unreviewed)"
SYSTEMS = ("BM25", "base", "fine-tuned", "hybrid")
RUN_LOCK = "train.lock"


class TrainingBusy(RuntimeError):
    """An identical training run is being trained by another process or thread."""


@dataclass
class TrainOptions:
    base_model: str = BASE_MODEL
    policy: str = "none"
    split_seed: int = 13
    eval_fraction: float = 0.2
    min_confidence: float = 0.5
    guide_model: str | None = None
    settings: TrainSettings = field(default_factory=TrainSettings)
    processes: int = 1  # above 1: data-parallel through `accelerate launch` (trainer.distributed)


@dataclass
class TrainReport:
    run_id: int
    model_path: Path
    train_rows: int
    eval_queries: int
    loss_curve: list[dict[str, float]]
    seconds: float
    resumed_from: str | None = None

    def summary(self) -> str:
        first = self.loss_curve[0]["loss"] if self.loss_curve else float("nan")
        last = self.loss_curve[-1]["loss"] if self.loss_curve else float("nan")
        resumed = f", resumed from {self.resumed_from}" if self.resumed_from else ""
        return (
            f"training run {self.run_id}: {self.train_rows} rows, loss {first:.4f} -> "
            f"{last:.4f} in {self.seconds:.0f} s{resumed}; model at {self.model_path}"
        )


def _snapshot(training_set: TrainingSet) -> dict[str, Any]:
    train_ids = sorted(e.query_id for e in training_set.train)
    digest = hashlib.sha256(
        repr(
            [
                (e.query_id, e.query, e.positives, e.negatives, e.judgment_id)
                for e in training_set.examples
            ]
        ).encode()
    ).hexdigest()
    return {
        **training_set.snapshot,
        "policy": training_set.policy,
        "train_query_ids": train_ids,
        "eval_queries": len(training_set.eval),
        "digest": digest,
    }


def train_project(
    database: Database,
    project: str,
    data_dir: Path,
    options: TrainOptions | None = None,
    on_step: StepCallback | None = None,
) -> TrainReport:
    """Fine-tune on the project's curated set; resume an unfinished identical run whose
    process is gone. Raises TrainingBusy while an identical run is training."""
    options = options or TrainOptions()
    require_project(database, project)
    settings = options.settings
    training_set = load_training_set(
        database,
        project,
        options.policy,
        seed=options.split_seed,
        eval_fraction=options.eval_fraction,
        min_confidence=options.min_confidence,
        with_scores=settings.loss == "margin_mse",
    )
    if settings.loss == "margin_mse":
        source = choose_score_source(training_set)
        scale = teacher_scale(training_set, source)
        rows, _ = margin_mse_rows(training_set, "train", settings.negatives, source, scale)
    else:
        rows = training_rows(training_set, "train", settings.negatives, seed=settings.seed)
    if len(rows) < 2:
        counts = training_set.counts()
        raise ValueError(
            f"only {len(rows)} training rows under policy {options.policy!r} "
            f"({counts['train']} train / {counts['eval']} held-out queries; left out: "
            f"{counts['dropped']}): judge more queries or include unreviewed ones"
        )
    snapshot = _snapshot(training_set)
    run_settings = {
        **settings.as_dict(),
        "policy": options.policy,
        "eval_fraction": options.eval_fraction,
        "min_confidence": options.min_confidence,
        "guide_model": options.guide_model,
    }
    if options.processes > 1:  # a run in N processes resumes only as N processes
        run_settings["processes"] = options.processes
    run_id, lock = claim_run(database, project, data_dir, options, run_settings, snapshot)
    try:
        return _train_run(
            database,
            project,
            run_id,
            rows=rows,
            eval_queries=len(training_set.eval),
            options=options,
            on_step=on_step,
            output=run_folder(data_dir, project, run_id),
        )
    finally:
        lock.release()  # after the run's final status is stored


def _train_run(
    database: Database,
    project: str,
    run_id: int,
    *,
    rows: list[dict[str, Any]],
    eval_queries: int,
    options: TrainOptions,
    on_step: StepCallback | None,
    output: Path,
) -> TrainReport:
    """Fine-tune run ``run_id`` (its lock held) into ``output`` and store the outcome."""
    project_id = require_project(database, project)
    with database.sessions() as session, session.begin():
        run = session.get(TrainingRun, run_id)
        run.status = RunStatus.RUNNING.value
        run.output_path = str(output)
        run.error = None
    seen: list[dict[str, float]] = []  # this attempt's curve, kept if it stops

    def step_done(step: int, total: int, loss: float | None) -> None:
        if loss is not None:
            seen.append({"step": step, "loss": loss})
        if on_step:
            on_step(step, total, loss)

    try:
        result = _fine_tune(options, rows, output, step_done)
    except BaseException as error:
        status = RunStatus.FAILED if isinstance(error, Exception) else RunStatus.INTERRUPTED
        with database.sessions() as session, session.begin():
            run = session.get(TrainingRun, run_id)
            run.status = status.value
            run.error = str(error) or repr(error)
            run.finished_at = utcnow()
            run.loss_curve = _merge_curves(run.loss_curve, seen)
        raise
    with database.sessions() as session, session.begin():
        run = session.get(TrainingRun, run_id)
        run.loss_curve = _merge_curves(run.loss_curve, result.loss_curve)
        run.status = RunStatus.DONE.value
        run.finished_at = utcnow()
        run.settings = {**run.settings, "bf16": result.bf16, "steps": result.steps}
        curve = run.loss_curve
        session.add(
            EmbeddingModel(
                project_id=project_id,
                name=f"{project_slug(project)}-run-{run_id}",
                kind="fine-tuned",
                path=str(result.model_path),
                base_model=options.base_model,
                training_run_id=run_id,
            )
        )
    return TrainReport(
        run_id=run_id,
        model_path=result.model_path,
        train_rows=len(rows),
        eval_queries=eval_queries,
        loss_curve=curve,
        seconds=result.seconds,
        resumed_from=result.resumed_from,
    )


def _fine_tune(options: TrainOptions, rows, output: Path, on_step: StepCallback):
    """``trainer.finetune.fine_tune`` in this process, or in ``options.processes``
    processes through ``accelerate launch``."""
    guide = options.guide_model or BASE_MODEL
    if options.processes > 1:
        from trainer.distributed import distributed_fine_tune

        return distributed_fine_tune(
            options.base_model,
            rows,
            output,
            options.settings,
            processes=options.processes,
            guide_model=guide,
            on_step=on_step,
        )
    from trainer.finetune import fine_tune

    return fine_tune(
        options.base_model, rows, output, options.settings, guide_model=guide, on_step=on_step
    )


def _merge_curves(earlier, later) -> list[dict[str, float]]:
    """One loss curve from an earlier attempt and a resumed one (the later wins a step)."""
    by_step = {p["step"]: p for p in (earlier or [])}
    by_step.update({p["step"]: p for p in later})
    return [by_step[step] for step in sorted(by_step)]


def run_folder(data_dir: Path, project: str, run_id: int) -> Path:
    """The folder training run ``run_id`` of ``project`` writes into."""
    return Path(data_dir) / "models" / project_slug(project) / f"run-{run_id}"


def claim_run(
    database: Database,
    project: str,
    data_dir: Path,
    options: TrainOptions,
    run_settings: dict[str, Any],
    snapshot: dict[str, Any],
) -> tuple[int, FileLock]:
    """(run id, its held lock): an unfinished run with the same settings and data whose
    owner is gone (its lock can be taken), else a new run.

    Choosing and creating runs is serialised by a lock beside the run folders, so two
    concurrent calls never pick one run. Raises :class:`TrainingBusy` when an identical
    run is training now (its lock is held). The caller releases the lock when done.
    """
    project_id = require_project(database, project)
    allocation = FileLock(
        Path(data_dir) / "models" / project_slug(project) / "train-allocate.lock",
        purpose=f"choosing a training run of {project!r}",
    )
    with allocation:
        with database.sessions() as session:
            unfinished = session.scalars(
                select(TrainingRun)
                .where(
                    TrainingRun.project_id == project_id,
                    TrainingRun.status != RunStatus.DONE.value,
                    TrainingRun.base_model == options.base_model,
                )
                .order_by(TrainingRun.id.desc())
            ).all()
        busy = []
        for run in unfinished:
            same_settings = {k: v for k, v in run.settings.items() if k in run_settings}
            if same_settings != run_settings or run.data_snapshot != snapshot:
                continue
            lock = _run_lock(data_dir, project, run.id)
            if lock.acquire(wait=False):
                return run.id, lock
            busy.append(f"run {run.id} ({lock.holder()})")
        if busy:
            raise TrainingBusy(
                f"a training run with the same settings and data is training now: "
                f"{'; '.join(busy)}. Wait for it to finish (or stop it: the next call "
                "resumes it), or change a setting to train another model"
            )
        with database.sessions() as session, session.begin():
            run = TrainingRun(
                project_id=project_id,
                base_model=options.base_model,
                loss=options.settings.loss,
                settings=run_settings,
                data_snapshot=snapshot,
                split_seed=options.split_seed,
            )
            session.add(run)
            session.flush()
            run_id = run.id
        lock = _run_lock(data_dir, project, run_id)
        if not lock.acquire(wait=False):  # a stray process in a reused folder
            raise TrainingBusy(f"the folder of new run {run_id} is locked: {lock.holder()}")
        return run_id, lock


def _run_lock(data_dir: Path, project: str, run_id: int) -> FileLock:
    return FileLock(
        run_folder(data_dir, project, run_id) / RUN_LOCK, purpose=f"training run {run_id}"
    )


# ---------------------------------------------------------------- evaluation


def held_out_data(
    database: Database,
    project: str,
    split_seed: int = 13,
    eval_fraction: float = 0.2,
    generated_fallback: bool = True,
) -> RetrievalData:
    """The held-out queries against all the project's passages; positives and false
    negatives count as relevant.

    Reviewed queries (human or imported judgments) when the held-out side has any. Else,
    with ``generated_fallback``, the held-out *generated* queries with their seed passage
    as the relevant one (``load_generated_held_out``: copies, junk and duplicates left out,
    queries the guide does not retrieve kept, so the base model does not choose the test):
    a label-free project still gets an evaluation, named ``held-out generated
    (unreviewed)`` so nobody takes it for a human-checked one.
    """
    training_set = load_training_set(
        database, project, "none", seed=split_seed, eval_fraction=eval_fraction
    )
    held_out, kind = training_set.eval, "held-out"
    if not held_out and generated_fallback:
        held_out = load_generated_held_out(
            database, project, seed=split_seed, eval_fraction=eval_fraction
        )
        kind = GENERATED_HELD_OUT
    project_id = require_project(database, project)
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.id, Passage.title, Passage.text)
            .where(Passage.project_id == project_id)
            .order_by(Passage.id)
        ).all()
    queries, qrels = {}, {}
    for example in held_out:
        queries[str(example.query_id)] = example.query
        qrels[str(example.query_id)] = {
            str(p): 1 for p in (*example.positives, *example.false_negatives)
        }
    return RetrievalData(
        [str(r.id) for r in rows],
        [f"{r.title}\n{r.text}" if r.title else r.text for r in rows],
        queries,
        qrels,
        name=f"{project}/{kind}(seed={split_seed})",
    )


def external_ids(database: Database, project: str, doc_ids) -> dict[str, str]:
    """The project's external passage ids for ``doc_ids`` (the stringified database ids
    ``held_out_data`` ranks by)."""
    project_id = require_project(database, project)
    wanted = {int(d) for d in doc_ids}
    if not wanted:
        return {}
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.id, Passage.external_id).where(
                Passage.project_id == project_id, Passage.id.in_(wanted)
            )
        ).all()
    return {str(i): external for i, external in rows}


_ENCODERS: dict[str, Any] = {}


def encoder(model: str, max_seq_length: int = 256):
    """A loaded encoder (``GuideModel``: normalised vectors, bf16 where it helps), cached."""
    from curator.retrieval.guide import GuideModel, GuideSettings

    key = f"{model}|{max_seq_length}"
    if key not in _ENCODERS:
        _ENCODERS[key] = GuideModel(GuideSettings(model=model, max_seq_length=max_seq_length))
    return _ENCODERS[key]


def corpus_vectors(model, data: RetrievalData, cache_dir: Path | None) -> np.ndarray:
    """The corpus encoded by ``model``, cached on disk by model and corpus fingerprint."""
    digest = hashlib.sha256()
    for doc_id, text in zip(data.doc_ids, data.doc_texts, strict=True):
        digest.update(doc_id.encode() + b"\0" + text.encode() + b"\0")
    path = None
    if cache_dir is not None:
        label = hashlib.sha256(f"{model.settings.model}|{model.key}".encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"{label}-{digest.hexdigest()[:16]}.npy"
        if path.exists():
            return np.load(path)
    vectors = model.encode(data.doc_texts)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, vectors)
        temporary.replace(path)
    return vectors


PAIRED_SYSTEM = "fine-tuned vs base"  # evaluation_results rows of the paired comparison
PAIRED_METRICS = ("wins", "ties", "losses", "ndcg@10 diff", "ndcg@10 diff low", "ndcg@10 diff high")


@dataclass
class PairedComparison:
    """Fine-tuned against base on the same queries, by each query's nDCG@10 (pytrec_eval):
    how many queries it wins, ties and loses, and the mean difference with a paired
    bootstrap 95% interval (queries resampled with replacement)."""

    wins: int
    ties: int
    losses: int
    mean_diff: float
    low: float
    high: float

    @property
    def queries(self) -> int:
        return self.wins + self.ties + self.losses

    def summary(self) -> str:
        """One line, e.g. "fine-tuned vs base on 40 queries: 12 wins, 25 ties, 3 losses;
        nDCG@10 +0.041 (95% interval +0.012 to +0.071)"."""
        verdict = (
            "better"
            if self.low > 0
            else "worse"
            if self.high < 0
            else "no difference shown (the interval includes 0)"
        )
        return (
            f"fine-tuned vs base on {self.queries} queries: {self.wins} wins, {self.ties} ties, "
            f"{self.losses} losses; nDCG@10 {self.mean_diff:+.3f} (paired bootstrap 95% "
            f"interval {self.low:+.3f} to {self.high:+.3f}): {verdict}"
        )

    def values(self) -> dict[str, float]:
        """The comparison as named numbers (stored in ``evaluation_results``)."""
        numbers = (self.wins, self.ties, self.losses, self.mean_diff, self.low, self.high)
        return dict(zip(PAIRED_METRICS, map(float, numbers), strict=True))

    @classmethod
    def from_values(cls, values: dict[str, float]) -> PairedComparison | None:
        """The inverse of ``values``; None when a number is missing."""
        if any(m not in values for m in PAIRED_METRICS):
            return None
        wins, ties, losses, diff, low, high = (values[m] for m in PAIRED_METRICS)
        return cls(int(wins), int(ties), int(losses), diff, low, high)


def paired_comparison(
    tuned: Run,
    base: Run,
    qrels: dict[str, dict[str, int]],
    *,
    resamples: int = 2000,
    seed: int = 13,
    tie: float = 1e-9,
) -> PairedComparison:
    """Per-query win/tie/loss of ``tuned`` against ``base`` by nDCG@10 (a difference within
    ``tie`` is a tie) and a paired bootstrap 95% interval of the mean nDCG@10 difference
    (``resamples`` resamples of the queries, ``seed`` fixed so a rerun gives the same)."""
    from trainer.evaluate import per_query_ndcg

    tuned_ndcg, base_ndcg = per_query_ndcg(tuned, qrels), per_query_ndcg(base, qrels)
    queries = sorted(tuned_ndcg)
    if not queries:
        raise ValueError("no query has a relevant document: nothing to compare")
    diffs = np.array([tuned_ndcg[q] - base_ndcg[q] for q in queries])
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedComparison(
        wins=int((diffs > tie).sum()),
        ties=int((np.abs(diffs) <= tie).sum()),
        losses=int((diffs < -tie).sum()),
        mean_diff=float(diffs.mean()),
        low=float(low),
        high=float(high),
    )


@dataclass
class EvaluationReport:
    dataset: str
    split: str
    queries: int
    metrics: dict[str, dict[str, float]]
    runs: dict[str, Run] = field(default_factory=dict)
    data: RetrievalData | None = None
    tuned_model: str | None = None
    training_run_id: int | None = None
    paired: PairedComparison | None = None  # fine-tuned vs base, when both ran


def fine_tuned_model(database: Database, project: str, run_id: int | None = None):
    """(training run id, model path) of run ``run_id`` or the project's latest finished one."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        statement = select(EmbeddingModel.training_run_id, EmbeddingModel.path).where(
            EmbeddingModel.project_id == project_id, EmbeddingModel.kind == "fine-tuned"
        )
        if run_id is not None:
            statement = statement.where(EmbeddingModel.training_run_id == run_id)
        found = session.execute(statement.order_by(EmbeddingModel.id.desc()).limit(1)).first()
    if found is None:
        raise LookupError(
            f"no fine-tuned model for run {run_id}" if run_id else "no fine-tuned model yet"
        )
    return found.training_run_id, found.path


def evaluate_project(
    database: Database,
    project: str,
    data_dir: Path,
    *,
    run_id: int | None = None,
    beir: Path | None = None,
    split: str = "test",
    base_model: str = BASE_MODEL,
    split_seed: int = 13,
    eval_fraction: float = 0.2,
    max_seq_length: int = 256,
    store: bool = True,
) -> EvaluationReport:
    """Metrics of BM25, the base model and (when one exists) the fine-tuned model and the
    hybrid on the held-out queries, or on the BEIR folder ``beir`` (its ``split``)."""
    from trainer.evaluate import bm25_run, dense_run, hybrid_run, ir_metrics, load_beir

    project_id = require_project(database, project)
    if beir is not None:
        data = load_beir(beir, split)
        split_name = split
    else:
        data = held_out_data(database, project, split_seed, eval_fraction)
        split_name = "held-out-generated" if GENERATED_HELD_OUT in data.name else "held-out"
        if not data.queries:
            raise ValueError(
                "no held-out queries: judge more queries (about "
                f"{eval_fraction:.0%} of judged seed passages are held out)"
            )
    try:
        trained_run, tuned_path = fine_tuned_model(database, project, run_id)
    except LookupError:
        if run_id is not None:
            raise
        trained_run, tuned_path = None, None
    cache = Path(data_dir) / "eval_cache"
    runs: dict[str, Run] = {"BM25": bm25_run(data)}
    base = encoder(base_model, max_seq_length)
    runs["base"], _ = dense_run(base.encode, data, doc_vectors=corpus_vectors(base, data, cache))
    if tuned_path:
        tuned = encoder(tuned_path, max_seq_length)
        runs["fine-tuned"], _ = dense_run(
            tuned.encode, data, doc_vectors=corpus_vectors(tuned, data, cache)
        )
        runs["hybrid"] = hybrid_run(runs["BM25"], runs["fine-tuned"])
    metrics = {system: ir_metrics(run, data.qrels) for system, run in runs.items()}
    paired = None
    if "fine-tuned" in runs:
        paired = paired_comparison(runs["fine-tuned"], runs["base"], data.qrels)
    if store:
        stored = dict(metrics)
        if paired is not None:
            stored[PAIRED_SYSTEM] = paired.values()
        _store_metrics(database, project_id, trained_run, data.name, split_name, stored)
    return EvaluationReport(
        data.name,
        split_name,
        len(data.queries),
        metrics,
        runs,
        data,
        tuned_path,
        trained_run,
        paired,
    )


def _store_metrics(
    database: Database,
    project_id: int,
    run_id: int | None,
    dataset: str,
    split: str,
    metrics: dict[str, dict[str, float]],
) -> None:
    """Append one ``evaluation_results`` row per system and metric."""
    with database.sessions() as session, session.begin():
        session.add_all(
            EvaluationResult(
                project_id=project_id,
                training_run_id=run_id,
                system=system,
                dataset=dataset,
                split=split,
                metric=metric,
                value=value,
            )
            for system, values in metrics.items()
            for metric, value in values.items()
        )


@dataclass
class LatestRun:
    """The project's latest training run as stored, with its held-out metrics."""

    run_id: int
    status: str
    loss: str
    train_queries: int | None
    eval_queries: int | None  # held-out queries of the run's split
    loss_curve: list[dict[str, float]]
    output_path: str | None
    error: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # held-out, newest
    paired: PairedComparison | None = None  # fine-tuned vs base on the held-out queries

    def summary(self) -> str:
        """One line: run id, status, rows, loss from first to last step."""
        curve = self.loss_curve or []
        losses = (
            f", loss {curve[0]['loss']:.4f} -> {curve[-1]['loss']:.4f}" if len(curve) > 0 else ""
        )
        rows = f": {self.train_queries} training queries" if self.train_queries else ""
        text = f"training run {self.run_id} ({self.status}, {self.loss}){rows}{losses}"
        if self.output_path:
            text += f"; model at {self.output_path}"
        if self.error:
            text += f"; error: {self.error}"
        return text


def latest_training_run(database: Database, project: str) -> LatestRun | None:
    """The project's newest training run (any status) and the newest held-out metrics
    stored for it; None when the project has none."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        run = session.scalars(
            select(TrainingRun)
            .where(TrainingRun.project_id == project_id)
            .order_by(TrainingRun.id.desc())
            .limit(1)
        ).first()
        if run is None:
            return None
        rows = session.execute(
            select(EvaluationResult.system, EvaluationResult.metric, EvaluationResult.value)
            .where(
                EvaluationResult.training_run_id == run.id,
                EvaluationResult.split == "held-out",
            )
            .order_by(EvaluationResult.id)
        ).all()
        snapshot = run.data_snapshot or {}
        latest = LatestRun(
            run_id=run.id,
            status=run.status,
            loss=run.loss,
            train_queries=len(snapshot.get("train_query_ids") or []) or None,
            eval_queries=snapshot.get("eval_queries"),
            loss_curve=list(run.loss_curve or []),
            output_path=run.output_path,
            error=run.error,
        )
    for system, metric, value in rows:  # a later evaluation overwrites an earlier one
        latest.metrics.setdefault(system, {})[metric] = value
    latest.paired = PairedComparison.from_values(latest.metrics.pop(PAIRED_SYSTEM, {}))
    return latest


@dataclass
class RankedPassage:
    rank: int
    doc_id: str
    text: str
    score: float
    relevant: bool
    base_rank: int | None = None


def compare_rankings(
    report: EvaluationReport,
    query: str,
    relevant: set[str] | None = None,
    n: int = 10,
    base_model: str = BASE_MODEL,
    max_seq_length: int = 256,
    cache_dir: Path | None = None,
) -> dict[str, list[RankedPassage]]:
    """Top ``n`` of BM25, base and fine-tuned for a typed or held-out query over the
    evaluated corpus. ``relevant`` marks known relevant doc ids; ``base_rank`` lets a
    view show each passage's rank change against the base model."""
    from trainer.evaluate import bm25_run, dense_run, top_documents

    data = report.data
    if data is None:
        raise ValueError("the evaluation report carries no corpus")
    single = RetrievalData(data.doc_ids, data.doc_texts, {"q": query}, {"q": {"": 1}})
    runs: dict[str, Run] = {"BM25": bm25_run(single)}
    base = encoder(base_model, max_seq_length)
    runs["base"], _ = dense_run(
        base.encode, single, doc_vectors=corpus_vectors(base, single, cache_dir)
    )
    if report.tuned_model:
        model = encoder(report.tuned_model, max_seq_length)
        runs["fine-tuned"], _ = dense_run(
            model.encode, single, doc_vectors=corpus_vectors(model, single, cache_dir)
        )
    text_of = dict(zip(data.doc_ids, data.doc_texts, strict=True))
    base_full = [d for d, _ in top_documents(runs["base"], "q", 100)]
    base_rank = {d: i for i, d in enumerate(base_full, start=1)}
    relevant = relevant or set()
    return {
        system: [
            RankedPassage(
                rank=i,
                doc_id=doc,
                text=text_of[doc],
                score=score,
                relevant=doc in relevant,
                base_rank=base_rank.get(doc),
            )
            for i, (doc, score) in enumerate(top_documents(run, "q", n), start=1)
        ]
        for system, run in runs.items()
    }


def training_events(
    database: Database,
    project: str,
    data_dir: Path,
    options: TrainOptions,
    poll_seconds: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """Fine-tune (``train_project``) then evaluate on the held-out queries in a worker
    thread this service owns, yielding what a page shows as it goes:
    ``{"status", "curve", "step", "total"}`` per training step, ``{"status", "curve"}``
    after training, then ``{"status", "curve", "report"}`` after the evaluation, or
    ``{"status", "curve"}`` with the reason it was not evaluated (the model is kept), or
    ``{"error", "curve"}``."""
    import queue
    import threading
    import traceback

    events: queue.Queue = queue.Queue()

    def on_step(step: int, total: int, latest: float | None) -> None:
        events.put(("step", step, total, latest))

    def work() -> None:
        try:
            report = train_project(database, project, data_dir, options, on_step)
            events.put(("trained", report))
            try:
                evaluation = evaluate_project(
                    database,
                    project,
                    data_dir,
                    run_id=report.run_id,
                    split_seed=options.split_seed,
                    eval_fraction=options.eval_fraction,
                )
            except ValueError as error:  # e.g. no held-out query yet: the model is kept
                events.put(("unevaluated", str(error)))
                return
            events.put(("evaluated", evaluation))
        except Exception as error:  # one line for the user; the traceback goes to the log
            traceback.print_exc()
            first = one_line(str(error)) or one_line(repr(error))
            events.put(("error", f"{type(error).__name__}: {first}"))

    threading.Thread(target=work, daemon=True, name=f"train-{project}").start()
    yield from _relay(events, poll_seconds)


def _relay(events, poll_seconds: float) -> Iterator[dict[str, Any]]:
    """The worker's events as the dicts ``training_events`` yields, until the last one."""
    import queue

    curve: list[dict[str, float]] = []
    trained = None
    while True:
        try:
            event = events.get(timeout=poll_seconds)
        except queue.Empty:
            continue
        kind = event[0]
        if kind == "step":
            _, step, total, latest = event
            if latest is not None and (not curve or curve[-1]["step"] != step):
                curve.append({"step": step, "loss": latest})
            loss = f", loss {latest:.4f}" if latest is not None else ""
            yield {
                "status": f"training: step {step} of {total}{loss}",
                "curve": list(curve),
                "step": step,
                "total": total,
            }
        elif kind == "trained":
            trained = event[1]
            status = trained.summary() + "\n\nevaluating on the held-out queries..."
            yield {"status": status, "curve": trained.loss_curve}
        elif kind == "unevaluated":
            status = f"{trained.summary()}\n\nnot evaluated: {event[1]}"
            yield {"status": status, "curve": trained.loss_curve}
            return
        elif kind == "evaluated":
            yield {"status": trained.summary(), "curve": trained.loss_curve, "report": event[1]}
            return
        else:
            yield {"error": event[1], "curve": list(curve)}
            return


TRAINING_FIELDS = (
    "policy",
    "loss",
    "epochs",
    "batch_size",
    "learning_rate",
    "max_seq_length",
    "negatives",
)


def training_params(
    policy: str,
    loss: str,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_seq_length: int,
    negatives: int,
) -> dict[str, Any]:
    """The page's fine-tune fields (``TRAINING_FIELDS``) as a train job's parameters,
    numbers as numbers: the one value the page, the job and the worker pass on."""
    return {
        "policy": policy,
        "loss": loss,
        "epochs": float(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "max_seq_length": int(max_seq_length),
        "negatives": int(negatives),
    }


def training_options(params: dict[str, Any], eval_fraction: float = 0.2) -> TrainOptions:
    """A train job's parameters (``training_params``; other keys are ignored, a missing
    one raises KeyError) as the training service's options."""
    fields = training_params(*(params[name] for name in TRAINING_FIELDS))
    policy = fields.pop("policy")
    return TrainOptions(
        policy=policy, eval_fraction=eval_fraction, settings=TrainSettings(**fields)
    )
