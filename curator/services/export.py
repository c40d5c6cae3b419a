"""Export service: the curated training set of a project into files other tools read.

``export_dataset(database, project, out, ExportOptions(fmt=...))`` loads the training set
with the trainer's rules (``load_training_set``: human judgments over proposals, rejected
queries dropped, unreviewed queries by policy, the split by seed passage stored so the
trainer sees the same one), writes the chosen format with the writers of
``curator.pipeline.export`` into a temporary folder beside ``out`` with a
``manifest.json`` (counts, policy, seed, project, date, model and prompt versions, files),
renames the folder onto ``out`` and records an ``export`` pipeline run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from curator import __version__
from curator.pipeline import export as writers
from curator.pipeline.export import (
    FORMATS,
    JUDGMENT_COLUMNS,
    SPLIT_NAMES,
    ST_FORMATS,
    ExportError,
    TargetExists,
)
from curator.pipeline.training_set import (
    DEFAULT_EVAL_FRACTION,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_SEED,
    POLICIES,
    TrainingSet,
)
from curator.services.annotate import effective_judgments
from curator.services.projects import require_project
from curator.services.runs import recorded_run
from curator.services.training_set import load_training_set
from db import Database
from db.models import (
    Annotator,
    GeneratedQuery,
    Judgment,
    JudgmentPassage,
    Passage,
    PipelineRun,
    RunStatus,
    Stage,
    utcnow,
)

__all__ = [
    "FORMATS",
    "POLICIES",
    "ExportError",
    "ExportOptions",
    "ExportReport",
    "TargetExists",
]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class ExportOptions:
    """What to export: the format, the trainer's policy and split settings, the number of
    negatives for ``st-ntuples`` / ``st-margin-mse``, the teacher scores (``auto``: the
    LLM's QL scores if any, else the guide's) and whether to replace an existing target."""

    fmt: str
    policy: str = "none"
    seed: int = DEFAULT_SEED
    eval_fraction: float = DEFAULT_EVAL_FRACTION
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    negatives: int = 3
    scores: str = "auto"
    force: bool = False

    def check(self) -> None:
        if self.fmt not in FORMATS:
            raise ExportError(f"format must be one of {FORMATS}, got {self.fmt!r}")
        if self.policy not in POLICIES:
            raise ExportError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.fmt in ST_FORMATS:
            writers.st_columns(self.fmt, self.negatives)


@dataclass
class ExportReport:
    """Where the export went, its manifest and the pipeline run that recorded it."""

    out: Path
    manifest: dict[str, Any]
    run_id: int
    seconds: float

    def summary(self) -> str:
        counts = self.manifest["counts"]
        rows = ", ".join(f"{k} {v:,}" for k, v in self.manifest["rows"].items())
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(counts["dropped"].items())) or "none"
        return (
            f"exported {self.manifest['format']} to {self.out} in {self.seconds:.1f} s: "
            f"{counts['examples']:,} queries ({counts['train']:,} train, "
            f"{counts['eval']:,} held out as test); rows: {rows}; left out: {dropped} "
            f"(pipeline run {self.run_id})"
        )


def export_dataset(
    database: Database, project: str, out: Path | str, options: ExportOptions
) -> ExportReport:
    """Write the project's curated set in ``options.fmt`` to the folder ``out`` (atomic:
    a temporary sibling renamed at the end). Raises ``TargetExists`` when ``out`` exists
    and ``options.force`` is not set, before any work."""
    options.check()
    out = Path(out)
    if out.exists() and not options.force:
        raise TargetExists(out)
    project_id = require_project(database, project)
    started = time.perf_counter()
    settings = {"format": options.fmt, "out": str(out)}
    settings.update((k, v) for k, v in asdict(options).items() if k not in ("fmt", "force"))
    with recorded_run(database, project_id, Stage.EXPORT, settings) as run:
        training_set = load_training_set(
            database,
            project,
            options.policy,
            seed=options.seed,
            eval_fraction=options.eval_fraction,
            min_confidence=options.min_confidence,
            with_scores=options.fmt in ("st-margin-mse", "flag"),
        )
        _refuse_empty(training_set, options)
        report: dict[str, Any] = {}
        run.counts = lambda: report
        with writers.atomic_directory(out, force=options.force) as folder:
            rows, extra = _write(database, project_id, folder, training_set, options)
            manifest = _manifest(database, project_id, training_set, options, rows, extra)
            manifest["files"] = writers.file_listing(folder)
            with (folder / MANIFEST).open("w", encoding="utf-8") as stream:
                stream.write(_pretty(manifest))
        report.update(rows)
        report["examples"] = training_set.counts()["examples"]
    return ExportReport(out, manifest, run.run_id, time.perf_counter() - started)


def _refuse_empty(training_set: TrainingSet, options: ExportOptions) -> None:
    """A training format with no example is an error that says what ``--policy`` decides
    (an unjudged project under the default policy ``none`` would write empty files)."""
    if training_set.examples or options.fmt.startswith("judgments-"):
        return
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(training_set.dropped.items())) or "none"
    raise ExportError(
        f"nothing to export under --policy {options.policy} (left out: {dropped}). "
        "--policy decides which unreviewed queries count: 'none' keeps only judged ones, "
        "'high_confidence' adds confident proposals, 'all' every unflagged proposal; "
        "or judge queries in the app first"
    )


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n"


def _write(
    database: Database,
    project_id: int,
    folder: Path,
    training_set: TrainingSet,
    options: ExportOptions,
) -> tuple[dict[str, int], dict[str, Any]]:
    """Write the data files; returns rows per file or split and format-specific facts."""
    fmt = options.fmt
    extra: dict[str, Any] = {}
    if fmt in ST_FORMATS:
        source = writers.choose_score_source(training_set, options.scores)
        if fmt == "st-margin-mse":
            if source is None:
                raise ExportError(
                    "st-margin-mse needs teacher scores: rerank (QL) or mine (guide) first"
                )
            extra["score_source"] = source
        splits: dict[str, list[dict[str, Any]]] = {}
        left_out: dict[str, int] = {}
        for split, name in SPLIT_NAMES.items():
            splits[name], left_out[name] = writers.st_rows(
                training_set,
                fmt,
                split,
                negatives=options.negatives,
                score_source=source,
                seed=options.seed,
            )
        columns = writers.st_columns(fmt, options.negatives)
        extra["columns"] = columns
        extra["pairs_left_out"] = left_out
        return writers.write_st_dataset(folder, splits, columns), extra
    if fmt == "flag":
        source = writers.choose_score_source(training_set, options.scores)
        extra["score_source"] = source
        rows = {
            f"{name}.jsonl": writers.write_jsonl(
                folder / f"{name}.jsonl", writers.flag_rows(training_set, split, source)
            )
            for split, name in SPLIT_NAMES.items()
        }
        extra["without_negatives"] = sum(1 for e in training_set.examples if not e.negatives)
        return rows, extra
    if fmt == "beir":
        return writers.write_beir(folder, training_set, _corpus(database, project_id)), extra
    audit = _judgment_rows(database, project_id, training_set)
    if fmt == "judgments-jsonl":
        return {"judgments.jsonl": writers.write_jsonl(folder / "judgments.jsonl", audit)}, extra
    return {
        "judgments.csv": writers.write_csv(folder / "judgments.csv", audit, JUDGMENT_COLUMNS)
    }, extra


def _corpus(database: Database, project_id: int) -> Iterator[tuple[str, str, str]]:
    """Every passage of the project as (external id, title, text), in id order."""
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.external_id, Passage.title, Passage.text)
            .where(Passage.project_id == project_id)
            .order_by(Passage.id)
            .execution_options(yield_per=5000)
        )
        for row in rows:
            yield row.external_id, row.title, row.text


def _judgment_rows(
    database: Database, project_id: int, training_set: TrainingSet
) -> list[dict[str, Any]]:
    """Every judgment of the project (retractions and retracted ones included), oldest
    first, with its passages by external id, whether it is effective (the annotator's
    standing decision) and whether the export's training set used it."""
    in_project = GeneratedQuery.project_id == project_id
    used = {e.judgment_id: e for e in training_set.examples if e.judgment_id is not None}
    with database.sessions() as session:
        effective = {
            j.id
            for by_annotator in effective_judgments(session, in_project).values()
            for j in by_annotator.values()
        }
        labels: dict[int, dict[str, list[str]]] = {}
        for judgment_id, label, external_id in session.execute(
            select(JudgmentPassage.judgment_id, JudgmentPassage.label, Passage.external_id)
            .join(Passage, Passage.id == JudgmentPassage.passage_id)
            .join(Judgment, Judgment.id == JudgmentPassage.judgment_id)
            .join(GeneratedQuery, GeneratedQuery.id == Judgment.query_id)
            .where(in_project)
            .order_by(JudgmentPassage.id)
        ):
            labels.setdefault(judgment_id, {}).setdefault(label, []).append(external_id)
        rows = []
        for r in session.execute(
            select(
                Judgment.id,
                Judgment.query_id,
                GeneratedQuery.task,
                GeneratedQuery.query,
                Judgment.edited_query,
                Judgment.decision,
                Judgment.reject_reason,
                Annotator.username,
                Judgment.created_at,
                Judgment.provenance,
                Judgment.retracts_judgment_id,
                Judgment.note,
                GeneratedQuery.model,
                GeneratedQuery.prompt_version,
            )
            .join(Annotator, Annotator.id == Judgment.annotator_id)
            .join(GeneratedQuery, GeneratedQuery.id == Judgment.query_id)
            .where(in_project)
            .order_by(Judgment.id)
        ):
            marked = labels.get(r.id, {})
            example = used.get(r.id)
            rows.append(
                {
                    "judgment_id": r.id,
                    "query_id": r.query_id,
                    "task": r.task,
                    "query": r.query,
                    "edited_query": r.edited_query,
                    "decision": r.decision,
                    "reject_reason": r.reject_reason,
                    "annotator": r.username,
                    "created_at": r.created_at.isoformat() if r.created_at else None,
                    "provenance": r.provenance,
                    "positives": marked.get("positive", []),
                    "negatives": marked.get("negative", []),
                    "false_negatives": marked.get("false_negative", []),
                    "retracts_judgment_id": r.retracts_judgment_id,
                    "effective": r.id in effective,
                    "used_in_export": example is not None,
                    "split": SPLIT_NAMES[example.split] if example else None,
                    "query_model": r.model,
                    "query_prompt_version": r.prompt_version,
                    "note": r.note,
                }
            )
    return rows


def _manifest(
    database: Database,
    project_id: int,
    training_set: TrainingSet,
    options: ExportOptions,
    rows: dict[str, int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """What was exported, how it was chosen and where it came from."""
    query_models = Counter((e.model, e.prompt_version) for e in training_set.examples)
    with database.sessions() as session:
        stage_models = session.execute(
            select(PipelineRun.stage, PipelineRun.model, PipelineRun.prompt_version)
            .where(
                PipelineRun.project_id == project_id,
                PipelineRun.stage.in_([Stage.MINE.value, Stage.RERANK.value]),
                PipelineRun.status == RunStatus.DONE.value,
                PipelineRun.model.is_not(None),
            )
            .distinct()
            .order_by(PipelineRun.stage, PipelineRun.model)
        ).all()
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": options.fmt,
        "project": training_set.project,
        "created_at": utcnow().isoformat(timespec="seconds"),
        "curator_version": __version__,
        "policy": {
            "policy": options.policy,
            "seed": options.seed,
            "eval_fraction": options.eval_fraction,
            "min_confidence": options.min_confidence,
            "rules": "latest effective judgment overrides the proposal; rejected queries "
            "dropped; edited texts used; false negatives never negatives; unreviewed "
            "queries by policy (none / high_confidence / all); split by seed passage",
        },
        "splits": {"train": "train", "test": "eval (held out by seed passage)"},
        "negatives": options.negatives if options.fmt in ("st-ntuples", "st-margin-mse") else None,
        "counts": training_set.counts(),
        "rows": rows,
        **extra,
        "snapshot": training_set.snapshot,
        "models": {
            "queries": [
                {"model": model, "prompt_version": prompt, "queries": n}
                for (model, prompt), n in sorted(query_models.items())
            ],
            "guide": sorted({m for stage, m, _ in stage_models if stage == Stage.MINE.value}),
            "rerank": [
                {"model": m, "prompt_version": p}
                for stage, m, p in stage_models
                if stage == Stage.RERANK.value
            ],
        },
    }


def export_folder(data_dir: str | Path, project: str, fmt: str) -> Path:
    """``<data dir>/exports/<project>-<format>-<UTC time>``, the project name reduced to
    safe characters: where the app's exports are kept."""
    import re

    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", project)[:60] or "project"
    return Path(data_dir) / "exports" / f"{safe}-{fmt}-{stamp}"


def export_zipped(
    database: Database, project: str, data_dir: str | Path, options: ExportOptions
) -> tuple[ExportReport, Path, Path]:
    """Export ``project`` into a new ``export_folder`` and zip that folder into a temporary
    file (for a browser download); returns (report, folder, zip path)."""
    import tempfile
    import zipfile

    from curator.pipeline.export import atomic_write

    folder = export_folder(data_dir, project, options.fmt)
    report = export_dataset(database, project, folder, options)
    archive = Path(tempfile.mkdtemp(prefix="curator-export-")) / f"{folder.name}.zip"
    with (
        atomic_write(archive, "wb", encoding=None) as stream,
        zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as zipped,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zipped.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return report, folder, archive
