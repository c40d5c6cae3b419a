"""Readers for existing labelled datasets: BEIR qrels and FlagEmbedding JSONL, and
:func:`read_beir`, the one reader of a whole BEIR folder (corpus, queries, qrels of a
split) that evaluation, benchmarks and tests use.

Each reader turns files into :class:`LabelledQuery` rows (plain data) and raises
:class:`~curator.pipeline.readers.IngestError` naming the file, the line and the field for
anything it cannot read, before anything is stored.

- BEIR: a folder with ``queries.jsonl`` (``_id``, ``text``, optional ``metadata.task``)
  and ``qrels/*.tsv`` (``query-id``, ``corpus-id``, ``score``; a header line is
  recognised by its non-numeric score). Score > 0 is a positive, score <= 0 a negative;
  passages are named by corpus id. ``train.tsv`` is the train split; ``test``, ``dev``,
  ``val``, ``validation`` and ``eval`` are held out; other names count as train. A query
  in several files keeps the split of the first (train first) and the labels of all.
- FlagEmbedding: a ``.jsonl`` file (or a folder of them) with ``query``, ``pos`` (at least
  one text), optional ``neg``, ``prompt``; passages are named by their text. A file named
  ``test``, ``dev``, ``val``, ``validation`` or ``eval`` is held out, any other is train.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.pipeline.readers import (
    IngestError,
    SourceRecord,
    delimited_rows,
    id_problem,
    parse_json_line,
    read_lines,
    read_records,
    require_file,
    text_problem,
)

HELD_OUT_NAMES = ("test", "dev", "val", "validation", "eval")
QRELS_COLUMNS = ["query-id", "corpus-id", "score"]
_SCORE = re.compile(r"[+-]?[0-9]+", re.ASCII)


@dataclass
class LabelledQuery:
    """A query with the passages an existing dataset labels for it.

    ``positives`` / ``negatives`` are corpus ids (BEIR) or passage texts (FlagEmbedding);
    ``where`` gives the (file, line) each was first read from, for error messages."""

    key: str  # the query's id in the source (BEIR _id; FlagEmbedding file:line)
    text: str
    task: str | None
    split: str  # train / eval
    file: str
    line: int
    positives: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    #: value -> (file, line, field) where it was first read
    where: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def add(self, value: str, positive: bool, file: str, line: int, field_name: str) -> None:
        """Label ``value``; a positive wins over a negative for the same passage."""
        self.where.setdefault(value, (file, line, field_name))
        if positive:
            if value in self.negatives:
                self.negatives.remove(value)
            if value not in self.positives:
                self.positives.append(value)
        elif value not in self.positives and value not in self.negatives:
            self.negatives.append(value)


def split_of(path: Path) -> str:
    """``eval`` for a file named like a held-out split, else ``train``."""
    return "eval" if path.stem.lower() in HELD_OUT_NAMES else "train"


def _json_line(path: Path, number: int, raw: str) -> dict[str, Any]:
    row = parse_json_line(path, number, raw)
    if not isinstance(row, dict):
        raise IngestError(path, number, None, f"must be a JSON object, got {type(row).__name__}")
    return row


def _text(row: dict[str, Any], name: str, path: Path, number: int) -> str:
    value = row.get(name)
    if value is None:
        raise IngestError(path, number, name, "missing (required)")
    if isinstance(value, int) and not isinstance(value, bool) and name == "_id":
        value = str(value)
    if not isinstance(value, str):
        raise IngestError(path, number, name, f"must be a string, got {type(value).__name__}")
    problem = id_problem(value) if name == "_id" else text_problem(value)
    if problem:
        raise IngestError(path, number, name, problem)
    return value


def read_beir_queries(path: Path) -> dict[str, tuple[str, str | None, int]]:
    """A BEIR ``queries.jsonl``: query id -> (text, task from ``metadata.task``, line)."""
    texts: dict[str, tuple[str, str | None, int]] = {}
    for number, raw in _read_some_lines(path):
        row = _json_line(path, number, raw)
        query_id = _text(row, "_id", path, number)
        text = _text(row, "text", path, number)
        metadata = row.get("metadata")
        task = metadata.get("task") if isinstance(metadata, dict) else None
        texts[query_id] = (text, task if isinstance(task, str) and task.strip() else None, number)
    return texts


def _read_some_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``read_lines(path)``, then an IngestError if the file held no line at all."""
    empty = True
    for item in read_lines(path):
        empty = False
        yield item
    if empty:
        raise IngestError(path, None, None, "holds no records (the file is empty)")


def read_qrels(path: Path) -> Iterator[tuple[int, str, str, float]]:
    """The rows of a BEIR qrels ``.tsv`` as (line, query id, corpus id, score); a header
    line is recognised by a first-line score without digits."""
    require_file(path)
    empty = True
    for number, row in delimited_rows(path, "\t", names=QRELS_COLUMNS):
        if isinstance(row, IngestError):
            raise row
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 3:
            raise IngestError(
                path, number, QRELS_COLUMNS[len(row)], f"missing: {len(row)} of 3 columns"
            )
        query_id, corpus_id, score_text = row[0].strip(), row[1].strip(), row[2].strip()
        if number == 1 and _is_header(score_text):
            continue
        for name, value in (("query-id", query_id), ("corpus-id", corpus_id)):
            problem = id_problem(value)
            if problem:
                raise IngestError(path, number, name, problem)
        if not _SCORE.fullmatch(score_text):
            raise IngestError(
                path,
                number,
                "score",
                f"must be a number (whole, in ASCII digits), got {score_text[:40]!r}",
            )
        empty = False
        yield number, query_id, corpus_id, float(score_text)
    if empty:
        raise IngestError(path, None, None, "holds no qrels rows (query-id, corpus-id, score)")


def _is_header(score: str) -> bool:
    """A header's score column ("score") holds a letter, no digit, and is no spelling of
    nan / inf (an empty score is an error, not a header)."""
    spelled = score.lower().lstrip("+-")
    return (
        any(c.isalpha() for c in score)
        and not any(c.isdigit() for c in score)
        and spelled not in ("nan", "inf", "infinity")
    )


def read_beir_labels(folder: Path) -> list[LabelledQuery]:
    """The queries of a BEIR folder that have qrels, with their labels, in qrels order."""
    folder = Path(folder)
    queries_path = folder / "queries.jsonl"
    if not queries_path.exists():
        raise IngestError(queries_path, None, None, "no such file (a BEIR folder has one)")
    qrels = sorted((folder / "qrels").glob("*.tsv"), key=lambda p: (p.stem != "train", p.name))
    if not qrels:
        raise IngestError(folder / "qrels", None, None, "no .tsv qrels files found")
    texts = read_beir_queries(queries_path)
    found: dict[str, LabelledQuery] = {}
    for path in qrels:
        split = split_of(path)
        for number, query_id, corpus_id, score in read_qrels(path):
            if query_id not in texts:
                raise IngestError(
                    path, number, "query-id", f"{query_id!r} is not in {queries_path.name}"
                )
            labelled = found.get(query_id)
            if labelled is None:
                text, task, query_line = texts[query_id]
                labelled = found[query_id] = LabelledQuery(
                    key=query_id,
                    text=text,
                    task=task,
                    split=split,
                    file=str(queries_path),
                    line=query_line,
                )
            labelled.add(corpus_id, score > 0, str(path), number, "corpus-id")
    return list(found.values())


def read_flag_labels(path: Path) -> list[LabelledQuery]:
    """The rows of a FlagEmbedding JSONL file (or of every ``.jsonl`` in a folder)."""
    path = Path(path)
    if not path.exists():
        raise IngestError(path, None, None, "no such file or folder")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise IngestError(path, None, None, "no .jsonl files found")
    found: list[LabelledQuery] = []
    for file in files:
        split = split_of(file)
        for number, raw in _read_some_lines(file):
            row = _json_line(file, number, raw)
            query = _text(row, "query", file, number)
            prompt = row.get("prompt")
            if prompt is not None and not isinstance(prompt, str):
                raise IngestError(
                    file, number, "prompt", f"must be a string, got {type(prompt).__name__}"
                )
            labelled = LabelledQuery(
                key=f"{file.name}:{number}",
                text=query,
                task=prompt if prompt and prompt.strip() else None,
                split=split,
                file=str(file),
                line=number,
            )
            for name, positive in (("pos", True), ("neg", False)):
                values = row.get(name, [] if name == "neg" else None)
                if values is None:
                    raise IngestError(file, number, name, "missing (required)")
                if not isinstance(values, list):
                    raise IngestError(
                        file, number, name, f"must be a list of texts, got {type(values).__name__}"
                    )
                for i, value in enumerate(values):
                    if not isinstance(value, str) or text_problem(value):
                        problem = text_problem(value) if isinstance(value, str) else None
                        raise IngestError(
                            file, number, f"{name}[{i}]", problem or "must be a non-empty text"
                        )
                    labelled.add(value, positive, str(file), number, f"{name}[{i}]")
            if not labelled.positives:
                raise IngestError(file, number, "pos", "needs at least one text")
            found.append(labelled)
    return found


@dataclass
class BeirDataset:
    """A BEIR folder read for evaluation: the corpus in file order, the queries that have
    a qrels line in the split, and the qrels ``{query id: {corpus id: score}}``."""

    documents: list[SourceRecord]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def read_beir(folder: Path, split: str = "test") -> BeirDataset:
    """A BEIR dataset folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``)
    through the project's readers: any problem raises :class:`IngestError` naming the
    file, line and field (a missing file: ``FileNotFoundError``)."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for path in (folder / "corpus.jsonl", folder / "queries.jsonl", qrels_path):
        if not path.exists():
            raise FileNotFoundError(f"{path}: not found (a BEIR folder needs it)")
    qrels: dict[str, dict[str, int]] = {}
    for _, query_id, doc_id, score in read_qrels(qrels_path):
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    queries = {
        query_id: text
        for query_id, (text, _, _) in read_beir_queries(folder / "queries.jsonl").items()
        if query_id in qrels
    }
    documents = []
    for record in read_records(folder / "corpus.jsonl", "beir"):
        if isinstance(record, IngestError):
            raise record
        documents.append(record)
    return BeirDataset(documents, queries, qrels)
