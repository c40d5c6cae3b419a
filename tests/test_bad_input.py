"""Malformed and hostile input, read from real files: every case is an error naming the
file and the line (and the field where there is one), never a traceback, never accepted
silently; with ``on_error='skip'`` only the bad record is lost."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write
from sqlalchemy import func, select

from curator.pipeline.label_readers import read_beir_labels, read_flag_labels, read_qrels
from curator.pipeline.readers import IngestError, SourceRecord, read_records
from curator.services.ingest import IngestAborted, ingest_path
from db.models import Passage


def split(items):
    """(good records, errors) of a reader's output."""
    items = list(items)
    return (
        [i for i in items if isinstance(i, SourceRecord)],
        [i for i in items if isinstance(i, IngestError)],
    )


def stored(database) -> list[str]:
    with database.sessions() as session:
        return sorted(session.scalars(select(Passage.external_id)))


# --- CSV / TSV quotes ---------------------------------------------------------------


@pytest.mark.parametrize("delimiter, suffix", [(",", "csv"), ("\t", "tsv")])
def test_an_unclosed_quote_is_an_error_at_its_line_and_later_rows_are_kept(
    tmp_path, delimiter, suffix
):
    rows = [f"d{n}{delimiter}text {n}" for n in range(2, 22)]
    content = f'id{delimiter}text\nd1{delimiter}"unclosed quote\n' + "\n".join(rows) + "\n"
    path = write(tmp_path / f"c.{suffix}", content)
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == [f"d{n}" for n in range(2, 22)]
    assert [(e.line, e.field) for e in errors] == [(2, "text")]
    assert str(errors[0]).startswith(f"{path}:2: field 'text': a quote opened on this line")


def test_an_unclosed_quote_closed_by_a_later_quote_is_still_an_error(tmp_path):
    path = write(tmp_path / "c.csv", 'id,text\nd1,"open\nd2,two\nd3,"closed" late\nd4,four\n')
    good, errors = split(read_records(path))
    assert errors and errors[0].line == 2
    assert "d4" in [r.doc_id for r in good] and "d1" not in [r.doc_id for r in good]


def test_quoted_multiline_fields_still_read(tmp_path):
    path = write(tmp_path / "c.csv", 'id,text\n1,"two\nlines"\n2,"say ""hi"""\n')
    good, errors = split(read_records(path))
    assert not errors
    assert [(r.doc_id, r.text) for r in good] == [("1", "two\nlines"), ("2", 'say "hi"')]


def test_unclosed_quote_aborts_the_file_or_skips_one_record(database, tmp_path):
    path = write(tmp_path / "c.csv", 'id,text\na,"open\nb,bee\nc,sea\n')
    with pytest.raises(IngestAborted, match=r"c.csv:2: field 'text'"):
        ingest_path(database, "p", path)
    assert stored(database) == []
    report = ingest_path(database, "p", path, on_error="skip")
    assert stored(database) == ["b", "c"] and len(report.errors) == 1


# --- files that are not what they seem -----------------------------------------------


def test_a_corrupt_parquet_page_is_an_error_at_its_first_row(tmp_path):
    path = tmp_path / "c.parquet"
    n = 3000
    table = pa.table({"id": [f"d{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)]})
    pq.write_table(table, path, row_group_size=2048, compression="none")
    offset = pq.ParquetFile(path).metadata.row_group(1).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset : offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == [f"d{i}" for i in range(2048)]
    assert [e.line for e in errors] == [2049]
    assert str(errors[0]).startswith(f"{path}:2049: unreadable Parquet data")
    assert "\n" not in str(errors[0])


def beir_folder(tmp_path, qrels="q1\td1\t1\n"):
    folder = tmp_path / "beir"
    write(folder / "queries.jsonl", json.dumps({"_id": "q1", "text": "a query"}) + "\n")
    write(folder / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def test_folders_named_like_label_files_are_errors(tmp_path):
    folder = beir_folder(tmp_path)
    (folder / "qrels" / "train.tsv").mkdir()
    with pytest.raises(IngestError, match=r"train.tsv: is a folder, not a file"):
        read_beir_labels(folder)
    (folder / "qrels" / "train.tsv").rmdir()
    (folder / "queries.jsonl").unlink()
    (folder / "queries.jsonl").mkdir()
    with pytest.raises(IngestError, match=r"queries.jsonl: is a folder, not a file"):
        read_beir_labels(folder)
    flag = tmp_path / "flag"
    write(flag / "a.jsonl", json.dumps({"query": "q", "pos": ["p"]}) + "\n")
    (flag / "x.jsonl").mkdir()
    with pytest.raises(IngestError, match=r"x.jsonl: is a folder, not a file"):
        read_flag_labels(flag)


def test_a_qrels_field_over_the_csv_field_limit_is_a_located_error(tmp_path):
    folder = beir_folder(tmp_path, qrels="q1\td1\t1\n" + "q1\t" + "x" * 200_000 + "\t1\n")
    with pytest.raises(IngestError) as error:
        list(read_qrels(folder / "qrels" / "test.tsv"))
    assert (error.value.line, error.value.field) == (3, "corpus-id")
    assert len(str(error.value)) < 300


# --- errors that used to have no file or line ----------------------------------------


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"_id": "a", "text": "bad \\ud800 surrogate"}', "text", "lone surrogate"),
        ('{"_id": "\\udfff", "text": "x"}', "_id", "lone surrogate"),
        ('{"_id": "a", "text": "x", "n": ' + "9" * 5000 + "}", None, "4300 digits"),
        ("[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
        ('{"_id": "a", "text": "x"', None, "malformed JSON"),
    ],
)
def test_bad_jsonl_records_are_located_and_skippable(database, tmp_path, line, field, message):
    good_line = json.dumps({"_id": "ok", "text": "fine"})
    path = write(tmp_path / "c.jsonl", f"{good_line}\n{line}\n")
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == ["ok"]
    assert [(e.file, e.line, e.field) for e in errors] == [(str(path), 2, field)]
    assert message in str(errors[0])
    report = ingest_path(database, "p", path, on_error="skip")
    assert stored(database) == ["ok"] and len(report.errors) == 1


def test_undecodable_file_names_are_errors_naming_the_file(database, tmp_path):
    folder = tmp_path / "docs"
    write(folder / "good.txt", "a good document")
    bad_name = os.fsdecode(b"caf\xe9.txt")
    write(folder / bad_name, "text under a latin-1 name")
    good, errors = split(read_records(folder))
    assert [r.doc_id for r in good] == ["good.txt"]
    assert len(errors) == 1 and "caf\\udce9.txt" in str(errors[0])
    assert "not valid UTF-8" in str(errors[0])
    str(errors[0]).encode("utf-8")  # printable
    report = ingest_path(database, "p", folder, on_error="skip")
    assert stored(database) == ["good.txt"] and len(report.errors) == 1
    with pytest.raises(IngestError, match="not valid UTF-8"):
        list(read_records(folder / bad_name))


def test_qrels_that_are_not_utf8_name_the_file_and_line(tmp_path):
    folder = beir_folder(tmp_path)
    path = write(folder / "qrels" / "test.tsv", b"q1\td1\t1\nq1\td2\t1\nq1\tcaf\xe9\t1\n")
    with pytest.raises(IngestError) as error:
        read_beir_labels(folder)
    assert (error.value.file, error.value.line) == (str(path), 3)


# --- malformed input that used to be accepted ----------------------------------------


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "1e999", "1_000", "\uff11", "0.5"])
def test_qrels_scores_must_be_whole_numbers(tmp_path, score):
    folder = beir_folder(tmp_path, qrels=f"q1\td1\t1\nq1\td2\t{score}\n")
    with pytest.raises(IngestError) as error:
        read_beir_labels(folder)
    assert (error.value.line, error.value.field) == (3, "score")
    path = write(tmp_path / "first.tsv", f"q1\td1\t{score}\n")  # not taken for a header
    with pytest.raises(IngestError, match=r"first.tsv:1: field 'score'"):
        list(read_qrels(path))


@pytest.mark.parametrize(
    "name, content",
    [
        ("c.csv", "id,title,text\n"),
        ("c.tsv", "id\ttext\n\n\n"),
        ("c.jsonl", b"\xef\xbb\xbf"),
        ("c.jsonl", b"\xef\xbb\xbf\n\n"),
        ("c.jsonl", "\n" * 10_000),
    ],
)
def test_files_without_records_are_refused_like_an_empty_jsonl(database, tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(IngestError, match=r"file is empty|holds no records"):
        list(read_records(path))
    with pytest.raises(IngestError):
        ingest_path(database, "p", path, on_error="skip")
    assert stored(database) == []


@pytest.mark.parametrize("value", ["\u200b", "\ufeff", " \u200b\u2060 ", "\u00a0"])
def test_invisible_ids_and_texts_are_errors(tmp_path, value):
    rows = [{"_id": value, "text": "x"}, {"_id": "b", "text": value}, {"_id": "c", "text": "ok"}]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == ["c"]
    assert [(e.line, e.field) for e in errors] == [(1, "_id"), (2, "text")]
    folder = beir_folder(tmp_path, qrels=f"q1\t{value}\t1\n")
    with pytest.raises(IngestError) as error:
        read_beir_labels(folder)
    assert (error.value.line, error.value.field) == (2, "corpus-id")


def test_a_huge_id_is_an_error(tmp_path):
    path = write(tmp_path / "c.jsonl", json.dumps({"_id": "x" * 10_000, "text": "t"}) + "\n")
    _, errors = split(read_records(path))
    assert [(e.line, e.field) for e in errors] == [(1, "_id")]
    assert "10,000 characters" in str(errors[0]) and len(str(errors[0])) < 300


def test_a_markdown_file_with_only_a_heading_is_not_an_empty_passage(tmp_path):
    folder = tmp_path / "docs"
    write(folder / "only-heading.md", "# Just a heading\n\n")
    write(folder / "real.md", "# Title\nSome body text.\n")
    good, errors = split(read_records(folder))
    assert [(r.doc_id, r.title, r.text) for r in good] == [("real.md", "Title", "Some body text.")]
    assert [(e.file.rsplit("/", 1)[-1], e.field) for e in errors] == [("only-heading.md", "text")]


def test_symlinks_leading_outside_an_ingested_folder_are_reported_not_read(database, tmp_path):
    secret = write(tmp_path / "outside" / "secret.txt", "not for the corpus")
    folder = tmp_path / "docs"
    write(folder / "a.txt", "inside text")
    (folder / "leak.txt").symlink_to(secret)
    (folder / "leakdir").symlink_to(secret.parent, target_is_directory=True)
    (folder / "alias.txt").symlink_to(folder / "a.txt")  # inside: fine
    good, errors = split(read_records(folder))
    assert sorted(r.doc_id for r in good) == ["a.txt", "alias.txt"]
    assert sorted(e.file.rsplit("/", 1)[-1] for e in errors) == ["leak.txt", "leakdir"]
    assert all("outside the folder" in str(e) for e in errors)
    with pytest.raises(IngestAborted, match="leak"):
        ingest_path(database, "p", folder)
    ingest_path(database, "p", folder, on_error="skip")
    with database.sessions() as session:
        texts = list(session.scalars(select(Passage.text)))
        assert "not for the corpus" not in texts
        assert session.scalar(select(func.count()).select_from(Passage)) == 2


# --- found by bench/fuzz.py -----------------------------------------------------------


@pytest.mark.parametrize("delimiter, suffix", [(",", "csv"), ("\t", "tsv")])
def test_a_quote_left_open_on_the_last_line_is_an_error_naming_its_field(
    tmp_path, delimiter, suffix
):
    path = write(
        tmp_path / f"c.{suffix}", f'id{delimiter}text\nd1{delimiter}ok\nd2{delimiter}"open\n'
    )
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == ["d1"]
    assert [(e.line, e.field) for e in errors] == [(3, "text")]
    assert "a quote opened on this line" in str(errors[0])


def test_a_nul_character_in_an_id_text_or_title_is_an_error(database, tmp_path):
    rows = [
        {"_id": "a\u0000b", "text": "x"},
        {"_id": "b", "text": "nul \u0000 inside"},
        {"_id": "c", "title": "t\u0000", "text": "x"},
        {"_id": "d", "text": "kept"},
    ]
    path = write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows))
    good, errors = split(read_records(path))
    assert [r.doc_id for r in good] == ["d"]
    assert [(e.line, e.field) for e in errors] == [(1, "_id"), (2, "text"), (3, "title")]
    assert all("NUL character" in str(e) for e in errors)
    ingest_path(database, "p", path, on_error="skip")
    assert stored(database) == ["d"]


def test_a_loop_of_symbolic_links_is_reported_and_the_rest_kept(database, tmp_path):
    folder = tmp_path / "docs"
    write(folder / "a.txt", "inside text")
    (folder / "x.txt").symlink_to(folder / "y.txt")
    (folder / "y.txt").symlink_to(folder / "x.txt")
    good, errors = split(read_records(folder))
    assert [r.doc_id for r in good] == ["a.txt"]
    assert len(errors) == 2 and all("loop of symbolic links" in str(e) for e in errors)
    ingest_path(database, "p", folder, on_error="skip")
    assert stored(database) == ["a.txt"]


@pytest.mark.parametrize("content", ["", "\n\n", "query-id\tcorpus-id\tscore\n"])
def test_a_qrels_file_without_rows_is_an_error(tmp_path, content):
    folder = beir_folder(tmp_path)
    path = write(folder / "qrels" / "test.tsv", content)
    with pytest.raises(IngestError, match="holds no qrels rows") as error:
        read_beir_labels(folder)
    assert error.value.file == str(path)


def test_an_empty_first_qrels_score_is_no_header(tmp_path):
    folder = beir_folder(tmp_path)
    write(folder / "qrels" / "test.tsv", "q1\td1\t\nq1\td2\t1\n")
    with pytest.raises(IngestError) as error:
        read_beir_labels(folder)
    assert (error.value.line, error.value.field) == (1, "score")


def test_a_flag_file_of_blank_lines_is_an_error(tmp_path):
    path = write(tmp_path / "train.jsonl", "\n\n")
    with pytest.raises(IngestError, match="holds no records"):
        read_flag_labels(path)
