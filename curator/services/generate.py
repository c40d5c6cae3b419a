"""Generation service: choose passages, ask the LLM, store every reply.

Resumable by construction: each reply is committed as soon as it arrives, and a run
only asks for (passage, sample index) pairs that have no stored row for this model and
prompt version. Kill a run, start it again: it goes on with the next passage; the unique
constraint on (passage, model, prompt version, sample index) makes duplicates impossible.

A reply that does not parse is stored with ``status='parse_failed'``, its raw text and the
reason; ``retry_failed=True`` asks again for those (the earlier raw replies are kept in
the row's note).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from curator.llm.client import LLMClient, LLMError
from curator.pipeline.generate import (
    PROMPT_VERSION,
    STOP,
    GenerationExample,
    ParsedGeneration,
    ParseError,
    PassageInput,
    build_generation_messages,
    load_examples,
    parse_generation,
)
from curator.pipeline.likelihood import build_ql_prefix, mean_log_likelihood, ql_continuation
from curator.progress import NullProgress, Progress
from curator.services.projects import require_project
from curator.services.runs import recorded_run
from db import Database
from db.models import GeneratedQuery, Passage, QueryStatus, Stage
from db.queries import insert_or_ignore

log = logging.getLogger(__name__)
CHECKPOINT_SECONDS = 10.0


@dataclass(frozen=True)
class GenerateOptions:
    """Which passages and how.

    ``sample``: a seeded random sample of that many passages of the project (the same
    sample on every run with the same seed, so a resumed run finishes the same set);
    None means every passage. ``limit`` caps how many passages this run handles.
    ``best_of`` > 1 samples that many replies and keeps the query the model itself finds
    most likely given the passage (mean per-token query likelihood; local models only).
    """

    queries_per_passage: int = 1
    sample: int | None = None
    seed: int = 0
    limit: int | None = None
    retry_failed: bool = False
    best_of: int = 1
    examples_path: Path | None = None
    max_passage_words: int = 300

    def __post_init__(self) -> None:
        if self.queries_per_passage < 1:
            raise ValueError("queries per passage must be at least 1")
        if self.best_of < 1:
            raise ValueError("best-of must be at least 1")
        if self.sample is not None and self.sample < 1:
            raise ValueError("sample size must be at least 1")


@dataclass
class GenerateReport:
    run_id: int
    model: str
    prompt_version: str
    planned: int = 0
    already_done: int = 0
    ok: int = 0
    parse_failed: int = 0
    errors: int = 0
    truncated: int = 0
    seconds: float = 0.0
    usage: dict = field(default_factory=dict)
    error: str | None = None

    def add(self, status: QueryStatus, *, truncated: bool = False) -> None:
        """Count one stored reply."""
        if status is QueryStatus.OK:
            self.ok += 1
        elif status is QueryStatus.ERROR:
            self.errors += 1
        else:
            self.parse_failed += 1
        self.truncated += truncated

    def counts(self) -> dict[str, int]:
        return {
            "planned": self.planned,
            "already_done": self.already_done,
            "ok": self.ok,
            "parse_failed": self.parse_failed,
            "errors": self.errors,
            "truncated": self.truncated,
        }

    def summary(self) -> str:
        done = self.ok + self.parse_failed + self.errors
        rate = done / self.seconds * 60 if self.seconds else 0.0
        return (
            f"generated {self.ok} queries, {self.parse_failed} replies did not parse "
            f"(stored raw, retry with --retry-failed); {self.errors} passages too long for the "
            f"model; {self.already_done} already done; "
            f"{rate:.0f} passages/min with {self.model} ({self.prompt_version})"
        )


class GenerationFailed(RuntimeError):
    def __init__(self, report: GenerateReport, error: LLMError) -> None:
        self.report = report
        super().__init__(
            f"{error}\n  -> {report.ok + report.parse_failed} replies were stored before the "
            "error; run the same command again to continue"
        )


@dataclass(frozen=True)
class _Task:
    passage_id: int
    sample_index: int
    title: str
    text: str
    existing_id: int | None = None
    previous_raw: str | None = None


def generate_queries(
    database: Database,
    project: str,
    client: LLMClient,
    options: GenerateOptions = GenerateOptions(),
    progress: Progress | None = None,
) -> GenerateReport:
    """Generate queries for the chosen passages of ``project``; see the module docstring."""
    progress = progress or NullProgress()
    examples = load_examples(options.examples_path)
    model = client.settings.model
    project_id = require_project(database, project)
    settings = {
        "llm": client.settings.public(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
    }
    started = time.monotonic()
    report = None
    try:
        with recorded_run(
            database,
            project_id,
            Stage.GENERATE,
            settings,
            model=model,
            prompt_version=PROMPT_VERSION,
        ) as run:
            report = GenerateReport(run_id=run.run_id, model=model, prompt_version=PROMPT_VERSION)
            run.counts, run.usage = report.counts, client.usage.as_dict
            tasks = _plan(database, project_id, model, options, report)
            progress.start(len(tasks), "passages", f"generate ({model})")
            last_checkpoint = time.monotonic()

            def work(task: _Task):
                return _generate_one(client, task, examples, options)

            for task, outcome in client.map(work, tasks):
                if _store(database, project_id, run.run_id, model, task, outcome):
                    report.add(outcome.status, truncated=outcome.truncated)
                else:  # a concurrent run on the same data stored this one first
                    report.already_done += 1
                progress.advance(1)
                if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                    last_checkpoint = time.monotonic()
                    run.checkpoint()
    except LLMError as error:
        if report is None:
            raise
        report.seconds = time.monotonic() - started
        report.usage = client.usage.as_dict()
        report.error = str(error)
        raise GenerationFailed(report, error) from error
    finally:
        progress.finish()
    report.seconds = time.monotonic() - started
    report.usage = client.usage.as_dict()
    return report


def _plan(
    database: Database,
    project_id: int,
    model: str,
    options: GenerateOptions,
    report: GenerateReport,
) -> list[_Task]:
    """The (passage, sample index) pairs still to do, in passage-id order."""
    with database.sessions() as session:
        ids = list(
            session.scalars(
                select(Passage.id).where(Passage.project_id == project_id).order_by(Passage.id)
            )
        )
        if options.sample is not None and options.sample < len(ids):
            ids = sorted(random.Random(options.seed).sample(ids, options.sample))
        existing = {
            (row.seed_passage_id, row.sample_index): row
            for row in session.execute(
                select(
                    GeneratedQuery.id,
                    GeneratedQuery.seed_passage_id,
                    GeneratedQuery.sample_index,
                    GeneratedQuery.status,
                    GeneratedQuery.raw_output,
                ).where(
                    GeneratedQuery.project_id == project_id,
                    GeneratedQuery.model == model,
                    GeneratedQuery.prompt_version == PROMPT_VERSION,
                )
            )
        }
        wanted: list[tuple[int, int, object]] = []
        for passage_id in ids:
            for index in range(options.queries_per_passage):
                row = existing.get((passage_id, index))
                if row is None:
                    wanted.append((passage_id, index, None))
                elif options.retry_failed and row.status != QueryStatus.OK.value:
                    wanted.append((passage_id, index, row))
                else:
                    report.already_done += 1
        if options.limit is not None:
            wanted = wanted[: options.limit]
        texts = {}
        chosen = sorted({passage_id for passage_id, _, _ in wanted})
        for start in range(0, len(chosen), 500):
            for row in session.execute(
                select(Passage.id, Passage.title, Passage.text).where(
                    Passage.id.in_(chosen[start : start + 500])
                )
            ):
                texts[row.id] = (row.title, row.text)
    report.planned = len(wanted)
    return [
        _Task(
            passage_id,
            index,
            *texts[passage_id],
            existing_id=row.id if row is not None else None,
            previous_raw=row.raw_output if row is not None else None,
        )
        for passage_id, index, row in wanted
    ]


def sample_seed(passage_id: int, sample_index: int, draw: int, seed: int) -> int:
    """A stable 31-bit sampling seed per (passage, query index, draw, run seed)."""
    digest = hashlib.sha256(f"{passage_id}:{sample_index}:{draw}:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class _Outcome:
    """What one (passage, query index) gave: the parsed reply or why not, and the raw text."""

    status: QueryStatus
    parsed: ParsedGeneration | None
    raw: str
    error: str | None
    note: str | None
    truncated: bool = False


def _generate_one(
    client: LLMClient, task: _Task, examples: list[GenerationExample], options: GenerateOptions
) -> _Outcome:
    """Ask for one passage and query index (``best_of`` draws) and parse the reply."""
    prompt = build_generation_messages(
        PassageInput(task.title, task.text), examples, options.max_passage_words
    )
    notes: dict[str, object] = {}
    truncated = prompt.truncated_from is not None
    if truncated:
        notes["truncated"] = (
            f"passage cut from {prompt.truncated_from} to {options.max_passage_words} words"
        )
    if task.previous_raw is not None:
        notes["previous_raw"] = task.previous_raw
    draws = []
    for draw in range(options.best_of):
        try:
            reply = client.complete(
                prompt.messages,
                seed=sample_seed(task.passage_id, task.sample_index, draw, options.seed),
                stop=STOP,
            )
        except LLMError as exc:
            if exc.kind != "context_window":
                raise
            # this passage does not fit the model: flag it and go on with the others
            notes["context"] = str(exc)
            message = f"too long for the model's context: {exc.provider_message}"
            return _Outcome(QueryStatus.ERROR, None, "", message, _dump(notes), truncated)
        try:
            draws.append((reply.text, parse_generation(reply.text, examples), None))
        except ParseError as exc:
            draws.append((reply.text, None, str(exc)))
    parsed_draws = [d for d in draws if d[1] is not None]
    if not parsed_draws:
        raw, _, error = draws[0]
        return _Outcome(QueryStatus.PARSE_FAILED, None, raw, error, _dump(notes), truncated)
    if options.best_of == 1:
        raw, parsed, _ = parsed_draws[0]
    else:
        raw, parsed = _choose_by_likelihood(client, task, parsed_draws, notes)
    return _Outcome(QueryStatus.OK, parsed, raw, None, _dump(notes), truncated)


def _choose_by_likelihood(client: LLMClient, task: _Task, draws, notes: dict) -> tuple:
    """The draw whose query has the highest mean per-token log-likelihood given the passage."""
    from curator.llm.likelihood import log_likelihood

    prefix = build_ql_prefix(task.title, task.text)
    scored = []
    for raw, parsed, _ in draws:
        total, tokens = log_likelihood(client.settings, prefix, ql_continuation(parsed.query))
        scored.append((mean_log_likelihood(total, tokens), raw, parsed))
    notes["best_of"] = [{"query": p.query, "mean_logprob": round(s, 4)} for s, _, p in scored]
    _, raw, parsed = max(scored, key=lambda item: item[0])
    return raw, parsed


def _dump(notes: dict) -> str | None:
    return json.dumps(notes, ensure_ascii=False) if notes else None


def _store(
    database: Database, project_id: int, run_id: int, model: str, task: _Task, outcome: _Outcome
) -> bool:
    """Store one outcome; False when a concurrent run had stored this sample already."""
    parsed = outcome.parsed
    values = {
        "task": parsed.task if parsed else "",
        "query": parsed.query if parsed else "",
        "raw_output": outcome.raw,
        "status": outcome.status.value,
        "error": outcome.error,
        "note": outcome.note,
        "run_id": run_id,
    }
    with database.sessions() as session, session.begin():
        if task.existing_id is not None:
            row = session.get(GeneratedQuery, task.existing_id)
            for key, value in values.items():
                setattr(row, key, value)
        else:
            key = {
                "project_id": project_id,
                "seed_passage_id": task.passage_id,
                "sample_index": task.sample_index,
                "model": model,
                "prompt_version": PROMPT_VERSION,
            }
            return insert_or_ignore(session, GeneratedQuery, [{**key, **values}]) == 1
    return True
