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
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import delete, select

from curator.llm.client import LLMClient, LLMError
from curator.pipeline.generate import (
    PROMPT_VERSION,
    STOP,
    GenerationExample,
    ParsedGeneration,
    ParseError,
    PassageInput,
    build_generation_messages,
    build_query_messages,
    choose_examples,
    examples_version,
    load_examples,
    parse_generation,
    parse_query_reply,
    task_only,
)
from curator.pipeline.likelihood import build_ql_prefix, mean_log_likelihood, ql_continuation
from curator.pipeline.query_quality import copy_reason, duplicate_reasons, junk_reason
from curator.progress import NullProgress, Progress
from curator.services.projects import require_project
from curator.services.runs import recorded_run, report_counts
from db import Database
from db.models import FlagKind, GeneratedQuery, Passage, QueryFlag, QueryStatus, Stage
from db.queries import insert_or_ignore

CHECKPOINT_SECONDS = 10.0


@dataclass(frozen=True)
class GenerateOptions:
    """Which passages and how.

    ``sample``: a seeded random sample of that many passages of the project (the same
    sample on every run with the same seed, so a resumed run finishes the same set);
    None means every passage. ``limit`` caps how many passages this run handles.
    ``best_of`` > 1 samples that many replies and keeps the query the model itself finds
    most likely given the passage (mean per-token query likelihood; local models only).
    ``resample``: up to that many extra draws (at ``resample_temperature``) when every
    draw so far is a copy of the passage or junk; a query still flagged after them is
    stored with its flags. ``examples_path`` None: the project's curated examples when
    annotators have accepted or edited at least ``MIN_CURATED_EXAMPLES`` queries
    (``use_curated``), else the examples that ship with curator.
    """

    queries_per_passage: int = 1
    sample: int | None = None
    seed: int = 0
    limit: int | None = None
    retry_failed: bool = False
    best_of: int = 1
    examples_path: Path | None = None
    max_passage_words: int = 300
    resample: int = 2
    resample_temperature: float = 0.9
    use_curated: bool = True

    def __post_init__(self) -> None:
        if self.queries_per_passage < 1:
            raise ValueError("queries per passage must be at least 1")
        if self.best_of < 1:
            raise ValueError("best-of must be at least 1")
        if self.resample < 0:
            raise ValueError("resample must be 0 or more")
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
    flagged: dict[str, int] = field(default_factory=dict)
    resampled: int = 0
    examples: str = "default"
    seconds: float = 0.0
    usage: dict = field(default_factory=dict)
    error: str | None = None

    def add(
        self, status: QueryStatus, *, truncated: bool = False, flags: dict | None = None
    ) -> None:
        """Count one stored reply (and its quality flags)."""
        for kind in flags or {}:
            self.flagged[kind] = self.flagged.get(kind, 0) + 1
        if status is QueryStatus.OK:
            self.ok += 1
        elif status is QueryStatus.ERROR:
            self.errors += 1
        else:
            self.parse_failed += 1
        self.truncated += truncated

    def counts(self) -> dict[str, int]:
        return {
            **report_counts(
                self, "planned already_done ok parse_failed errors truncated resampled"
            ),
            **{f"flagged_{kind}": n for kind, n in sorted(self.flagged.items())},
        }

    def summary(self) -> str:
        done = self.ok + self.parse_failed + self.errors
        rate = done / self.seconds * 60 if self.seconds else 0.0
        return (
            f"generated {self.ok} queries, {self.parse_failed} replies did not parse "
            f"(stored raw, retry with --retry-failed); {self.errors} passages too long for the "
            f"model; {self.already_done} already done; flagged {self._flag_text()}; "
            f"{rate:.0f} passages/min with {self.model} ({self.prompt_version})"
        )

    def _flag_text(self) -> str:
        if not self.flagged:
            return "none"
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.flagged.items()))


MIN_CURATED_EXAMPLES = 3
MAX_CURATED_EXAMPLES = 24
CURATED_PASSAGE_WORDS = 80


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
    model = client.settings.model
    project_id = require_project(database, project)
    examples, examples_source = _examples_for(database, project_id, options)
    version = examples_version(examples)
    settings = {
        "llm": client.settings.public(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
        "examples": {"source": examples_source, "version": version, "count": len(examples)},
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
            report = GenerateReport(
                run_id=run.run_id,
                model=model,
                prompt_version=PROMPT_VERSION,
                examples=f"{examples_source} ({version})",
            )
            run.counts, run.usage = report.counts, client.usage.as_dict
            tasks = _plan(database, project_id, model, options, report)
            progress.start(len(tasks), "passages", f"generate ({model})")
            last_checkpoint = time.monotonic()

            def work(task: _Task):
                return _generate_one(client, task, examples, options)

            for task, outcome in client.map(work, tasks):
                if _store(database, project_id, run.run_id, model, version, task, outcome):
                    report.add(outcome.status, truncated=outcome.truncated, flags=outcome.flags)
                    report.resampled += outcome.resampled
                else:  # a concurrent run on the same data stored this one first
                    report.already_done += 1
                progress.advance(1)
                if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                    last_checkpoint = time.monotonic()
                    run.checkpoint()
            duplicates = flag_duplicates(database, project_id, run.run_id)
            if duplicates:
                report.flagged["duplicate"] = report.flagged.get("duplicate", 0) + duplicates
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
    flags: dict[str, str] = field(default_factory=dict)
    resampled: int = 0


@dataclass(frozen=True)
class _Draw:
    raw: str
    parsed: ParsedGeneration | None
    error: str | None
    flags: dict[str, str] = field(default_factory=dict)


def quality_flags(
    query: str, title: str, text: str, examples: list[GenerationExample]
) -> dict[str, str]:
    """``{kind: reason}`` of the copy and junk checks for one query (empty when it passes)."""
    flags = {}
    junk = junk_reason(query, [e.query for e in examples], [e.passage for e in examples])
    if junk:
        flags[FlagKind.JUNK.value] = junk
    copy = copy_reason(query, f"{title}\n{text}")
    if copy:
        flags[FlagKind.COPY.value] = copy
    return flags


def _generate_one(
    client: LLMClient, task: _Task, examples: list[GenerationExample], options: GenerateOptions
) -> _Outcome:
    """Ask for one passage and query index and parse the reply: ``best_of`` clean draws
    wanted, up to ``resample`` extra draws while the draws so far are copies or junk."""
    shown = choose_examples(examples, f"{task.passage_id}:{task.sample_index}")
    prompt = build_generation_messages(
        PassageInput(task.title, task.text), shown, options.max_passage_words
    )
    notes: dict[str, object] = {}
    truncated = prompt.truncated_from is not None
    if truncated:
        notes["truncated"] = (
            f"passage cut from {prompt.truncated_from} to {options.max_passage_words} words"
        )
    if task.previous_raw is not None:
        notes["previous_raw"] = task.previous_raw
    draws: list[_Draw] = []
    for draw in range(options.best_of + options.resample):
        clean = [d for d in draws if d.parsed is not None and not d.flags]
        if len(clean) >= options.best_of or (draw >= options.best_of and clean):
            break
        extra = {"temperature": options.resample_temperature} if draw >= options.best_of else {}
        call = {
            "seed": sample_seed(task.passage_id, task.sample_index, draw, options.seed),
            "stop": STOP,
            "refresh": task.existing_id is not None,  # a retry: the cached reply failed
            **extra,
        }
        try:
            raw, parsed, error = _ask(client, prompt, examples, call)
        except LLMError as exc:
            if exc.kind != "context_window":
                raise
            # this passage does not fit the model: flag it and go on with the others
            notes["context"] = str(exc)
            message = f"too long for the model's context: {exc.provider_message}"
            return _Outcome(QueryStatus.ERROR, None, "", message, _dump(notes), truncated)
        if parsed is None:
            draws.append(_Draw(raw, None, error))
            continue
        flags = quality_flags(parsed.query, task.title, task.text, examples)
        draws.append(_Draw(raw, parsed, None, flags))
    resampled = max(0, len(draws) - options.best_of)
    if resampled:
        notes["draws"] = [
            {"query": d.parsed.query if d.parsed else None, "flags": d.flags, "error": d.error}
            for d in draws
        ]
    parsed_draws = [d for d in draws if d.parsed is not None]
    if not parsed_draws:
        first = draws[0]
        return _Outcome(
            QueryStatus.PARSE_FAILED,
            None,
            first.raw,
            first.error,
            _dump(notes),
            truncated,
            resampled=resampled,
        )
    pool = [d for d in parsed_draws if not d.flags] or parsed_draws[:1]
    chosen = pool[0] if len(pool) == 1 else _choose_by_likelihood(client, task, pool, notes)
    return _Outcome(
        QueryStatus.OK,
        chosen.parsed,
        chosen.raw,
        None,
        _dump(notes),
        truncated,
        flags=chosen.flags,
        resampled=resampled,
    )


def _ask(
    client: LLMClient, prompt, examples: list[GenerationExample], call: dict
) -> tuple[str, ParsedGeneration | None, str | None]:
    """One draw: (the raw reply, its parse or None, the parse error or None). A reply that
    stops after its task line is continued once with ``Query:`` (``build_query_messages``);
    the raw text then holds both replies, joined by that label."""
    reply = client.complete(prompt.messages, **call)
    try:
        return reply.text, parse_generation(reply.text, examples), None
    except ParseError as exc:
        task = task_only(reply.text)
        if task is None:
            return reply.text, None, str(exc)
    follow = client.complete(build_query_messages(prompt, task).messages, **call)
    raw = f"{reply.text}\nQuery:{follow.text}"
    try:
        return raw, parse_query_reply(task, follow.text, examples), None
    except ParseError as exc:
        return raw, None, f"{exc} (asked again after the task line)"


def _choose_by_likelihood(client: LLMClient, task: _Task, draws: list[_Draw], notes: dict):
    """The draw whose query has the highest mean per-token log-likelihood given the passage."""
    from curator.llm.likelihood import log_likelihood

    prefix = build_ql_prefix(task.title, task.text)
    scored = []
    for draw in draws:
        query = draw.parsed.query
        total, tokens = log_likelihood(client.settings, prefix, ql_continuation(query))
        scored.append((mean_log_likelihood(total, tokens), draw))
    notes["best_of"] = [{"query": d.parsed.query, "mean_logprob": round(s, 4)} for s, d in scored]
    return max(scored, key=lambda item: item[0])[1]


def _dump(notes: dict) -> str | None:
    return json.dumps(notes, ensure_ascii=False) if notes else None


def _store(
    database: Database,
    project_id: int,
    run_id: int,
    model: str,
    version: str,
    task: _Task,
    outcome: _Outcome,
) -> bool:
    """Write one reply (a new row, or the retried row updated) and its quality flags;
    False when a concurrent run had stored this sample already."""
    parsed = outcome.parsed
    values = {
        "task": parsed.task if parsed else "",
        "query": parsed.query if parsed else "",
        "raw_output": outcome.raw,
        "status": outcome.status.value,
        "error": outcome.error,
        "note": outcome.note,
        "run_id": run_id,
        "examples_version": version,
    }
    with database.sessions() as session, session.begin():
        if task.existing_id is not None:
            row = session.get(GeneratedQuery, task.existing_id)
            for key, value in values.items():
                setattr(row, key, value)
            session.execute(
                delete(QueryFlag).where(
                    QueryFlag.query_id == row.id,
                    QueryFlag.kind.in_([FlagKind.COPY.value, FlagKind.JUNK.value]),
                )
            )
        else:
            key = {
                "project_id": project_id,
                "seed_passage_id": task.passage_id,
                "sample_index": task.sample_index,
                "model": model,
                "prompt_version": PROMPT_VERSION,
            }
            if insert_or_ignore(session, GeneratedQuery, [{**key, **values}]) != 1:
                return False
            row = session.scalar(
                select(GeneratedQuery).where(
                    *(getattr(GeneratedQuery, name) == value for name, value in key.items())
                )
            )
        session.add_all(
            QueryFlag(query_id=row.id, kind=kind, reason=reason, run_id=run_id)
            for kind, reason in outcome.flags.items()
        )
    return True


def flag_duplicates(database: Database, project_id: int, run_id: int | None) -> int:
    """Flag each parsed query of the project whose text an earlier query for another seed
    passage already has (``duplicate``); returns how many new flags were written."""
    with database.sessions() as session, session.begin():
        rows = session.execute(
            select(GeneratedQuery.id, GeneratedQuery.seed_passage_id, GeneratedQuery.query).where(
                GeneratedQuery.project_id == project_id,
                GeneratedQuery.status == QueryStatus.OK.value,
            )
        ).all()
        found = duplicate_reasons([(r.id, r.seed_passage_id, r.query) for r in rows])
        already = set(
            session.scalars(
                select(QueryFlag.query_id)
                .join(GeneratedQuery, GeneratedQuery.id == QueryFlag.query_id)
                .where(
                    GeneratedQuery.project_id == project_id,
                    QueryFlag.kind == FlagKind.DUPLICATE.value,
                )
            )
        )
        new = [
            QueryFlag(query_id=q, kind=FlagKind.DUPLICATE.value, reason=reason, run_id=run_id)
            for q, reason in found.items()
            if q not in already
        ]
        session.add_all(new)
    return len(new)


def _examples_for(
    database: Database, project_id: int, options: GenerateOptions
) -> tuple[list[GenerationExample], str]:
    """The example set for this run and where it came from (``file``, ``curated`` or
    ``default``): an explicit file wins; else the project's curated examples when there
    are enough; else the shipped ones."""
    if options.examples_path is not None:
        return load_examples(options.examples_path), "file"
    if options.use_curated:
        curated = curated_examples(database, project_id)
        if len(curated) >= MIN_CURATED_EXAMPLES:
            return curated, "curated"
    return load_examples(None), "default"


def curated_examples(
    database: Database, project_id: int, limit: int = MAX_CURATED_EXAMPLES
) -> list[GenerationExample]:
    """Few-shot examples from the project's curation: the newest queries a person accepted
    or overrode (their edited text where they edited it), with the task and the seed
    passage (cut to ``CURATED_PASSAGE_WORDS`` words). A query that copies its passage is
    left out even if accepted: as an example it would teach copying."""
    from curator.pipeline.generate import truncate_words
    from curator.services.annotate import effective_judgments
    from db.models import Decision, Provenance

    with database.sessions() as session:
        effective = effective_judgments(session, GeneratedQuery.project_id == project_id)
        latest = {}
        for query_id, by_annotator in effective.items():
            judgment = max(by_annotator.values(), key=lambda j: j.id)
            if judgment.provenance != Provenance.HUMAN.value:
                continue
            if judgment.decision in (Decision.ACCEPT.value, Decision.OVERRIDE.value):
                latest[query_id] = judgment
        chosen = sorted(latest, key=lambda q: latest[q].id, reverse=True)
        examples = []
        for query_id in chosen:
            row = session.get(GeneratedQuery, query_id)
            passage = row.seed_passage
            query = latest[query_id].edited_query or row.query
            if not row.task.strip() or not query.strip():
                continue
            if copy_reason(query, f"{passage.title}\n{passage.text}"):
                continue
            text, _ = truncate_words(passage.text, CURATED_PASSAGE_WORDS)
            examples.append(
                GenerationExample(" ".join(passage.title.split()), text, row.task, query)
            )
            if len(examples) >= limit:
                break
    return examples
