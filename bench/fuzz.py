"""Malformed and hostile input through the real CLI: ``curator ingest`` and ``curator import``.

Each case writes files (a corpus in JSONL / BEIR / CSV / TSV / Parquet / a folder of
.txt and .md, or labels as a BEIR folder or FlagEmbedding JSONL) into a fresh data folder
copied from a template that already holds 20 passages, runs ``curator.cli.main`` in this
process, and checks, by hashing every stored row before and after:

- no traceback (an exception out of ``main`` or ``Traceback`` on stderr);
- a malformed input is an error that names the file, the line (where the case has one)
  and the field (where there is one); nothing of it is stored (abort), nothing stored
  before changes;
- with ``--on-error skip`` (ingest) the good records are all stored and the bad one is
  listed, not stored;
- a well-formed input (hostile-looking text, BOMs, CRLF, quoted newlines...) is stored
  exactly.

    python bench/fuzz.py                      # 1,200 cases, seed 0
    python bench/fuzz.py --cases 100 --seed 3 --verbose

Prints the counts: tried / clear error / accepted (well-formed) / traceback / data lost /
silent acceptance / unlocated error / wrongly refused. Exit code 1 if any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BASELINE = 20  # passages b0..b19 in the template project
DIR = object()  # a file entry that is a folder


@dataclass(frozen=True)
class Link:
    """A symbolic link to ``target`` (relative to the case folder unless absolute)."""

    target: str
    outside: bool = False  # the target is made outside the case's input folder


@dataclass
class Case:
    """One input and what must happen to it.

    ``files``: relative path -> bytes, ``DIR`` or a ``Link``; ``target`` the path given to
    the CLI; ``bad``: (file name, line or None, field or None) the error must name, None
    for a well-formed input; ``good``: id -> text that must be stored (ingest, with
    ``--on-error skip`` when ``bad``); ``queries``: queries an accepted import stores."""

    name: str
    command: str  # ingest | import
    files: dict[str, object]
    target: str
    args: list[str] = field(default_factory=list)
    bad: tuple[str, int | None, str | None] | None = None
    good: dict[str, str] = field(default_factory=dict)
    skip: bool = True  # also run with --on-error skip
    queries: int = 0


# --- random but valid content ------------------------------------------------------------

WORDS = ["tea", "leaf", "planet", "orbit", "rust", "memory", "bread", "flour", "violin"]
WORDS += ["bow", "rice", "grass", "river", "stone"]
SPICE = [
    "café",
    "naïve",
    "中文文本",
    "emoji 🚀",
    "שלום",
    "<script>alert(1)</script>",
    "'; DROP TABLE passages; --",
    "100% _under_ back\\slash",
    '"quoted"',
    "tab\tinside",
    "a,comma",
]


def good_text(rng: random.Random, n: int, *, newline: bool = False) -> str:
    words = rng.choices(WORDS, k=rng.randint(3, 12))
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words) + 1), rng.choice(SPICE))
    if newline and rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), "\nsecond line")
    return f"t{n}-{rng.randrange(10**9)} " + " ".join(words)


def good_records(rng: random.Random, *, newline: bool = False) -> list[tuple[str, str, str]]:
    count = rng.randint(2, 5)
    return [
        (
            f"c{n}-{rng.randrange(10**6)}",
            rng.choice(["", "A title", "Überschrift"]),
            good_text(rng, n, newline=newline),
        )
        for n in range(count)
    ]


# --- malformed records ---------------------------------------------------------------------
# each: (name, JSON line text or bytes, field or None); "ID" and "TEXT" are the id and text
# fields' names, filled in by the format

INVISIBLE = ["", " ", "\u200b", "\ufeff", "\u2060", "\u00a0", "\u3000", " \u200b ", "\t", "\x01"]


def json_mutations(rng: random.Random, id_field: str) -> list[tuple[str, str | bytes, str | None]]:
    ok_id, ok_text = f"x{rng.randrange(10**6)}", "fine text here"
    obj = {id_field: ok_id, "text": ok_text}

    def with_(key, value):
        return json.dumps({**obj, key: value})

    invisible = rng.choice(INVISIBLE)
    return [
        ("truncated", json.dumps(obj)[: rng.randint(1, 20)], None),
        ("array", json.dumps([ok_id, ok_text]), None),
        ("number", "42", None),
        ("string", '"just a string"', None),
        ("null", "null", None),
        ("missing-id", json.dumps({"text": ok_text}), id_field),
        ("missing-text", json.dumps({id_field: ok_id}), "text"),
        ("id-null", with_(id_field, None), id_field),
        ("text-null", with_("text", None), "text"),
        ("id-float", with_(id_field, 1.5), id_field),
        ("id-list", with_(id_field, [1]), id_field),
        ("id-object", with_(id_field, {"a": 1}), id_field),
        ("id-bool", with_(id_field, True), id_field),
        ("id-nan", json.dumps(obj).replace(json.dumps(ok_id), "NaN"), id_field),
        ("text-int", with_("text", 5), "text"),
        ("text-list", with_("text", ["a"]), "text"),
        ("text-infinity", json.dumps(obj).replace(json.dumps(ok_text), "Infinity"), "text"),
        ("title-int", with_("title", 7), "title"),
        ("title-object", with_("title", {"t": 1}), "title"),
        ("text-surrogate", json.dumps(obj).replace("fine", "fine \\ud800"), "text"),
        (
            "id-surrogate",
            json.dumps({**obj, id_field: "PLACE"}).replace("PLACE", "a\\udfff"),
            id_field,
        ),
        ("title-surrogate", with_("title", "PLACE").replace("PLACE", "\\udbff"), "title"),
        ("id-invisible", with_(id_field, invisible), id_field),
        ("text-invisible", with_("text", invisible), "text"),
        ("text-nul", with_("text", "has a \x00 nul"), "text"),
        ("id-nul", with_(id_field, "a\x00b"), id_field),
        ("id-huge", with_(id_field, "x" * rng.choice([1001, 5000, 100_000])), id_field),
        ("huge-int", with_("n", 0).replace(": 0", ": " + "9" * rng.randint(4301, 9000)), None),
        ("deep-array", "[" * rng.choice([1000, 100_000]) + "]" * 10, None),
        ("deep-object", '{"a":' * rng.choice([1000, 50_000]), None),
        ("bad-utf8", json.dumps(obj).encode().replace(b"fine", b"fin\xe9"), None),
        ("bad-utf8-lead", b'{"\xff\xfe": 1}', None),
        ("trailing-garbage", json.dumps(obj) + " }", None),
        ("two-objects", json.dumps(obj) + json.dumps(obj), None),
        ("single-quotes", str(obj), None),
    ]


# --- writers ------------------------------------------------------------------------------


def jsonl_lines(records, id_field="_id") -> list[str]:
    return [
        json.dumps({id_field: i, "title": t, "text": x}, ensure_ascii=bool(n % 2))
        for n, (i, t, x) in enumerate(records)
    ]


def join_lines(lines: list[str | bytes], newline: bytes = b"\n") -> bytes:
    return (
        newline.join(
            line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass")
            for line in lines
        )
        + newline
    )


def csv_rows(records, delimiter: str) -> list[str]:
    """Each record as its CSV/TSV text (a quoted field may hold newlines)."""
    import csv

    rows = []
    for record in records:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(record)
        rows.append(buffer.getvalue()[:-1])
    return rows


# --- case families ------------------------------------------------------------------------


def jsonl_case(rng: random.Random, beir: bool) -> Case:
    """A JSONL / BEIR corpus with one malformed line, or a well-formed variant."""
    records = good_records(rng)
    id_field = "_id"
    name = "c.jsonl"
    args = ["--format", "beir"] if beir else []
    lines = jsonl_lines(records, id_field)
    good = {i: x for i, _t, x in records}
    fmt = "beir" if beir else "jsonl"
    if rng.random() < 0.2:
        return well_formed_jsonl(rng, fmt, records, lines, args)
    label, line, field_name = rng.choice(json_mutations(rng, id_field))
    at = rng.randint(0, len(lines))
    if rng.random() < 0.05:  # an id already used, with other text: later in file or stored
        other = rng.choice([records[0][0], f"b{rng.randrange(BASELINE)}"])
        at = len(lines)
        label, line, field_name = "dup-id", json.dumps({id_field: other, "text": "other"}), "id"
    lines.insert(at, line)
    if rng.random() < 0.3:  # blank lines around do not move the numbers
        lines.insert(0, "")
        at += 1
    return Case(
        f"{fmt}/{label}",
        "ingest",
        {name: join_lines(lines)},
        name,
        args,
        (name, at + 1, field_name),
        good,
    )


def well_formed_jsonl(rng, fmt, records, lines, args) -> Case:
    good = {i: x for i, _t, x in records}
    variant = rng.choice(
        [
            "bom",
            "crlf",
            "blank-lines",
            "int-id",
            "extra-fields",
            "no-title",
            "dup-same",
            "dup-text",
            "long-text",
        ]
    )
    name = "c.jsonl"
    data = join_lines(lines)
    if variant == "bom":
        data = b"\xef\xbb\xbf" + data
    elif variant == "crlf":
        data = join_lines(lines, b"\r\n")
    elif variant == "blank-lines":
        data = join_lines([part for line in lines for part in (line, "")])
    elif variant == "int-id":
        number = rng.randrange(10**12)
        data += json.dumps({"_id": number, "text": "an integer id"}).encode() + b"\n"
        good[str(number)] = "an integer id"
    elif variant == "extra-fields":
        data += (
            json.dumps({"_id": "xf", "text": "extra", "meta": {"a": [1, None]}, "n": 1.5}).encode()
            + b"\n"
        )
        good["xf"] = "extra"
    elif variant == "no-title":
        data += json.dumps({"_id": "nt", "text": "no title", "title": None}).encode() + b"\n"
        good["nt"] = "no title"
    elif variant == "dup-same":
        data += lines[0].encode() + b"\n"
    elif variant == "dup-text":  # same text under another id: stored once
        data += (
            json.dumps({"_id": "dupid", "title": records[0][1], "text": records[0][2]}).encode()
            + b"\n"
        )
    elif variant == "long-text":
        text = "long " * rng.randint(20_000, 60_000)
        data += json.dumps({"_id": "long", "text": text}).encode() + b"\n"
        good["long"] = text.strip()
    return Case(f"{fmt}/ok-{variant}", "ingest", {name: data}, name, args, None, good)


def delimited_case(rng: random.Random, delimiter: str) -> Case:
    """A CSV / TSV corpus with one malformed row, or a well-formed one."""
    suffix = "csv" if delimiter == "," else "tsv"
    name = f"c.{suffix}"
    records = good_records(rng, newline=True)
    if delimiter == "\t":
        records = [(i, t, x.replace("\t", " ")) for i, t, x in records]
    rows = csv_rows(records, delimiter)
    good = {i: x for i, _t, x in records}
    header = delimiter.join(["id", "title", "text"])
    d = delimiter
    mutations = [
        ("unclosed-quote", f'bad{d}t{d}"never closed', "text"),
        ("unclosed-quote-title", f'bad{d}"open title{d}text', "title"),
        ("quote-after-close", f'bad{d}t{d}"closed" then more', None),
        ("too-few", f"bad{d}only", None),
        ("too-many", f"bad{d}t{d}x{d}extra", None),
        ("empty-id", f"{d}t{d}some text", "id"),
        ("empty-text", f"bad{d}t{d}", "text"),
        ("invisible-id", f"\u200b{d}t{d}some text", "id"),
        ("invisible-text", f"bad{d}t{d}\ufeff\u2060", "text"),
        ("nbsp-text", f"bad{d}t{d}\u00a0\u00a0", "text"),
        ("huge-id", f"{'i' * 5000}{d}t{d}some text", "id"),
        ("bad-utf8", f"bad{d}t{d}caf".encode() + b"\xe9", None),
        ("control-only", f"bad{d}t{d}\x01\x02", "text"),
    ]
    if rng.random() < 0.2:
        variant = rng.choice(["crlf", "bom", "quoted", "blank", "big-field", "reordered"])
        lines = [header, *rows]
        if variant == "reordered":
            lines = [d.join(["text", "id", "title"])] + [
                csv_rows([(x, i, t)], delimiter)[0] for i, t, x in records
            ]
        data = join_lines(lines)
        if variant == "crlf":
            data = join_lines(lines, b"\r\n")
        elif variant == "bom":
            data = b"\xef\xbb\xbf" + data
        elif variant == "blank":
            data = join_lines([header, "", *rows, ""])
        elif variant == "quoted":
            data += f'q1{d}"t"{d}"say ""hi""\nand more"\n'.encode()
            good["q1"] = 'say "hi"\nand more'
        elif variant == "big-field":
            text = "big " * 60_000
            data += f"big{d}{d}{text}\n".encode()
            good["big"] = text.strip()
        return Case(f"{suffix}/ok-{variant}", "ingest", {name: data}, name, [], None, good)
    if rng.random() < 0.05:  # a NUL byte makes the whole file binary, not one bad row
        rows.insert(rng.randint(0, len(rows)), f"bad{d}t{d}a\x00b")
        data = join_lines([header, *rows])
        return Case(
            f"{suffix}/nul-byte", "ingest", {name: data}, name, [], (name, None, None), skip=False
        )
    label, bad, field_name = rng.choice(mutations)
    at = rng.randint(0, len(rows))
    rows.insert(at, bad)
    line = 2 + sum(row.count("\n") + 1 for row in rows[:at])
    return Case(
        f"{suffix}/{label}",
        "ingest",
        {name: join_lines([header, *rows])},
        name,
        [],
        (name, line, field_name),
        good,
    )


def file_level_case(rng: random.Random) -> Case:
    """A file that cannot be read at all: empty, binary, a folder, the wrong format..."""
    fmt = rng.choice(["jsonl", "csv", "tsv", "parquet"])
    name = f"c.{fmt}"
    valid = join_lines(jsonl_lines(good_records(rng)))
    variants: list[tuple[str, object, list[str]]] = [
        ("empty", b"", []),
        ("whitespace", b"  \n\t\n\n", []),
        ("bom-only", b"\xef\xbb\xbf", []),
        ("bom-blank", b"\xef\xbb\xbf\n\n\n", []),
        ("binary", bytes(rng.randrange(256) for _ in range(2000)) + b"\x00", []),
        ("gzip", gzip.compress(valid), []),
        ("folder", DIR, []),
        ("header-only", b"id,title,text\n" if fmt != "tsv" else b"id\ttitle\ttext\n", []),
        ("no-id-column", b"name,text\na,b\n" if fmt != "tsv" else b"name\ttext\na\tb\n", []),
        ("no-text-column", b"id,body\na,b\n" if fmt != "tsv" else b"id\tbody\na\tb\n", []),
        ("wrong-field-flag", valid, ["--text-field", "nope"]),
    ]
    label, content, args = rng.choice(variants)
    if fmt == "jsonl" and label in ("header-only", "no-id-column", "no-text-column"):
        label, content = "not-json", b"id,title,text\n"
    if fmt == "parquet" and label in ("header-only", "no-id-column", "no-text-column"):
        label = "text-as-parquet"
    if fmt in ("csv", "tsv") and label in ("no-id-column", "no-text-column"):
        # without --id-field the id column is _id or id; the error names the one expected
        line, field_name = 1, "_id" if label == "no-id-column" else "text"
        return Case(
            f"file/{fmt}-{label}",
            "ingest",
            {name: content},
            name,
            args,
            (name, line, field_name),
            skip=False,
        )
    if label == "wrong-field-flag":
        if fmt in ("parquet",):
            content = valid  # a JSONL file named .parquet
            label = "jsonl-as-parquet"
        elif fmt != "jsonl":
            content = b"id,title,text\na,b,c\n" if fmt == "csv" else b"id\ttitle\ttext\na\tb\tc\n"
    return Case(
        f"file/{fmt}-{label}", "ingest", {name: content}, name, args, (name, None, None), skip=False
    )


def other_file_case(rng: random.Random) -> Case:
    """Paths that are not a corpus: missing, unknown suffix, undecodable name, a format
    forced on the wrong file, latin-1 text."""
    label = rng.choice(
        ["missing", "suffix", "bad-name", "forced-format", "latin1", "format-folder"]
    )
    records = good_records(rng)
    valid = join_lines(jsonl_lines(records))
    if label == "missing":
        return Case(
            "path/missing",
            "ingest",
            {},
            "nothing.jsonl",
            [],
            ("nothing.jsonl", None, None),
            skip=False,
        )
    if label == "suffix":
        return Case(
            "path/suffix",
            "ingest",
            {"c.xyz": valid},
            "c.xyz",
            [],
            ("c.xyz", None, None),
            skip=False,
        )
    if label == "bad-name":
        name = os.fsdecode(b"c\xe9.jsonl")
        return Case(
            "path/bad-name",
            "ingest",
            {name: valid},
            name,
            [],
            ("c\\udce9.jsonl", None, None),
            skip=False,
        )
    if label == "forced-format":
        fmt = rng.choice(["parquet", "csv"])
        if fmt == "parquet":
            return Case(
                "path/jsonl-as-parquet",
                "ingest",
                {"c.jsonl": valid},
                "c.jsonl",
                ["--format", "parquet"],
                ("c.jsonl", None, None),
                skip=False,
            )
        return Case(
            "path/parquet-as-csv",
            "ingest",
            {"c.parquet": parquet_bytes(records)},
            "c.parquet",
            ["--format", "csv"],
            ("c.parquet", None, None),
            skip=False,
        )
    if label == "format-folder":
        return Case(
            "path/folder-as-jsonl",
            "ingest",
            {"d/a.txt": b"text"},
            "d",
            ["--format", "jsonl"],
            ("d", None, None),
            skip=False,
        )
    lines = jsonl_lines(records)
    at = rng.randint(0, len(lines))
    lines.insert(
        at,
        json.dumps({"_id": "lat", "text": "café au lait"}, ensure_ascii=False)
        .encode()
        .replace("é".encode(), b"\xe9"),
    )
    good = {i: x for i, _t, x in records}
    return Case(
        "path/latin1-line",
        "ingest",
        {"c.jsonl": join_lines(lines)},
        "c.jsonl",
        [],
        ("c.jsonl", at + 1, None),
        good,
    )


def parquet_bytes(records, **columns) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {
        "id": [r[0] for r in records],
        "title": [r[1] for r in records],
        "text": [r[2] for r in records],
    }
    data.update(columns)
    buffer = io.BytesIO()
    pq.write_table(pa.table(data), buffer)
    return buffer.getvalue()


PARQUET_LABELS = [
    "null-id",
    "null-text",
    "empty-text",
    "invisible-id",
    "invisible-text",
    "huge-id",
    "nul-text",
    "binary-text",
    "int-text",
    "truncated",
    "corrupt-page",
    "zero-rows",
    "ok",
    "ok-int-id",
]


def table_bytes(columns: dict, **options) -> bytes:
    """A Parquet file of ``columns`` (name -> values), as bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, **options)
    return buffer.getvalue()


def parquet_case(rng: random.Random) -> Case:
    """A Parquet corpus with a bad row, a corrupt page, or a truncated file."""
    records = good_records(rng)
    good = {i: x for i, _t, x in records}
    name = "c.parquet"
    label = rng.choice(PARQUET_LABELS)
    at = rng.randint(0, len(records))
    if label in PARQUET_LABELS[:7]:  # one bad row
        bad_id = {"null-id": None, "invisible-id": rng.choice(INVISIBLE), "huge-id": "h" * 2000}
        bad_text = {"null-text": None, "empty-text": "", "invisible-text": "\u200b"}
        bad_text["nul-text"] = "a\x00b"
        rows = list(records)
        rows.insert(at, (bad_id.get(label, "bad"), "t", bad_text.get(label, "text")))
        field_name = "id" if "id" in label else "text"
        data = parquet_bytes(rows)
        return Case(
            f"parquet/{label}", "ingest", {name: data}, name, [], (name, at + 1, field_name), good
        )
    ids = [r[0] for r in records]
    texts = [r[2] for r in records]
    if label in ("binary-text", "int-text"):  # a text column of the wrong type
        if label == "binary-text":
            data = table_bytes(
                {"id": [*ids, "bin"], "text": [t.encode() for t in texts] + [b"\xff"]}
            )
        else:
            data = table_bytes({"id": ids, "text": list(range(len(records)))})
        return Case(f"parquet/{label}", "ingest", {name: data}, name, [], (name, 1, "text"), {})
    if label in ("truncated", "zero-rows"):
        data = parquet_bytes(records if label == "truncated" else [])
        if label == "truncated":
            data = data[: rng.randint(4, len(data) - 1)]
        return Case(
            f"parquet/{label}", "ingest", {name: data}, name, [], (name, None, None), skip=False
        )
    if label == "corrupt-page":
        return corrupt_parquet_case(rng, name)
    if label == "ok-int-id":
        numbers = list(range(7_000_000, 7_000_000 + len(records)))
        data = table_bytes({"id": numbers, "text": texts})
        good = {str(number): text for number, text in zip(numbers, texts, strict=True)}
        return Case("parquet/ok-int-id", "ingest", {name: data}, name, [], None, good)
    return Case("parquet/ok", "ingest", {name: parquet_bytes(records)}, name, [], None, good)


def corrupt_parquet_case(rng: random.Random, name: str) -> Case:
    """2,049-2,148 rows whose second row group's first page is overwritten: the first
    2,048 rows are kept with ``--on-error skip``, the error is at row 2,049."""
    import pyarrow.parquet as pq

    n = 2048 + rng.randint(1, 100)
    ids = [f"p{i}-{rng.randrange(10**6)}" for i in range(n)]
    columns = {"id": ids, "text": [f"row {i} text" for i in range(n)]}
    data = bytearray(table_bytes(columns, row_group_size=2048, compression="none"))
    metadata = pq.ParquetFile(io.BytesIO(bytes(data))).metadata
    offset = metadata.row_group(1).column(0).data_page_offset
    data[offset : offset + 16] = b"\xff" * 16
    good = {ids[i]: f"row {i} text" for i in range(2048)}
    return Case(
        "parquet/corrupt-page", "ingest", {name: bytes(data)}, name, [], (name, 2049, None), good
    )


def folder_case(rng: random.Random) -> Case:
    """A folder of .txt / .md files with one bad entry, or a well-formed one."""
    count = rng.randint(2, 4)
    files: dict[str, object] = {}
    good: dict[str, str] = {}
    for n in range(count):
        text = good_text(rng, n)
        path = f"docs/{'sub/' if rng.random() < 0.3 else ''}f{n}.{rng.choice(['txt', 'md'])}"
        if path.endswith(".md") and rng.random() < 0.5:
            files[path] = f"# Heading {n}\n{text}\n".encode()
        else:
            files[path] = text.encode()
        good[path.removeprefix("docs/")] = text.strip()
    label = rng.choice(
        [
            "empty",
            "whitespace",
            "invisible",
            "binary",
            "latin1",
            "heading-only",
            "link-out-file",
            "link-out-dir",
            "link-loop",
            "link-dangling-out",
            "bad-name",
            "ok",
            "ok-link-inside",
            "ok-other-files",
            "empty-folder",
            "no-text-files",
        ]
    )
    bad_name = "docs/bad.txt"
    line: int | None = None
    field_name: str | None = None
    if label == "empty":
        files[bad_name] = b""
    elif label == "whitespace":
        files[bad_name] = b" \n\t\n"
    elif label == "invisible":
        files[bad_name] = "\u200b\ufeff\u2060".encode()
    elif label == "binary":
        files[bad_name] = b"\x00\x01binary\x00"
    elif label == "latin1":
        files[bad_name] = b"line one\nline two caf\xe9\n"
        line = 2
    elif label == "heading-only":
        bad_name = "docs/bad.md"
        files[bad_name] = b"# Only a heading\n\n"
        field_name = "text"
    elif label == "link-out-file":
        files["outside/secret.txt"] = b"secret text outside"
        files[bad_name] = Link("outside/secret.txt", outside=True)
    elif label == "link-out-dir":
        files["outside/secret.txt"] = b"secret text outside"
        bad_name = "docs/leak"
        files[bad_name] = Link("outside", outside=True)
    elif label == "link-loop":
        files["docs/loop-b.txt"] = Link("docs/bad.txt")
        files[bad_name] = Link("docs/loop-b.txt")
        bad_name = "docs/"  # either link may be named
    elif label == "link-dangling-out":
        files[bad_name] = Link("/nonexistent/curator-fuzz.txt", outside=True)
    elif label == "bad-name":
        bad_name = os.fsdecode(b"docs/caf\xe9.txt")
        files[bad_name] = b"text under a latin-1 name"
        bad_name = "caf\\udce9.txt"
    elif label == "ok-link-inside":
        first = next(iter(good))
        alias = "alias" + first[first.rindex(".") :]  # .md keeps its heading as the title
        files[f"docs/{alias}"] = Link("docs/" + first)
        if files["docs/" + first].startswith(b"# "):  # same title and text: stored once
            good[alias] = good.pop(first)  # under the first name read
        else:  # the title is the file name, so the passages differ
            good[alias] = good[first]
    elif label == "ok-other-files":
        files["docs/image.png"] = b"\x89PNG\x00\x00"
        files["docs/notes.pdf"] = b"%PDF-1.4\x00"
    elif label in ("empty-folder", "no-text-files"):
        files = {"docs/keep/": DIR} if label == "empty-folder" else {"docs/a.pdf": b"%PDF"}
        return Case(
            f"folder/{label}", "ingest", files, "docs", [], ("docs", None, None), skip=False
        )
    if label.startswith("ok"):
        return Case(f"folder/{label}", "ingest", files, "docs", [], None, good)
    return Case(
        f"folder/{label}",
        "ingest",
        files,
        "docs",
        [],
        (bad_name.rsplit("/", 1)[-1] or "docs", line, field_name),
        good,
    )


def qrels_mutations(rng: random.Random) -> tuple[str, list[tuple[str, str | bytes, str | None]]]:
    """(the bad score drawn, the malformed qrels rows: (name, row, field))."""
    bad_score = rng.choice(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "1e999",
            "1_000",
            "\uff11",
            "0.5",
            "1.0",
            "",
            "one",
            "0x1",
            " ",
        ]
    )
    mutations = [
        ("score", f"q0\tb0\t{bad_score}", "score"),
        ("too-few", "q0\tb0", "score"),
        ("one-column", "q0", "corpus-id"),
        ("unknown-query", "nope\tb0\t1", "query-id"),
        ("unknown-passage", "q0\tnot-a-passage\t1", "corpus-id"),
        ("invisible-query", f"{rng.choice(INVISIBLE[1:])}\tb0\t1", "query-id"),
        ("invisible-passage", f"q0\t{rng.choice(INVISIBLE[1:])}\t1", "corpus-id"),
        ("huge-field", "q0\t" + "x" * rng.choice([2000, 200_000]) + "\t1", "corpus-id"),
        ("unclosed-quote", 'q0\t"b0\t1', "corpus-id"),
        ("bad-utf8", b"q0\tb\xe90\t1", None),
        ("nul", "q0\tb\x000\t1", "corpus-id"),
    ]
    return bad_score, mutations


def beir_file_case(rng: random.Random, files: dict[str, object], split: str) -> Case:
    """A BEIR folder (``files``, built) with a missing, empty or folder-shaped file."""
    label = rng.choice(
        [
            "no-queries",
            "queries-folder",
            "no-qrels",
            "qrels-folder-file",
            "empty-qrels",
            "header-only-qrels",
            "empty-queries",
        ]
    )
    where = {
        "no-queries": "queries.jsonl",
        "queries-folder": "queries.jsonl",
        "no-qrels": "qrels",
        "qrels-folder-file": "train.tsv",
        "empty-qrels": f"{split}.tsv",
        "header-only-qrels": f"{split}.tsv",
        "empty-queries": "queries.jsonl",
    }[label]
    if label == "no-queries":
        del files["beir/queries.jsonl"]
    elif label == "queries-folder":
        files["beir/queries.jsonl"] = DIR
        files["beir/queries.jsonl/x"] = b"x"
    elif label == "no-qrels":
        del files[f"beir/qrels/{split}.tsv"]
    elif label == "qrels-folder-file":
        files.pop("beir/qrels/train.tsv", None)
        files["beir/qrels/train.tsv/"] = DIR
    elif label == "empty-qrels":
        files[f"beir/qrels/{split}.tsv"] = b""
    elif label == "header-only-qrels":
        files[f"beir/qrels/{split}.tsv"] = b"query-id\tcorpus-id\tscore\n"
    elif label == "empty-queries":
        files["beir/queries.jsonl"] = b"\n"
    return Case(
        f"beir-import/{label}", "import", files, "beir", ["--format", "beir"], (where, None, None)
    )


def beir_import_case(rng: random.Random) -> Case:
    """A BEIR folder (queries.jsonl + qrels/*.tsv over the template's passages b0..b19)."""
    count = rng.randint(2, 4)
    queries = [(f"q{n}", good_text(rng, n)) for n in range(count)]
    qlines = [
        json.dumps(
            {
                "_id": q,
                "text": t,
                **({"metadata": {"task": "Find it"}} if rng.random() < 0.3 else {}),
            }
        )
        for q, t in queries
    ]
    qrels = [f"{q}\tb{rng.randrange(BASELINE)}\t{rng.choice([1, 1, 2])}" for q, _ in queries]
    if rng.random() < 0.3:
        qrels.append(f"{queries[0][0]}\tb{rng.randrange(BASELINE)}\t0")
    header = rng.random() < 0.7
    split = rng.choice(["test", "train", "dev"])
    files: dict[str, object] = {}

    def build():
        files["beir/queries.jsonl"] = join_lines(qlines)
        files[f"beir/qrels/{split}.tsv"] = join_lines(
            (["query-id\tcorpus-id\tscore"] if header else []) + qrels
        )

    kind = rng.choice(["ok", "queries", "queries", "qrels", "qrels", "qrels", "file"])
    if kind == "ok":
        build()
        return Case(
            "beir-import/ok", "import", files, "beir", ["--format", "beir"], None, queries=count
        )
    if kind == "queries":
        # queries.jsonl: only _id, text and metadata are read, so a bad title is no error
        mutations = [m for m in json_mutations(rng, "_id") if m[2] != "title"]
        label, line, field_name = rng.choice(mutations)
        at = rng.randint(0, len(qlines))
        qlines.insert(at, line)
        build()
        return Case(
            f"beir-import/queries-{label}",
            "import",
            files,
            "beir",
            ["--format", "beir"],
            ("queries.jsonl", at + 1, field_name),
        )
    if kind == "qrels":
        bad_score, mutations = qrels_mutations(rng)
        label, row, field_name = rng.choice(mutations)
        if label == "score" and bad_score.strip() == "":
            field_name = "score"
        at = rng.randint(0, len(qrels))
        if label == "score" and not header and at == 0 and bad_score.lower() in ("one",):
            at = 1  # a first line without digits is a header by design
        qrels.insert(at, row)
        build()
        return Case(
            f"beir-import/qrels-{label}",
            "import",
            files,
            "beir",
            ["--format", "beir"],
            (f"{split}.tsv", at + 1 + int(header), field_name),
        )
    build()
    return beir_file_case(rng, files, split)


def flag_import_case(rng: random.Random) -> Case:
    """FlagEmbedding JSONL (query, pos, neg, prompt) with one bad row, or well-formed."""
    count = rng.randint(2, 4)
    rows = []
    for n in range(count):
        row = {"query": good_text(rng, n), "pos": [good_text(rng, 100 + n)]}
        if rng.random() < 0.5:
            row["neg"] = [good_text(rng, 200 + n)]
        if rng.random() < 0.3:
            row["prompt"] = "Represent this for retrieval"
        rows.append(json.dumps(row))
    name = rng.choice(["train.jsonl", "test.jsonl"])
    mutations = [
        ("missing-query", json.dumps({"pos": ["p"]}), "query"),
        ("missing-pos", json.dumps({"query": "q"}), "pos"),
        ("pos-string", json.dumps({"query": "q", "pos": "p"}), "pos"),
        ("pos-empty", json.dumps({"query": "q", "pos": []}), "pos"),
        ("pos-item-int", json.dumps({"query": "q", "pos": [3]}), "pos[0]"),
        ("pos-item-invisible", json.dumps({"query": "q", "pos": ["ok", "\u200b"]}), "pos[1]"),
        ("neg-dict", json.dumps({"query": "q", "pos": ["p"], "neg": {"a": 1}}), "neg"),
        ("neg-item-null", json.dumps({"query": "q", "pos": ["p"], "neg": [None]}), "neg[0]"),
        ("prompt-int", json.dumps({"query": "q", "pos": ["p"], "prompt": 3}), "prompt"),
        ("query-invisible", json.dumps({"query": "\ufeff", "pos": ["p"]}), "query"),
        (
            "query-surrogate",
            json.dumps({"query": "PLACE", "pos": ["p"]}).replace("PLACE", "\\ud800"),
            "query",
        ),
        (
            "pos-surrogate",
            json.dumps({"query": "q", "pos": ["PLACE"]}).replace("PLACE", "\\udc00x"),
            "pos[0]",
        ),
        ("pos-nul", json.dumps({"query": "q", "pos": ["a\x00b"]}), "pos[0]"),
    ]
    kind = rng.random()
    if kind < 0.2:
        return Case(
            "flag-import/ok",
            "import",
            {f"flag/{name}": join_lines(rows)},
            f"flag/{name}",
            ["--format", "flag"],
            None,
            queries=count,
        )
    if kind < 0.3:
        label = rng.choice(["subfolder", "empty-folder", "empty-file"])
        if label == "subfolder":
            files = {f"flag/{name}": join_lines(rows), "flag/x.jsonl/": DIR}
            return Case(
                "flag-import/subfolder",
                "import",
                files,
                "flag",
                ["--format", "flag"],
                ("x.jsonl", None, None),
            )
        if label == "empty-folder":
            return Case(
                "flag-import/empty-folder",
                "import",
                {"flag/": DIR},
                "flag",
                ["--format", "flag"],
                ("flag", None, None),
            )
        return Case(
            "flag-import/empty-file",
            "import",
            {f"flag/{name}": b"\n\n"},
            f"flag/{name}",
            ["--format", "flag"],
            (name, None, None),
        )
    if kind < 0.6:
        label, line, field_name = rng.choice(mutations)
    else:
        # rows that are not JSON objects at all (the field mutations name _id / text)
        unparsable = [m for m in json_mutations(rng, "query") if m[2] is None]
        label, line, field_name = rng.choice(unparsable)
    at = rng.randint(0, len(rows))
    rows.insert(at, line)
    return Case(
        f"flag-import/{label}",
        "import",
        {f"flag/{name}": join_lines(rows)},
        f"flag/{name}",
        ["--format", "flag"],
        (name, at + 1, field_name),
    )


FAMILIES: list[tuple[str, Callable[[random.Random], Case]]] = [
    ("jsonl", lambda rng: jsonl_case(rng, beir=False)),
    ("beir", lambda rng: jsonl_case(rng, beir=True)),
    ("csv", lambda rng: delimited_case(rng, ",")),
    ("tsv", lambda rng: delimited_case(rng, "\t")),
    ("parquet", parquet_case),
    ("folder", folder_case),
    ("file", file_level_case),
    ("path", other_file_case),
    ("beir-import", beir_import_case),
    ("flag-import", flag_import_case),
]


def make_case(seed: int, index: int) -> Case:
    """Case ``index`` of the run with ``seed``: the families in turn, each seeded alone."""
    family = FAMILIES[index % len(FAMILIES)][1]
    return family(random.Random(f"{seed}:{index}"))


# --- running ------------------------------------------------------------------------------


def materialise(case: Case, root: Path) -> None:
    """Write the case's files under ``root`` (input files live in root/in)."""
    base = root / "in"
    base.mkdir(parents=True, exist_ok=True)
    for rel, content in sorted(case.files.items(), key=lambda item: isinstance(item[1], Link)):
        path = base / rel
        if content is DIR:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, Link):
            path.parent.mkdir(parents=True, exist_ok=True)
            target = (
                Path(content.target) if content.target.startswith("/") else base / content.target
            )
            path.symlink_to(target)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def table_hashes(db: Path) -> dict[tuple[str, int], str]:
    """(table, rowid) -> hash of the row, for every table of the SQLite file but the
    full-text index derived from ``passages`` and the ``jobs`` log of the runs."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
            # the full-text index's tables (migration 0007) are derived from passages; the
            # jobs table records each CLI run itself, the refused ones included
            if not name.startswith("passages_fts") and name != "jobs"
        ]
        hashes = {}
        for table in tables:
            for row in connection.execute(f'SELECT rowid, * FROM "{table}"'):
                hashes[(table, row[0])] = hashlib.sha256(repr(row[1:]).encode()).hexdigest()
        return hashes
    finally:
        connection.close()


def stored_passages(db: Path) -> dict[str, str]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(connection.execute("SELECT external_id, text FROM passages"))
    finally:
        connection.close()


def count_imported(db: Path) -> int:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return connection.execute(
            "SELECT count(*) FROM generated_queries WHERE model='imported'"
        ).fetchone()[0]
    finally:
        connection.close()


def run_cli(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text or None) of ``curator.cli.main(argv)``."""
    import traceback

    from curator.cli import main

    out, err = io.StringIO(), io.StringIO()
    trace = None
    code: int | None = None
    root = logging.getLogger()
    handlers = list(root.handlers)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:
            trace = traceback.format_exc()
        finally:
            for handler in set(root.handlers) - set(handlers):
                root.removeHandler(handler)
    text = err.getvalue()
    if trace is None and "Traceback (most recent call last)" in text:
        trace = text
    return code, out.getvalue(), text, trace


def error_lines(stderr: str) -> list[str]:
    return [
        line.strip()
        for line in stderr.splitlines()
        if line.startswith("error:") or line.strip().startswith("skipped:")
    ]


def located(lines: list[str], bad: tuple[str, int | None, str | None]) -> bool:
    """Whether an error line names the file, the line (if any) and the field (if any)."""
    name, line, field_name = bad
    for text in lines:
        if name not in text:
            continue
        if line is not None and not re.search(rf"{re.escape(name)}:{line}:", text):
            continue
        if field_name is not None and f"field '{field_name}'" not in text:
            continue
        return True
    return False


@dataclass
class Outcome:
    verdicts: list[str]  # one per run of the case
    detail: str = ""


def check_run(case: Case, template: Path, work: Path, mode: str) -> tuple[str, str]:
    """Run one case once (``mode``: abort / skip / import) in a fresh copy of the
    template; return (verdict, detail)."""
    data = work / "data"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template, data)
    materialise(case, work)
    db = data / "curator.db"
    before = table_hashes(db)
    target = str(work / "in" / case.target)
    argv = ["--data-dir", str(data), case.command, target, *case.args]
    if case.command == "ingest":
        argv += ["--on-error", mode]
    code, _out, err, trace = run_cli(argv)
    if trace is not None:
        return "traceback", trace.strip().splitlines()[-1][:300]
    after = table_hashes(db)
    changed = [
        key
        for key, digest in before.items()
        if after.get(key) != digest and key[0] != "pipeline_runs"
    ]
    changed += [k for k in before if k[0] == "pipeline_runs" and k not in after]
    if changed:
        return "data lost", f"stored rows changed: {changed[:3]}"
    new = {key for key in after if key not in before and key[0] != "pipeline_runs"}
    lines = error_lines(err)
    passages = stored_passages(db)
    baseline = {f"b{n}" for n in range(BASELINE)}
    added = {k: v for k, v in passages.items() if k not in baseline}
    if case.bad is None:  # well-formed: accepted, exactly
        if code != 0:
            return "wrongly refused", (lines or err.splitlines() or ["?"])[0][:300]
        if case.command == "import":
            imported = count_imported(db)
            if imported != case.queries:
                return "data lost", f"{imported} queries imported, {case.queries} expected"
            return "accepted", ""
        if added != case.good:
            missing = sorted(set(case.good) - set(added))
            extra = sorted(set(added) - set(case.good))
            wrong = sorted(k for k in case.good if k in added and added[k] != case.good[k])
            return (
                "data lost",
                f"missing {missing[:3]}, unexpected {extra[:3]}, altered {wrong[:3]}",
            )
        return "accepted", ""
    if code == 0 and not lines:
        return "silent acceptance", f"exit 0, no error; {len(new)} rows added"
    if mode == "skip" and case.command == "ingest":
        if any(k not in case.good for k in added):
            return "silent acceptance", f"stored {sorted(set(added) - set(case.good))[:3]}"
        if code == 0 and added != case.good:
            return "data lost", f"good records not kept: {sorted(set(case.good) - set(added))[:3]}"
        if code != 0 and case.skip and case.good:
            return "data lost", f"exit {code} in skip mode: {(lines or ['?'])[0][:200]}"
    elif new:
        return "data lost", f"rows stored although the input was refused: {sorted(new)[:3]}"
    if not located(lines, case.bad):
        return (
            "unlocated error",
            f"want {case.bad}: {(lines or err.splitlines() or ['?'])[0][:300]}",
        )
    if any(len(line) > 2000 for line in lines):
        return "unlocated error", "an error line over 2,000 characters"
    return "clear error", ""


def run_case(case: Case, template: Path, work: Path) -> list[tuple[str, str]]:
    """The verdicts of a case: one run for imports and well-formed or file-level inputs,
    abort then skip for a bad record."""
    if case.command == "import":
        return [check_run(case, template, work, "import")]
    modes = ["abort", "skip"] if case.bad is not None and case.skip else ["abort"]
    return [check_run(case, template, work, mode) for mode in modes]


def make_template(folder: Path) -> Path:
    """A data folder whose default project holds passages b0..b19."""
    data = folder / "template"
    corpus = folder / "baseline.jsonl"
    corpus.write_text(
        "".join(
            json.dumps(
                {
                    "_id": f"b{n}",
                    "title": f"Base {n}",
                    "text": f"baseline passage {n} about {WORDS[n % len(WORDS)]}",
                }
            )
            + "\n"
            for n in range(BASELINE)
        )
    )
    code, _out, err, trace = run_cli(["--data-dir", str(data), "ingest", str(corpus)])
    if code != 0 or trace:
        raise SystemExit(f"cannot build the template: {err}{trace or ''}")
    from db import open_database
    from db.session import sqlite_url

    database = open_database(sqlite_url(data / "curator.db"))
    database.dispose()  # checkpoints the WAL into the file
    return data


VERDICTS = [
    "clear error",
    "accepted",
    "traceback",
    "data lost",
    "silent acceptance",
    "unlocated error",
    "wrongly refused",
]
FAILURES = {"traceback", "data lost", "silent acceptance", "unlocated error", "wrongly refused"}


def fuzz(cases: int, seed: int, *, verbose: bool = False, out=sys.stdout) -> Counter:
    """Run ``cases`` seeded cases; returns the counts per verdict (plus ``tried``)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    counts: Counter = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="curator-fuzz-") as tmp:
        template = make_template(Path(tmp))
        for index in range(cases):
            case = make_case(seed, index)
            verdicts = run_case(case, template, Path(tmp) / "case")
            counts["tried"] += 1
            counts["runs"] += len(verdicts)
            worst = next((v for v in verdicts if v[0] in FAILURES), verdicts[0])
            counts[worst[0]] += 1
            if worst[0] in FAILURES:
                failures.append(f"#{index} {case.name}: {worst[0]}: {worst[1]}")
            if verbose:
                print(f"#{index:<5} {case.name:<36} {' / '.join(v for v, _ in verdicts)}", file=out)
    for line in failures:
        print(line, file=out)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    counts = fuzz(args.cases, args.seed, verbose=args.verbose)
    seconds = time.perf_counter() - started
    print(
        f"tried {counts['tried']} cases ({counts['runs']} CLI runs, seed {args.seed}) "
        f"in {seconds:.0f} s"
    )
    for verdict in VERDICTS:
        print(f"  {verdict:<18} {counts[verdict]}")
    return 1 if any(counts[v] for v in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
