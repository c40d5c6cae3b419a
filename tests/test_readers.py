"""Each input format, and each kind of bad input, read from real files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write

from curator.pipeline.readers import (
    DEFAULT_FIELDS,
    FieldMap,
    IngestError,
    SourceRecord,
    detect_format,
    read_records,
)


def records(path, fmt="auto", fields=DEFAULT_FIELDS, **kwargs):
    return list(read_records(path, fmt, fields, **kwargs))


def good(items):
    assert all(isinstance(i, SourceRecord) for i in items), [str(i) for i in items]
    return [(r.doc_id, r.title, r.text) for r in items]


def test_beir_corpus_jsonl(tmp_path):
    path = write(
        tmp_path / "corpus.jsonl",
        "\n".join(
            [
                json.dumps({"_id": "d1", "title": "T1", "text": "first text", "metadata": {}}),
                json.dumps({"_id": "d2", "title": "", "text": "second text"}),
                "",
            ]
        ),
    )
    assert good(records(path, "beir")) == [("d1", "T1", "first text"), ("d2", "", "second text")]
    items = records(path)  # auto: .jsonl with an _id field
    assert [r.line for r in items] == [1, 2]


def test_generic_jsonl_with_configured_fields_and_integer_ids(tmp_path):
    path = write(
        tmp_path / "docs.ndjson",
        "\n".join(json.dumps({"pid": n, "heading": f"H{n}", "body": f"body {n}"}) for n in (1, 2)),
    )
    fields = FieldMap(id="pid", title="heading", text="body")
    assert good(records(path, fields=fields)) == [("1", "H1", "body 1"), ("2", "H2", "body 2")]


def test_jsonl_falls_back_to_an_id_field_named_id(tmp_path):
    path = write(tmp_path / "docs.jsonl", json.dumps({"id": "a", "text": "x"}) + "\n")
    assert good(records(path)) == [("a", "", "x")]


def test_csv_with_quoted_multiline_fields_and_bom(tmp_path):
    path = write(
        tmp_path / "docs.csv",
        '\ufeffid,title,text\n1,One,"line one\nline two, with comma"\n2,Two,plain\n',
    )
    items = records(path)
    assert good(items) == [("1", "One", "line one\nline two, with comma"), ("2", "Two", "plain")]
    assert [r.line for r in items] == [3, 4]


def test_tsv(tmp_path):
    path = write(tmp_path / "docs.tsv", "_id\ttext\nx\thello\ny\tworld\n")
    assert good(records(path)) == [("x", "", "hello"), ("y", "", "world")]


def test_parquet_streams_in_batches(tmp_path):
    path = tmp_path / "docs.parquet"
    n = 5000
    table = pa.table(
        {
            "id": [str(i) for i in range(n)],
            "title": ["t"] * n,
            "text": [f"text {i}" for i in range(n)],
        }
    )
    pq.write_table(table, path, row_group_size=1000)
    seen = []
    items = records(path, on_progress=seen.append)
    assert len(items) == n
    assert items[4999].doc_id == "4999" and items[4999].line == 5000
    assert sum(seen) == n and len(seen) > 1


def test_folder_of_txt_and_md_files(tmp_path):
    folder = tmp_path / "notes"
    write(folder / "a.txt", "Plain text file.\n")
    write(folder / "sub" / "b.md", "# A Heading\n\nMarkdown body.\n")
    write(folder / "ignored.pdf", b"%PDF-1.4")
    assert detect_format(folder) == "folder"
    assert good(records(folder)) == [
        ("a.txt", "a", "Plain text file."),
        ("sub/b.md", "A Heading", "Markdown body."),
    ]


# -- bad input -------------------------------------------------------------------------


def only_error(items) -> IngestError:
    errors = [i for i in items if isinstance(i, IngestError)]
    assert len(errors) == 1, items
    return errors[0]


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n')
    error = only_error(records(path))
    assert (error.file, error.line) == (str(path), 2)
    assert "malformed JSON" in str(error) and f"{path}:2" in str(error)


def test_missing_field_names_the_field(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"_id": "1", "title": "no text here"}\n')
    error = only_error(records(path))
    assert (error.line, error.field) == (1, "text")
    assert "field 'text'" in str(error) and "missing" in str(error)


def test_empty_text_and_wrong_types_are_errors(tmp_path):
    path = write(
        tmp_path / "c.jsonl",
        "\n".join(
            [
                json.dumps({"_id": "1", "text": "   "}),
                json.dumps({"_id": "2", "text": ["not", "a", "string"]}),
                json.dumps({"_id": {"x": 1}, "text": "t"}),
                json.dumps(["an", "array"]),
            ]
        ),
    )
    errors = records(path)
    assert [(e.line, e.field) for e in errors] == [(1, "text"), (2, "text"), (3, "_id"), (4, None)]


def test_wrong_encoding_names_the_line(tmp_path):
    path = write(
        tmp_path / "c.jsonl", b'{"_id": "1", "text": "fine"}\n{"_id": "2", "text": "caf\xe9"}\n'
    )
    error = only_error(records(path))
    assert error.line == 2 and "not valid utf-8" in str(error) and "0xe9" in str(error)
    # the same file is readable once the user names its encoding
    assert good(records(path, encoding="latin-1"))[1] == ("2", "", "café")


def test_wrong_encoding_in_csv(tmp_path):
    path = write(tmp_path / "c.csv", b"id,text\n1,ok\n2,caf\xe9\n3,fine\n")
    items = records(path)
    error = only_error(items)
    assert error.line == 3
    assert [r.doc_id for r in items if isinstance(r, SourceRecord)] == ["1", "3"]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file_is_refused(tmp_path, content):
    path = write(tmp_path / "c.jsonl", content)
    with pytest.raises(IngestError, match="file is empty"):
        records(path)


def test_binary_file_is_refused(tmp_path):
    path = write(tmp_path / "c.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(IngestError, match="binary"):
        records(path)


def test_csv_missing_column_and_ragged_rows(tmp_path):
    path = write(tmp_path / "c.csv", "id,body\n1,x\n")
    with pytest.raises(IngestError) as info:
        records(path)
    assert info.value.field == "text" and "columns: id, body" in str(info.value)

    # a file that is no table (a server path given by mistake) is not echoed back
    path = write(tmp_path / "passwd.tsv", "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:\n")
    with pytest.raises(IngestError) as info:
        records(path, fmt="tsv")
    assert "/bin/bash" not in str(info.value) and "no column names" in str(info.value)

    path = write(tmp_path / "d.csv", "id,text\n1,x\n2,y,extra\n3\n")
    errors = [i for i in records(path) if isinstance(i, IngestError)]
    assert [e.line for e in errors] == [3, 4]
    assert "3 fields, the header has 2" in str(errors[0])


def test_parquet_missing_column_and_corrupt_file(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["1"], "body": ["x"]}), path)
    with pytest.raises(IngestError, match="no such column"):
        records(path)
    bad = write(tmp_path / "bad.parquet", b"PAR1 this is not parquet")
    with pytest.raises(IngestError, match="not a readable Parquet file"):
        records(bad)


def test_folder_reports_bad_files_and_keeps_the_good_ones(tmp_path):
    folder = tmp_path / "docs"
    write(folder / "a.txt", "good")
    write(folder / "b.txt", b"\x00\x01\x02binary")
    write(folder / "c.txt", "")
    write(folder / "d.txt", b"ok line\ncaf\xe9\n")
    items = records(folder)
    assert good([i for i in items if isinstance(i, SourceRecord)]) == [("a.txt", "a", "good")]
    errors = {e.file.rsplit("/", 1)[-1]: e for e in items if isinstance(e, IngestError)}
    assert set(errors) == {"b.txt", "c.txt", "d.txt"}
    assert errors["d.txt"].line == 2


def test_unknown_suffix_and_missing_path(tmp_path):
    with pytest.raises(IngestError, match="--format"):
        records(write(tmp_path / "c.xml", "<x/>"))
    with pytest.raises(IngestError, match="no such file"):
        records(tmp_path / "nope.jsonl")
