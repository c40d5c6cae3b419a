"""Ingestion service: read a corpus file, chunk, deduplicate, store passages.

One file is one transaction. With ``on_error='abort'`` (the default) the first bad
record rolls the whole file back, so a file is stored completely or not at all and
nothing stored before is touched. With ``on_error='skip'`` bad records are skipped and
reported, and the good ones are stored. Every attempt is recorded as a pipeline run.

Deduplication, per project:
- same id and same content as a stored passage: already there, counted as ``unchanged``;
- same id with different content: an error (it names both places);
- same content under another id: not stored again, counted as ``duplicates``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from curator.pipeline.chunking import ChunkingConfig
from curator.pipeline.ingest import PassageDraft, passages_from_record
from curator.pipeline.readers import (
    DEFAULT_FIELDS,
    FieldMap,
    IngestError,
    SourceRecord,
    detect_format,
    progress_total,
    read_records,
)
from curator.progress import NullProgress, Progress
from curator.services.projects import ensure_project
from curator.services.runs import finish_run, report_counts, start_run
from db import Database
from db.models import Passage, RunStatus, Stage
from db.queries import existing_hashes, existing_ids

ON_ERROR = ("abort", "skip")
DEFAULT_BATCH_SIZE = 1000
# PostgreSQL: refresh the planner's statistics of ``passages`` inside the ingest's one
# transaction when this many rows were added, then at every doubling (see _BatchWriter)
ANALYZE_FIRST_AT = 5_000
ANALYZE_LOCK_TIMEOUT = "2s"  # longer than deadlock_timeout (1 s): autovacuum yields to it
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout


@dataclass
class IngestReport:
    """What one ingest of one source did."""

    source: str
    run_id: int | None = None
    records: int = 0
    added: int = 0
    unchanged: int = 0
    duplicates: int = 0
    errors: list[IngestError] = field(default_factory=list)
    aborted: bool = False

    def counts(self) -> dict[str, int]:
        return {
            **report_counts(self, "records added unchanged duplicates"),
            "errors": len(self.errors),
        }

    def summary(self) -> str:
        state = "aborted, nothing stored" if self.aborted else f"{self.added} passages added"
        return (
            f"{self.source}: {state} ({self.records} records read, {self.unchanged} already "
            f"stored, {self.duplicates} duplicate texts skipped, {len(self.errors)} errors)"
        )


class IngestAborted(Exception):
    """The file was rolled back because of ``error`` (``on_error='abort'``)."""

    def __init__(self, report: IngestReport, error: IngestError) -> None:
        self.report = report
        self.error = error
        super().__init__(
            f"{error}\n  -> nothing from {report.source} was stored "
            "(use --on-error skip to store the good records and list the bad ones)"
        )


def ingest_path(
    database: Database,
    project: str,
    path: str | Path,
    *,
    fmt: str = "auto",
    fields: FieldMap = DEFAULT_FIELDS,
    chunking: ChunkingConfig | None = None,
    on_error: str = "abort",
    encoding: str = "utf-8",
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest one corpus file or folder into ``project`` (created if missing).

    Raises :class:`IngestAborted` on a bad record with ``on_error='abort'``, and
    :class:`IngestError` for a file that cannot be read at all.
    """
    path = Path(path)
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    progress = progress or NullProgress()
    resolved = _resolve_format(path, fmt)
    settings = {
        "path": str(path),
        "format": resolved,
        "fields": vars(fields),
        "chunking": vars(chunking) if chunking else None,
        "on_error": on_error,
        "encoding": encoding,
    }

    def records() -> Iterator[SourceRecord | IngestError]:
        # read lazily, so a file that cannot be read at all is recorded as a failed run
        yield from read_records(path, fmt, fields, encoding=encoding, on_progress=progress.advance)

    total, unit = progress_total(path, resolved) if resolved != "auto" else (0, "B")
    progress.start(total, unit, f"ingest {path.name}")
    try:
        return ingest_records(
            database,
            project,
            records(),
            source=str(path),
            chunking=chunking,
            on_error=on_error,
            batch_size=batch_size,
            settings=settings,
        )
    finally:
        progress.finish()


def ingest_records(
    database: Database,
    project: str,
    records: Iterable[SourceRecord | IngestError],
    *,
    source: str,
    chunking: ChunkingConfig | None = None,
    on_error: str = "abort",
    batch_size: int = DEFAULT_BATCH_SIZE,
    settings: dict | None = None,
) -> IngestReport:
    """Store ``records`` (from a reader or built in memory) as passages of ``project``."""
    project_id = ensure_project(database, project)
    run_id = start_run(database, project_id, Stage.INGEST, settings or {"source": source})
    report = IngestReport(source=source, run_id=run_id)
    try:
        with database.sessions() as session, session.begin():
            writer = _BatchWriter(session, project_id, run_id, report, on_error)
            for item in records:
                if isinstance(item, IngestError):
                    writer.error(item)
                    continue
                report.records += 1
                for draft in passages_from_record(item, chunking):
                    writer.add(draft)
                    if len(writer.pending) >= batch_size:
                        writer.flush()
            writer.flush()
    except _Abort as abort:
        report.aborted = True
        report.added = 0
        finish_run(database, run_id, RunStatus.FAILED, report.counts(), error=str(abort.error))
        raise IngestAborted(report, abort.error) from None
    except IngestError as error:  # the file as a whole is unreadable
        report.aborted = True
        report.added = 0
        report.errors.append(error)
        finish_run(database, run_id, RunStatus.FAILED, report.counts(), error=str(error))
        raise
    except BaseException as exc:
        finish_run(database, run_id, RunStatus.INTERRUPTED, report.counts(), error=repr(exc))
        raise
    status = RunStatus.DONE
    finish_run(
        database,
        run_id,
        status,
        report.counts(),
        error="; ".join(str(e) for e in report.errors[:20]) or None,
    )
    return report


def _resolve_format(path: Path, fmt: str) -> str:
    """The concrete format, or ``fmt`` as given when it cannot be told (the reader says why)."""
    if fmt != "auto":
        return fmt
    try:
        return detect_format(path) if path.exists() else fmt
    except IngestError:
        return fmt


class _Abort(Exception):
    def __init__(self, error: IngestError) -> None:
        self.error = error


class _BatchWriter:
    """Collects drafts, checks them against the batch and the database, inserts in bulk."""

    def __init__(
        self, session: Session, project_id: int, run_id: int, report: IngestReport, on_error: str
    ) -> None:
        self.session = session
        self.project_id = project_id
        self.run_id = run_id
        self.report = report
        self.on_error = on_error
        self.pending: list[PassageDraft] = []
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.analyze_at = ANALYZE_FIRST_AT

    def error(self, error: IngestError) -> None:
        if self.on_error == "abort":
            raise _Abort(error)
        self.report.errors.append(error)

    def add(self, draft: PassageDraft) -> None:
        self.pending.append(draft)

    def flush(self) -> None:
        if not self.pending:
            return
        drafts, self.pending = self.pending, []
        stored_ids = existing_ids(self.session, self.project_id, [d.external_id for d in drafts])
        stored_hashes = existing_hashes(
            self.session, self.project_id, [d.content_hash for d in drafts]
        )
        new_ids: dict[str, PassageDraft] = {}
        new_hashes: set[str] = set()
        rows = []
        for draft in drafts:
            known_hash = stored_ids.get(draft.external_id)
            earlier = new_ids.get(draft.external_id)
            if known_hash is not None or earlier is not None:
                if (known_hash or earlier.content_hash) == draft.content_hash:
                    self.report.unchanged += 1
                else:
                    where = (
                        f"line {earlier.source_line} of this file"
                        if earlier
                        else "an earlier ingest"
                    )
                    self.error(
                        IngestError(
                            draft.source_file,
                            draft.source_line,
                            "id",
                            f"id {draft.external_id!r} is already stored with different text "
                            f"(from {where}); ids must be unique",
                        )
                    )
                continue
            if draft.content_hash in stored_hashes or draft.content_hash in new_hashes:
                self.report.duplicates += 1
                continue
            new_ids[draft.external_id] = draft
            new_hashes.add(draft.content_hash)
            rows.append(
                {
                    "project_id": self.project_id,
                    "external_id": draft.external_id,
                    "document_id": draft.document_id,
                    "chunk_index": draft.chunk_index,
                    "title": draft.title,
                    "text": draft.text,
                    "content_hash": draft.content_hash,
                    "source_file": draft.source_file,
                    "source_line": draft.source_line,
                    "ingest_run_id": self.run_id,
                }
            )
        if rows:
            self.session.execute(insert(Passage), rows)
            self.report.added += len(rows)
            self.refresh_statistics()

    def refresh_statistics(self) -> None:
        """On PostgreSQL, ``ANALYZE`` the passages' key columns once this ingest has added
        ``analyze_at`` rows, then at every doubling. Without it the planner does not know
        the project already holds the rows this (uncommitted) transaction added, picks a
        scan of every passage of the project for each batch's duplicate check, and ingest
        slows with the table (3 s a batch at 200,000 passages). ANALYZE counts its own
        transaction's rows; a user who does not own the table gets a warning, not an error.

        ANALYZE's lock on the table is held until this transaction ends and one ANALYZE
        waits for another's: when another transaction holds it (a concurrent ingest) for
        longer than ``ANALYZE_LOCK_TIMEOUT``, this ingest goes on without fresh statistics
        (a savepoint undoes the attempt) rather than wait for that one to commit."""
        if not self.postgres or self.report.added < self.analyze_at:
            return
        self.analyze_at = 2 * self.report.added
        session = self.session
        previous = session.scalar(text("SELECT current_setting('lock_timeout')"))
        try:
            with session.begin_nested():
                session.execute(
                    text("SELECT set_config('lock_timeout', :wait, true)"),
                    {"wait": ANALYZE_LOCK_TIMEOUT},
                )
                session.execute(text("ANALYZE passages (project_id, external_id, content_hash)"))
                session.execute(
                    text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": previous}
                )
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise


def store_upload(upload: str | Path, data_dir: str | Path) -> Path:
    """A copy of an uploaded file under ``<data dir>/uploads/<content hash>/<its name>``
    (made once per content), so the source path stored with the passages outlives the
    web server's temporary files."""
    import hashlib
    import shutil

    source = Path(upload)
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    target = Path(data_dir) / "uploads" / digest.hexdigest()[:16] / source.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return target
