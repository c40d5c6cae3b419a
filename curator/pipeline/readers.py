"""Streaming readers for corpus files: BEIR / generic JSONL, CSV, TSV, Parquet, folders.

Each reader yields :class:`SourceRecord` for a good record and :class:`IngestError` for a
bad one (the caller decides to abort or skip), and raises :class:`IngestError` for a file
that cannot be read at all (empty, binary, missing column). Files are read line by line
(Parquet batch by batch), never whole, so memory does not grow with the file.

Every error names the file, the line (or Parquet row) and the field.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder")
FOLDER_SUFFIXES = (".txt", ".md")
_SNIFF_BYTES = 8192

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class SourceRecord:
    """One document as read from a file, before chunking."""

    doc_id: str
    title: str
    text: str
    source_file: str
    line: int


class IngestError(ValueError):
    """A problem with an input file, located by file, line (or row) and field."""

    def __init__(self, file: str | Path, line: int | None, field: str | None, message: str) -> None:
        self.file = str(file)
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f" field '{self.field}':" if self.field else ""
        return f"{where}:{what} {self.message}"


@dataclass(frozen=True)
class FieldMap:
    """Which fields hold the id, title and text. ``id=None`` picks ``_id`` or ``id``."""

    id: str | None = None
    title: str | None = "title"
    text: str = "text"


DEFAULT_FIELDS = FieldMap()


def detect_format(path: Path) -> str:
    """The reader for ``path`` from its kind and suffix; raises IngestError if unknown."""
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv",):
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise IngestError(
        path,
        None,
        None,
        f"cannot tell the format from the suffix {suffix!r}; pass --format "
        "(one of jsonl, beir, csv, tsv, parquet, folder)",
    )


def progress_total(path: Path, fmt: str) -> tuple[int, str]:
    """The amount of work ``read_records`` will report: (total, unit)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows, "rows"
        except Exception:
            return 0, "rows"
    if fmt == "folder":
        return sum(p.stat().st_size for p in _folder_files(path)), "B"
    return path.stat().st_size, "B"


def read_records(
    path: Path,
    fmt: str = "auto",
    fields: FieldMap = DEFAULT_FIELDS,
    *,
    encoding: str = "utf-8",
    on_progress: ProgressFn | None = None,
) -> Iterator[SourceRecord | IngestError]:
    """Yield the documents of ``path`` (a file or a folder) in file order."""
    if not path.exists():
        raise IngestError(path, None, None, "no such file or folder")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise IngestError(path, None, None, f"unknown format {fmt!r}; use one of {FORMATS}")
    progress = on_progress or (lambda _n: None)
    if fmt == "folder":
        return _read_folder(path, encoding, progress)
    if path.is_dir():
        raise IngestError(path, None, None, f"is a folder; use --format folder, not {fmt}")
    if fmt == "parquet":
        return _read_parquet(path, fields, progress)
    _check_text_file(path)
    if fmt == "beir":
        fields = FieldMap(id="_id", title="title", text="text")
        fmt = "jsonl"
    if fmt == "jsonl":
        return _read_jsonl(path, fields, encoding, progress)
    return _read_delimited(path, fields, encoding, "," if fmt == "csv" else "\t", progress)


def _check_text_file(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.strip():
        raise IngestError(path, None, None, "file is empty")
    if b"\x00" in head:
        raise IngestError(
            path,
            None,
            None,
            "looks like a binary file (NUL bytes in its first 8 KB), not JSONL/CSV/TSV text",
        )


def _decoded_lines(
    path: Path, encoding: str, progress: ProgressFn
) -> Iterator[tuple[int, str | IngestError]]:
    """(line number, text) for each line; an undecodable line gives an IngestError."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            progress(len(raw))
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield (
                    number,
                    IngestError(
                        path,
                        number,
                        None,
                        f"not valid {encoding} (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1}); convert the file (e.g. iconv -f latin1 -t utf-8) "
                        "or pass --encoding",
                    ),
                )


def _resolve_id_field(fields: FieldMap, available: Iterable[str]) -> str:
    if fields.id is not None:
        return fields.id
    names = set(available)
    for candidate in ("_id", "id"):
        if candidate in names:
            return candidate
    return "_id"


def _record_from_mapping(
    row: dict[str, Any], fields: FieldMap, id_field: str, path: Path, line: int
) -> SourceRecord | IngestError:
    """Check one row's fields and turn it into a record (or the error that says why not)."""
    for name, required in ((id_field, True), (fields.text, True)):
        value = row.get(name)
        if value is None or (required and isinstance(value, str) and not value.strip()):
            state = "missing" if name not in row or row.get(name) is None else "empty"
            return IngestError(path, line, name, f"{state} (required)")
    doc_id = row[id_field]
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        return IngestError(
            path, line, id_field, f"must be a string or integer, got {type(doc_id).__name__}"
        )
    text = row[fields.text]
    if not isinstance(text, str):
        return IngestError(path, line, fields.text, f"must be a string, got {type(text).__name__}")
    title: Any = row.get(fields.title, "") if fields.title else ""
    if title is None:
        title = ""
    if not isinstance(title, str):
        return IngestError(
            path, line, fields.title, f"must be a string, got {type(title).__name__}"
        )
    return SourceRecord(str(doc_id).strip(), title.strip(), text.strip(), str(path), line)


def _read_jsonl(
    path: Path, fields: FieldMap, encoding: str, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    id_field = fields.id
    for number, line in _decoded_lines(path, encoding, progress):
        if isinstance(line, IngestError):
            yield line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield IngestError(
                path, number, None, f"malformed JSON: {exc.msg} at column {exc.colno}"
            )
            continue
        if not isinstance(row, dict):
            yield IngestError(
                path, number, None, f"expected a JSON object, got {type(row).__name__}"
            )
            continue
        if id_field is None:
            id_field = _resolve_id_field(fields, row)
        yield _record_from_mapping(row, fields, id_field, path, number)


def _read_delimited(
    path: Path, fields: FieldMap, encoding: str, delimiter: str, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    state = {"line": 0, "error": None}

    def lines() -> Iterator[str]:
        for number, line in _decoded_lines(path, encoding, progress):
            state["line"] = number
            if isinstance(line, IngestError):
                state["error"] = line
                yield "\n"  # keep the CSV reader going; the error is reported in its place
            else:
                yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise IngestError(path, None, None, "file is empty") from None
    except csv.Error as exc:
        raise IngestError(path, 1, None, f"unreadable header: {exc}") from None
    if state["error"] is not None:
        raise state["error"]
    header = [name.strip() for name in header]
    id_field = _resolve_id_field(fields, header)
    missing = [name for name in (id_field, fields.text) if name not in header]
    if missing:
        raise IngestError(
            path,
            1,
            missing[0],
            f"no such column in the header (columns: {', '.join(header)}); "
            "choose one with --id-field / --text-field",
        )
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield IngestError(
                path, state["line"], None, f"malformed {delimiter!r}-separated row: {exc}"
            )
            continue
        if state["error"] is not None:
            error, state["error"] = state["error"], None
            yield error
            continue
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != len(header):
            yield IngestError(
                path,
                state["line"],
                None,
                f"row has {len(values)} fields, the header has {len(header)}",
            )
            continue
        yield _record_from_mapping(
            dict(zip(header, values, strict=True)), fields, id_field, path, state["line"]
        )


def _read_parquet(
    path: Path, fields: FieldMap, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise IngestError(path, None, None, f"not a readable Parquet file: {exc}") from None
    names = parquet.schema_arrow.names
    id_field = _resolve_id_field(fields, names)
    for name in (id_field, fields.text):
        if name not in names:
            raise IngestError(
                path,
                None,
                name,
                f"no such column (columns: {', '.join(names)}); "
                "choose one with --id-field / --text-field",
            )
    columns = [id_field, fields.text] + ([fields.title] if fields.title in names else [])
    row_number = 0
    for batch in parquet.iter_batches(batch_size=2048, columns=columns):
        for row in batch.to_pylist():
            row_number += 1
            yield _record_from_mapping(row, fields, id_field, path, row_number)
        progress(batch.num_rows)


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
    )


def _read_folder(
    folder: Path, encoding: str, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    files = _folder_files(folder)
    if not files:
        raise IngestError(folder, None, None, f"no {'/'.join(FOLDER_SUFFIXES)} files in the folder")
    for file in files:
        raw = file.read_bytes()  # one document at a time; a document is a unit of text
        progress(len(raw))
        if b"\x00" in raw[:_SNIFF_BYTES]:
            yield IngestError(file, None, None, "looks like a binary file (NUL bytes)")
            continue
        try:
            text = raw.decode(encoding).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            yield IngestError(
                file, line, None, f"not valid {encoding} (byte 0x{raw[exc.start]:02x})"
            )
            continue
        if not text.strip():
            yield IngestError(file, None, "text", "file is empty")
            continue
        title, body = _split_markdown_title(text) if file.suffix.lower() == ".md" else ("", text)
        yield SourceRecord(
            file.relative_to(folder).as_posix(), title or file.stem, body.strip(), str(file), 1
        )


def _split_markdown_title(text: str) -> tuple[str, str]:
    """A leading ``# Heading`` line becomes the title; the rest is the text."""
    first, _, rest = text.lstrip().partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest
    return "", text
