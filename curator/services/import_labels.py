"""Import service: an existing labelled dataset as judgments, to curate on top of it.

``import_labels(database, project, path, ImportOptions(fmt="beir" | "flag"))`` reads BEIR
qrels or FlagEmbedding JSONL (``curator.pipeline.label_readers``) and stores, in **one
transaction**, for each labelled query:

- a ``generated_queries`` row (model and prompt version ``imported``, status ``ok``, the
  task from the file or ``options.task``, the first positive as seed passage, and a
  ``note`` with the source file and the query's id there, so importing the same file again
  adds nothing);
- a judgment (decision ``override``, provenance ``imported``, annotator
  ``import:<file or folder name>`` unless given) marking its positives and negatives;
- its split under ``options.seed`` (``query_splits``), so a held-out file stays held out.

Passages: BEIR qrels name them by corpus id, which must be the external id of a passage
of the project (ingest the dataset's ``corpus.jsonl`` first). FlagEmbedding rows carry
texts: a text is matched to a passage of the project by content hash (of the passage's
text, or of its title and text joined as the export writes them); a text that matches
none is added as a new passage (``external_id`` ``imported:<hash>``) unless
``add_passages`` is off, which makes it an error. Any error names the file, line and field
and leaves the database as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from curator.pipeline.label_readers import LabelledQuery, read_beir_labels, read_flag_labels
from curator.pipeline.readers import IngestError
from curator.pipeline.text import content_hash
from curator.pipeline.training_set import DEFAULT_SEED
from curator.services.projects import require_project
from curator.services.runs import recorded_run, report_counts
from db import Database
from db.models import (
    Annotator,
    Decision,
    GeneratedQuery,
    JudgedLabel,
    Judgment,
    JudgmentPassage,
    Passage,
    Provenance,
    QuerySplit,
    QueryStatus,
    Stage,
)

IMPORT_FORMATS = ("beir", "flag")
IMPORTED = "imported"  # model and prompt version of imported queries
DEFAULT_TASK = "Given a query, retrieve passages that answer it."
CHUNK = 900


@dataclass
class ImportOptions:
    """How to import: the format, the task for queries whose file has none, the annotator
    the judgments are stored under (default ``import:<name>``), the split seed, and
    whether FlagEmbedding texts not in the corpus become new passages."""

    fmt: str
    task: str = DEFAULT_TASK
    annotator: str | None = None
    seed: int = DEFAULT_SEED
    add_passages: bool = True


@dataclass
class ImportReport:
    run_id: int
    source: str
    annotator: str
    queries: int = 0
    positives: int = 0
    negatives: int = 0
    passages_added: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "judgments": self.queries,  # one judgment per imported query
            **report_counts(self, "positives negatives passages_added splits skipped"),
        }

    def summary(self) -> str:
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())) or "none"
        splits = ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))
        return (
            f"imported {self.queries:,} queries from {self.source} as judgments by "
            f"{self.annotator!r} ({self.positives:,} positives, {self.negatives:,} negatives; "
            f"{splits or 'no splits'}); passages added: {self.passages_added:,}; "
            f"skipped: {skipped} (pipeline run {self.run_id})"
        )


def import_labels(
    database: Database, project: str, path: Path | str, options: ImportOptions
) -> ImportReport:
    """Store the labelled queries of ``path`` as imported judgments (see the module)."""
    if options.fmt not in IMPORT_FORMATS:
        raise ValueError(f"import format must be one of {IMPORT_FORMATS}, got {options.fmt!r}")
    path = Path(path)
    project_id = require_project(database, project)
    source = str(path.resolve())
    annotator = options.annotator or f"import:{path.name}"
    settings = {"format": options.fmt, "path": source, "seed": options.seed, "task": options.task}
    with recorded_run(database, project_id, Stage.IMPORT, settings, model=IMPORTED) as run:
        report = ImportReport(run_id=run.run_id, source=str(path), annotator=annotator)
        run.counts = report.counts
        reader = read_beir_labels if options.fmt == "beir" else read_flag_labels
        labelled = reader(path)
        with database.sessions() as session, session.begin():
            done = _already_imported(session, project_id, source)
            fresh = [q for q in labelled if q.key not in done]
            if len(fresh) < len(labelled):
                report.skipped["already_imported"] = len(labelled) - len(fresh)
            if any(not q.positives for q in fresh):  # BEIR qrels with only score 0
                report.skipped["no_positive"] = sum(1 for q in fresh if not q.positives)
                fresh = [q for q in fresh if q.positives]
            if options.fmt == "beir":
                ids = _passages_by_external_id(session, project_id, fresh, project)
            else:
                ids = _passages_by_text(
                    session, project_id, fresh, options.add_passages, run.run_id, report
                )
            _store(session, project_id, fresh, ids, annotator, source, options, run.run_id, report)
    return report


def _already_imported(session, project_id: int, source: str) -> set[str]:
    """Keys of queries already imported from ``source`` into the project."""
    keys = set()
    for note in session.scalars(
        select(GeneratedQuery.note).where(
            GeneratedQuery.project_id == project_id,
            GeneratedQuery.model == IMPORTED,
            GeneratedQuery.note.is_not(None),
        )
    ):
        try:
            data = json.loads(note)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("imported_from") == source:
            keys.add(str(data.get("imported_id")))
    return keys


def _passages_by_external_id(
    session, project_id: int, labelled: list[LabelledQuery], project: str
) -> dict[str, int]:
    wanted = sorted({v for q in labelled for v in (*q.positives, *q.negatives)})
    found: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        found.update(
            session.execute(
                select(Passage.external_id, Passage.id).where(
                    Passage.project_id == project_id, Passage.external_id.in_(part)
                )
            ).all()
        )
    for query in labelled:
        for value in (*query.positives, *query.negatives):
            if value not in found:
                file, line, name = query.where[value]
                raise IngestError(
                    file,
                    line,
                    name,
                    f"{value!r} is not a passage of project {project!r} "
                    "(ingest the dataset's corpus.jsonl first)",
                )
    return found


def _passages_by_text(
    session,
    project_id: int,
    labelled: list[LabelledQuery],
    add: bool,
    run_id: int,
    report: ImportReport,
) -> dict[str, int]:
    """Text -> passage id, matching by content hash; texts not found are added (or, with
    ``add`` off, an error)."""
    by_hash: dict[str, int] = {}
    for passage_id, title, text, stored in session.execute(
        select(Passage.id, Passage.title, Passage.text, Passage.content_hash)
        .where(Passage.project_id == project_id)
        .order_by(Passage.id)
    ):
        for key in (stored, content_hash("", text), content_hash("", f"{title}\n{text}")):
            by_hash.setdefault(key, passage_id)
    found: dict[str, int] = {}
    pending: dict[str, str] = {}  # text -> content hash of the passage to add
    new: dict[str, dict[str, Any]] = {}  # content hash -> passage row
    for query in labelled:
        for value in (*query.positives, *query.negatives):
            if value in found or value in pending:
                continue
            digest = content_hash("", value)
            if digest in by_hash:
                found[value] = by_hash[digest]
                continue
            file, line, name = query.where[value]
            if not add:
                raise IngestError(file, line, name, "matches no passage of the project")
            pending[value] = digest
            new.setdefault(
                digest,
                {
                    "project_id": project_id,
                    "external_id": f"{IMPORTED}:{digest}",
                    "document_id": f"{IMPORTED}:{digest}",
                    "chunk_index": 0,
                    "title": "",
                    "text": value,
                    "content_hash": digest,
                    "source_file": file,
                    "source_line": line,
                    "ingest_run_id": run_id,
                },
            )
    rows = list(new.values())
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Passage), rows[start : start + CHUNK])
    added: dict[str, int] = {}
    hashes = list(new)
    for start in range(0, len(hashes), CHUNK):
        added.update(
            session.execute(
                select(Passage.content_hash, Passage.id).where(
                    Passage.project_id == project_id,
                    Passage.content_hash.in_(hashes[start : start + CHUNK]),
                )
            ).all()
        )
    for value, digest in pending.items():
        found[value] = added[digest]
    report.passages_added = len(rows)
    return found


def _store(
    session,
    project_id: int,
    labelled: list[LabelledQuery],
    ids: dict[str, int],
    annotator: str,
    source: str,
    options: ImportOptions,
    run_id: int,
    report: ImportReport,
) -> None:
    who = session.scalar(select(Annotator.id).where(Annotator.username == annotator))
    if who is None:
        person = Annotator(username=annotator, display_name=annotator)
        session.add(person)
        session.flush()
        who = person.id
    next_index: dict[int, int] = dict(
        session.execute(
            select(GeneratedQuery.seed_passage_id, func.max(GeneratedQuery.sample_index) + 1)
            .where(
                GeneratedQuery.project_id == project_id,
                GeneratedQuery.model == IMPORTED,
                GeneratedQuery.prompt_version == IMPORTED,
            )
            .group_by(GeneratedQuery.seed_passage_id)
        ).all()
    )
    stored: list[tuple[GeneratedQuery, Judgment, str]] = []
    for item in labelled:
        positives = _unique(ids[v] for v in item.positives)
        negatives = [p for p in _unique(ids[v] for v in item.negatives) if p not in positives]
        seed = positives[0]
        index = next_index.get(seed, 0)
        next_index[seed] = index + 1
        query = GeneratedQuery(
            project_id=project_id,
            seed_passage_id=seed,
            sample_index=index,
            task=item.task or options.task,
            query=item.text,
            model=IMPORTED,
            prompt_version=IMPORTED,
            raw_output="",
            status=QueryStatus.OK.value,
            note=json.dumps({"imported_from": source, "imported_id": item.key}),
            run_id=run_id,
        )
        judgment = Judgment(
            annotator_id=who,
            decision=Decision.OVERRIDE.value,
            provenance=Provenance.IMPORTED.value,
            note=f"imported from {Path(item.file).name}:{item.line}",
        )
        judgment.passages = [
            JudgmentPassage(passage_id=p, label=JudgedLabel.POSITIVE.value) for p in positives
        ] + [JudgmentPassage(passage_id=p, label=JudgedLabel.NEGATIVE.value) for p in negatives]
        session.add(query)
        stored.append((query, judgment, item.split))
        report.queries += 1
        report.positives += len(positives)
        report.negatives += len(negatives)
        report.splits[item.split] = report.splits.get(item.split, 0) + 1
    session.flush()  # the queries get their ids
    for query, judgment, _split in stored:
        judgment.query_id = query.id
        session.add(judgment)
    session.flush()
    rows = [{"query_id": q.id, "seed": options.seed, "split": split} for q, _j, split in stored]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(QuerySplit), rows[start : start + CHUNK])


def _unique(values) -> list[int]:
    seen: list[int] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen
