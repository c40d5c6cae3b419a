"""SQLAlchemy 2.0 typed models for the whole curation pipeline.

The tables follow the data flow of ``docs/DESIGN.md``::

    passages -> generated_queries -> candidates -> llm_scores -> proposed_labels
             -> judgments (+ judgment_passages) -> training_runs / models / evaluation_results

Machine suggestions (``candidates``, ``llm_scores``, ``proposed_labels``) and human
judgments (``judgments``, ``judgment_passages``) live in separate tables. Judgments are
append-only: an undo is a new judgment that names the one it retracts.

Every constraint has a name (see ``NAMING_CONVENTION``) so Alembic migrations can
alter them later, on SQLite included.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Search structures migrations 0007 and 0008 create outside the models: SQLite's FTS5
# table over the passages (and the shadow tables FTS5 keeps), PostgreSQL's expression
# index (0007), then its generated tsvector column and that column's GIN index (0008).
FULL_TEXT_NAMES = ("passages_fts", "ix_passages_fts", "search_vector", "ix_passages_search_vector")


def schema_object_filter(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` hook: leave the full-text search objects out of
    autogenerate's comparison (they are not in the models; see ``FULL_TEXT_NAMES``)."""
    return not (name or "").startswith(FULL_TEXT_NAMES)


def utcnow() -> datetime:
    """Timezone-aware current time in UTC (stored as naive UTC by SQLite)."""
    return datetime.now(timezone.utc)


class StrEnum(str, enum.Enum):
    """``enum.StrEnum`` for Python 3.10: members compare equal to their values."""

    def __str__(self) -> str:
        return self.value


class Stage(StrEnum):
    INGEST = "ingest"
    GENERATE = "generate"
    MINE = "mine"
    RERANK = "rerank"
    TRAIN = "train"
    EVALUATE = "evaluate"
    EXPORT = "export"
    IMPORT = "import"


class RunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class QueryStatus(StrEnum):
    OK = "ok"
    PARSE_FAILED = "parse_failed"
    ERROR = "error"


class LabelKind(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"


class Provenance(StrEnum):
    SEED = "seed"
    GUIDE = "guide"
    LLM = "llm"
    HUMAN = "human"
    IMPORTED = "imported"


class Decision(StrEnum):
    ACCEPT = "accept"
    OVERRIDE = "override"
    REJECT = "reject"
    RETRACT = "retract"


class Role(StrEnum):
    """What an account may do under ``curator serve --login``: admins everything,
    annotators browse passages, annotate and read the agreement page."""

    ADMIN = "admin"
    ANNOTATOR = "annotator"


class JudgedLabel(StrEnum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    FALSE_NEGATIVE = "false_negative"


def _in(column: str, values: type[enum.Enum]) -> str:
    """SQL text of a CHECK that ``column`` holds one of the enum's values."""
    quoted = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    """A curation project: one corpus and the settings its pipeline runs with."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PipelineRun(Base):
    """One run of one stage: its settings, model, prompt version, counts, usage and time."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (
        CheckConstraint(_in("stage", Stage), name="stage"),
        CheckConstraint(_in("status", RunStatus), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default=RunStatus.RUNNING.value)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model: Mapped[str | None] = mapped_column(String(300))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    usage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Passage(Base):
    """A retrievable unit of text: a whole document or one chunk of it."""

    __tablename__ = "passages"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        UniqueConstraint("project_id", "content_hash"),
        Index("ix_passages_project_document", "project_id", "document_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(512))
    document_id: Mapped[str] = mapped_column(String(512))
    chunk_index: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str | None] = mapped_column(Text)
    source_line: Mapped[int | None] = mapped_column(Integer)
    ingest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GeneratedQuery(Base):
    """A task description and query written by an LLM for a seed passage.

    ``raw_output`` is always kept; a reply that does not parse has ``status='parse_failed'``
    (the reason in ``error``) and empty ``task``/``query`` so it can be retried, never
    silently dropped. ``note`` holds what else the stage wants kept (a truncated passage,
    the candidates of a best-of-n choice, earlier failed attempts).
    """

    __tablename__ = "generated_queries"
    __table_args__ = (
        UniqueConstraint("seed_passage_id", "model", "prompt_version", "sample_index"),
        CheckConstraint(_in("status", QueryStatus), name="status"),
        Index("ix_generated_queries_project_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    seed_passage_id: Mapped[int] = mapped_column(
        ForeignKey("passages.id", ondelete="CASCADE"), index=True
    )
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    task: Mapped[str] = mapped_column(Text, default="")
    query: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str] = mapped_column(String(300))
    prompt_version: Mapped[str] = mapped_column(String(64))
    raw_output: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default=QueryStatus.OK.value)
    error: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: fingerprint of the few-shot example set in the prompt (``None`` before 0004)
    examples_version: Mapped[str | None] = mapped_column(String(64))

    seed_passage: Mapped[Passage] = relationship()


class FlagKind(StrEnum):
    COPY = "copy"
    JUNK = "junk"
    DUPLICATE = "duplicate"
    INCONSISTENT = "inconsistent"


class QueryFlag(Base):
    """Why a generated query is not worth training on, as a machine found it.

    Written by the stage that checks it (generation: copy, junk, duplicate; mining:
    inconsistent, when the guide does not retrieve the seed), never a silent drop: the
    label-free policy leaves flagged unreviewed queries out, a person's judgment wins, and
    the app lists flagged queries in a queue of their own.
    """

    __tablename__ = "query_flags"
    __table_args__ = (
        UniqueConstraint("query_id", "kind"),
        CheckConstraint(_in("kind", FlagKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(
        ForeignKey("generated_queries.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Candidate(Base):
    """A passage retrieved for a query by the guide model, with its BM25 score alongside."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("query_id", "passage_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("generated_queries.id", ondelete="CASCADE"))
    passage_id: Mapped[int] = mapped_column(
        ForeignKey("passages.id", ondelete="CASCADE"), index=True
    )
    guide_model: Mapped[str | None] = mapped_column(String(300))
    guide_score: Mapped[float | None] = mapped_column(Float)
    guide_rank: Mapped[int | None] = mapped_column(Integer)
    bm25_score: Mapped[float | None] = mapped_column(Float)
    bm25_rank: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LLMScore(Base):
    """One LLM scoring of a (query, passage) pair by one method (``ql``, ``rc``, ``rrf``...)."""

    __tablename__ = "llm_scores"
    __table_args__ = (
        UniqueConstraint("query_id", "passage_id", "method", "model", "prompt_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("generated_queries.id", ondelete="CASCADE"))
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(300))
    prompt_version: Mapped[str] = mapped_column(String(64))
    raw_output: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProposedLabel(Base):
    """A label proposed by the pipeline (not a person) with where it came from."""

    __tablename__ = "proposed_labels"
    __table_args__ = (
        UniqueConstraint("query_id", "passage_id", "run_id"),
        CheckConstraint(_in("label", LabelKind), name="label"),
        CheckConstraint(_in("provenance", Provenance), name="provenance"),
        # the annotation queues' look-up of each query's LLM positive (migration 0003)
        Index("ix_proposed_labels_kind_query", "provenance", "label", "query_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(
        ForeignKey("generated_queries.id", ondelete="CASCADE"), index=True
    )
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    provenance: Mapped[str] = mapped_column(String(16))
    fused_rank: Mapped[int | None] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float)
    differs_from_seed: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Annotator(Base):
    """A person who judges queries; ``password_hash`` is set when the app logs in from the DB;
    ``role`` (admin / annotator) is what the app lets them do under ``--login``."""

    __tablename__ = "annotators"
    __table_args__ = (CheckConstraint(_in("role", Role), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(300))
    is_active: Mapped[bool] = mapped_column(default=True)
    role: Mapped[str] = mapped_column(
        String(16), default=Role.ANNOTATOR.value, server_default=Role.ANNOTATOR.value
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Judgment(Base):
    """One annotator's decision on one query. Append-only: rows are never updated.

    ``decision='retract'`` undoes the judgment named by ``retracts_judgment_id``.
    The passages chosen as positives / negatives / false negatives are in
    ``judgment_passages``.
    """

    __tablename__ = "judgments"
    __table_args__ = (
        CheckConstraint(_in("decision", Decision), name="decision"),
        Index("ix_judgments_query_annotator", "query_id", "annotator_id"),
        Index("ix_judgments_retracts", "retracts_judgment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("generated_queries.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(
        ForeignKey("annotators.id", ondelete="RESTRICT"), index=True
    )
    decision: Mapped[str] = mapped_column(String(16))
    edited_query: Mapped[str | None] = mapped_column(Text)
    reject_reason: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    provenance: Mapped[str] = mapped_column(String(16), default=Provenance.HUMAN.value)
    retracts_judgment_id: Mapped[int | None] = mapped_column(
        ForeignKey("judgments.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    passages: Mapped[list[JudgmentPassage]] = relationship(back_populates="judgment")


class JudgmentPassage(Base):
    """A passage an annotator marked in one judgment, with the label they gave it."""

    __tablename__ = "judgment_passages"
    __table_args__ = (
        UniqueConstraint("judgment_id", "passage_id"),
        CheckConstraint(_in("label", JudgedLabel), name="label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    judgment_id: Mapped[int] = mapped_column(ForeignKey("judgments.id", ondelete="CASCADE"))
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    edited_text: Mapped[str | None] = mapped_column(Text)

    judgment: Mapped[Judgment] = relationship(back_populates="passages")


class QuerySplit(Base):
    """The stored train / eval assignment of a query, fixed by a seed so runs compare."""

    __tablename__ = "query_splits"
    __table_args__ = (UniqueConstraint("query_id", "seed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    query_id: Mapped[int] = mapped_column(ForeignKey("generated_queries.id", ondelete="CASCADE"))
    seed: Mapped[int] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingRun(Base):
    """One fine-tuning run: settings, the data snapshot it used, its loss curve and output."""

    __tablename__ = "training_runs"
    __table_args__ = (CheckConstraint(_in("status", RunStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    base_model: Mapped[str] = mapped_column(String(300))
    loss: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    split_seed: Mapped[int | None] = mapped_column(Integer)
    loss_curve: Mapped[list[Any]] = mapped_column(default=list)
    output_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default=RunStatus.RUNNING.value)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmbeddingModel(Base):
    """A model known to the project: a guide, a base, or one produced by a training run."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(Text)
    base_model: Mapped[str | None] = mapped_column(String(300))
    training_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvaluationResult(Base):
    """One metric of one retrieval system on one dataset split."""

    __tablename__ = "evaluation_results"
    __table_args__ = (Index("ix_evaluation_results_run", "training_run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    training_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="SET NULL")
    )
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    system: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(Text)
    split: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobKind(StrEnum):
    GENERATE = "generate"
    MINE = "mine"
    RERANK = "rerank"
    TRAIN = "train"
    EVAL = "eval"
    EXPORT = "export"
    INGEST = "ingest"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Base):
    """One heavy job asked for by the CLI or the app (``curator.services.jobs``).

    Jobs of one data folder run one at a time, oldest first: a job waits ``queued`` until
    it holds ``<data dir>/jobs.lock``. ``pid`` is the process that waits for or runs it
    (the CLI itself, or a ``curator.worker`` process started for the app), so a job whose
    process died is found and marked failed. ``project`` is the project's name (an ingest
    may create it); ``result`` holds what the app shows when it ends.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("kind", JobKind), name="kind"),
        CheckConstraint(_in("status", JobStatus), name="status"),
        Index("ix_jobs_data_dir_status", "data_dir", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(32), default=JobStatus.QUEUED.value)
    origin: Mapped[str] = mapped_column(String(16), default="cli")
    data_dir: Mapped[str] = mapped_column(Text)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
