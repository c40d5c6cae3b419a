"""Streaming readers for corpus files: BEIR / generic JSONL, CSV, TSV, Parquet, folders.

Each reader yields :class:`SourceRecord` for a good record and :class:`IngestError` for a
bad one (the caller decides to abort or skip), and raises :class:`IngestError` for a file
that cannot be read at all (empty, binary, missing column). Files are read line by line
(Parquet batch by batch), never whole, so memory does not grow with the file.

Every error names the file, the line (or Parquet row) and the field. The checks every
format shares live here too: ids and texts must hold a visible character and be valid
Unicode (no lone surrogates), a file must hold at least one record, a quote in a CSV/TSV
that is not closed is an error at the line where it opened, and a folder's symbolic links
that lead outside it are reported, not followed.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder")
FOLDER_SUFFIXES = (".txt", ".md")
_SNIFF_BYTES = 8192
MAX_ID_CHARS = 1000
#: Unicode categories that show nothing: controls, format characters (U+200B, U+FEFF...),
#: surrogates, private use, unassigned, and spaces / separators
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})

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
        self.file = printable(str(file))
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f" field '{self.field}':" if self.field else ""
        return f"{where}:{what} {self.message}"


def printable(text: str) -> str:
    """``text`` with lone surrogates (an undecodable file name) as ``\\udcXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unicode_problem(value: str) -> str | None:
    """Why ``value`` is not storable Unicode text (a lone surrogate, ``"\\ud800"`` in JSON;
    a NUL character, which PostgreSQL text refuses), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"holds a lone surrogate {value[exc.start]!r} at character {exc.start + 1} "
            "(not valid Unicode text)"
        )
    if "\x00" in value:
        return (
            f"holds a NUL character (U+0000) at character {value.index(chr(0)) + 1}, "
            "which a database text column cannot store"
        )
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id or a text (None when it can): not Unicode text, empty,
    or only invisible characters (U+200B, U+FEFF...)."""
    problem = unicode_problem(value)
    if problem:
        return problem
    if not value.strip():
        return "empty (required)"
    if all(unicodedata.category(char) in _INVISIBLE for char in value):
        return "only invisible characters (required)"
    return None


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id (None when it can): a text problem, or too long."""
    if len(value) > MAX_ID_CHARS:
        return f"{len(value):,} characters long (an id has at most {MAX_ID_CHARS:,})"
    return text_problem(value)


def require_file(path: Path) -> None:
    """Raise IngestError unless ``path`` is an existing file with a UTF-8 name."""
    if str(path) != printable(str(path)):
        raise IngestError(path, None, None, "the file name is not valid UTF-8; rename the file")
    if path.is_dir():
        raise IngestError(path, None, None, "is a folder, not a file")
    if not path.exists():
        raise IngestError(path, None, None, "no such file")


def read_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a text file (a UTF-8 BOM dropped);
    raises IngestError naming the file (and the line) for anything unreadable."""
    require_file(path)
    for number, line in _decoded_lines(path, encoding, lambda _n: None):
        if isinstance(line, IngestError):
            raise line
        if line.strip():
            yield number, line


def parse_json_line(path: Path, number: int, line: str) -> Any:
    """The JSON value of one line; IngestError (file, line, why) when it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise IngestError(
            path, number, None, f"malformed JSON: {exc.msg} at column {exc.colno}"
        ) from None
    except RecursionError:
        raise IngestError(path, number, None, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        reason = str(exc).split(":")[0]
        raise IngestError(path, number, None, f"malformed JSON: {reason}") from None


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
    if str(path) != printable(str(path)):
        raise IngestError(path, None, None, "the name is not valid UTF-8; rename it")
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
        return _at_least_one(path, _read_parquet(path, fields, progress))
    _check_text_file(path)
    if fmt == "beir":
        fields = FieldMap(id="_id", title="title", text="text")
        fmt = "jsonl"
    if fmt == "jsonl":
        return _at_least_one(path, _read_jsonl(path, fields, encoding, progress))
    delimiter = "," if fmt == "csv" else "\t"
    return _at_least_one(path, _read_delimited(path, fields, encoding, delimiter, progress))


def _at_least_one(
    path: Path, items: Iterator[SourceRecord | IngestError]
) -> Iterator[SourceRecord | IngestError]:
    """``items``, then an IngestError if there were none (a header-only CSV, a JSONL of
    blank lines or only a byte-order mark): a file without records is refused."""
    empty = True
    for item in items:
        empty = False
        yield item
    if empty:
        raise IngestError(path, None, None, "holds no records")


def _check_text_file(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
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
    for name in (id_field, fields.text):
        if row.get(name) is None:
            return IngestError(path, line, name, "missing (required)")
    doc_id = row[id_field]
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        return IngestError(
            path, line, id_field, f"must be a string or integer, got {type(doc_id).__name__}"
        )
    doc_id = str(doc_id)
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
    for name, problem in ((id_field, id_problem(doc_id)), (fields.text, text_problem(text))):
        if problem:
            return IngestError(path, line, name, problem)
    if unicode_problem(title):
        return IngestError(path, line, fields.title, unicode_problem(title))
    return SourceRecord(doc_id.strip(), title.strip(), text.strip(), str(path), line)


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
            row = parse_json_line(path, number, line)
        except IngestError as error:
            yield error
            continue
        if not isinstance(row, dict):
            yield IngestError(
                path, number, None, f"expected a JSON object, got {type(row).__name__}"
            )
            continue
        if id_field is None:
            id_field = _resolve_id_field(fields, row)
        yield _record_from_mapping(row, fields, id_field, path, number)


class _ReplayableLines:
    """The decoded lines of a file for ``csv.reader``, remembering the lines of the record
    being read (``taken``) so that they can be fed again (``replay``)."""

    def __init__(self, source: Iterator[tuple[int, str | IngestError]]) -> None:
        self.source = source
        self.replay: deque[tuple[int, str | IngestError]] = deque()
        self.taken: list[tuple[int, str | IngestError]] = []

    def __iter__(self) -> _ReplayableLines:
        return self

    def __next__(self) -> str:
        item = self.replay.popleft() if self.replay else next(self.source)
        self.taken.append(item)
        # an undecodable line stays in ``taken`` and is reported in place of its record
        return "\n" if isinstance(item[1], IngestError) else item[1]


def delimited_rows(
    path: Path,
    delimiter: str,
    encoding: str = "utf-8",
    progress: ProgressFn | None = None,
    names: list[str] | None = None,
) -> Iterator[tuple[int, list[str] | IngestError]]:
    """(line where the record ends, its cells or the error) for each record of a CSV/TSV
    file, parsed strictly. A quoted field still open at the end of its line that never
    closes properly is an error at that line (naming the field from ``names``, which the
    caller may fill with the header once read); the lines after it are then read again
    as records of their own, so one stray quote costs one record, not the rest of the
    file. Undecodable lines are errors at their line; no field size limit applies."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    lines = _ReplayableLines(_decoded_lines(path, encoding, progress or (lambda _n: None)))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        lines.taken = []
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start, first = lines.taken[0] if lines.taken else (None, "")
            at_end = "unexpected end of data" in str(exc)  # a quote open on the last line
            if isinstance(first, str) and (len(lines.taken) > 1 or at_end):
                yield start, _unclosed_quote(path, start, first, delimiter, names, lines.taken)
                lines.replay.extendleft(reversed(lines.taken[1:]))
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
            else:
                yield start, IngestError(path, start, None, f"malformed row: {exc}")
            continue
        end = lines.taken[-1][0]
        undecodable = [line for _, line in lines.taken if isinstance(line, IngestError)]
        yield end, undecodable[0] if undecodable else cells


def _unclosed_quote(path, start, first, delimiter, names, taken) -> IngestError:
    """The error for a quote opened on line ``start`` (text ``first``) that never closed."""
    cells = next(csv.reader([first], delimiter=delimiter), [""])
    index = len(cells) - 1
    field = names[index] if names and index < len(names) else f"column {index + 1}"
    return IngestError(
        path,
        start,
        field,
        f"a quote opened on this line is not closed properly (it runs on to line "
        f'{taken[-1][0]}); close it, or double a quote inside a quoted field ("")',
    )


def _read_delimited(
    path: Path, fields: FieldMap, encoding: str, delimiter: str, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    header: list[str] = []
    rows = delimited_rows(path, delimiter, encoding, progress, header)
    for _, cells in rows:
        if isinstance(cells, IngestError):
            raise cells
        if cells and any(cell.strip() for cell in cells):
            header.extend(name.strip() for name in cells)
            break
    else:
        raise IngestError(path, None, None, "file is empty")
    id_field = _resolve_id_field(fields, header)
    missing = [name for name in (id_field, fields.text) if name not in header]
    if missing:
        raise IngestError(
            path,
            1,
            missing[0],
            f"no such column in the header ({_column_list(header)}); "
            "choose one with --id-field / --text-field",
        )
    for line, values in rows:
        if isinstance(values, IngestError):
            yield values
            continue
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != len(header):
            yield IngestError(
                path, line, None, f"row has {len(values)} fields, the header has {len(header)}"
            )
            continue
        yield _record_from_mapping(
            dict(zip(header, values, strict=True)), fields, id_field, path, line
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
                f"no such column ({_column_list(names)}); "
                "choose one with --id-field / --text-field",
            )
    columns = [id_field, fields.text] + ([fields.title] if fields.title in names else [])
    row_number = 0
    batches = parquet.iter_batches(batch_size=2048, columns=columns)
    while True:
        try:
            rows = next(batches).to_pylist()
        except StopIteration:
            return
        except Exception as exc:  # a corrupt page: pyarrow raises OSError and others
            reason = " ".join(str(exc).split())
            yield IngestError(
                path,
                row_number + 1,
                None,
                f"unreadable Parquet data from this row on ({reason}); the rest is not read",
            )
            return
        for row in rows:
            row_number += 1
            yield _record_from_mapping(row, fields, id_field, path, row_number)
        progress(len(rows))


def _folder_entries(folder: Path) -> list[Path | IngestError]:
    """The .txt / .md files of ``folder`` and its sub-folders, in name order, with an
    IngestError in place of a symbolic link that leads outside the folder (not followed)
    or a file whose name is not valid UTF-8."""
    root = folder.resolve()
    entries: list[Path | IngestError] = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            try:
                inside = path.resolve(strict=False).is_relative_to(root)
            except (RuntimeError, OSError):  # a loop of links (RuntimeError before 3.13)
                entries.append(IngestError(path, None, None, "a loop of symbolic links; not read"))
                continue
        if path.is_symlink() and not inside:
            entries.append(
                IngestError(
                    path, None, None, "a symbolic link that leads outside the folder; not read"
                )
            )
        elif path.is_file() and path.suffix.lower() in FOLDER_SUFFIXES:
            if str(path) != printable(str(path)):
                entries.append(
                    IngestError(path, None, None, "the file name is not valid UTF-8; rename it")
                )
            else:
                entries.append(path)
    return entries


def _folder_files(folder: Path) -> list[Path]:
    return [entry for entry in _folder_entries(folder) if isinstance(entry, Path)]


def _read_folder(
    folder: Path, encoding: str, progress: ProgressFn
) -> Iterator[SourceRecord | IngestError]:
    entries = _folder_entries(folder)
    if not entries:
        raise IngestError(folder, None, None, f"no {'/'.join(FOLDER_SUFFIXES)} files in the folder")
    for file in entries:
        if isinstance(file, IngestError):
            yield file
            continue
        raw = file.read_bytes()  # one document at a time; a document is a unit of text
        progress(len(raw))
        yield _folder_document(folder, file, raw, encoding)


def _folder_document(
    folder: Path, file: Path, raw: bytes, encoding: str
) -> SourceRecord | IngestError:
    """One .txt / .md file as a record (a leading ``# Heading`` of a .md is its title)."""
    if b"\x00" in raw[:_SNIFF_BYTES]:
        return IngestError(file, None, None, "looks like a binary file (NUL bytes)")
    try:
        text = raw.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return IngestError(file, line, None, f"not valid {encoding} (byte 0x{raw[exc.start]:02x})")
    if text_problem(text):
        return IngestError(
            file, 1, "text", "file is empty" if not text.strip() else text_problem(text)
        )
    title, body = _split_markdown_title(text) if file.suffix.lower() == ".md" else ("", text)
    if text_problem(body):
        return IngestError(file, 2 if title else 1, "text", "no text after the heading")
    return SourceRecord(
        file.relative_to(folder).as_posix(), title or file.stem, body.strip(), str(file), 1
    )


def _split_markdown_title(text: str) -> tuple[str, str]:
    """A leading ``# Heading`` line becomes the title; the rest is the text."""
    first, _, rest = text.lstrip().partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest
    return "", text


_COLUMN_NAME = re.compile(r"[^\W\d][\w .-]{0,39}")
MAX_LISTED_COLUMNS = 12


def _column_list(names: list[str]) -> str:
    """ "columns: a, b" for an error about a missing column: the names that look like
    column names (a letter first, then letters, digits, spaces, dots, dashes; <= 40
    characters), at most ``MAX_LISTED_COLUMNS``; a first line that holds none (a file
    that is not a table, e.g. a server path given by mistake) is not echoed."""
    listed = [name for name in names if _COLUMN_NAME.fullmatch(name)]
    if not listed:
        return "the first line holds no column names"
    more = len(listed) - MAX_LISTED_COLUMNS
    shown = ", ".join(listed[:MAX_LISTED_COLUMNS]) + (f", and {more} more" if more > 0 else "")
    return f"columns: {shown}"
