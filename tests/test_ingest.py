"""The ingest service on a real SQLite file: dedup, transactions, error modes, runs."""

from __future__ import annotations

import json

import pytest
from conftest import write
from sqlalchemy import func, select, text

from curator.pipeline.chunking import ChunkingConfig
from curator.pipeline.readers import IngestError
from curator.services.ingest import IngestAborted, ingest_path
from db.models import Passage, PipelineRun


def jsonl(path, rows):
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def stored(database, project="p"):
    with database.sessions() as session:
        rows = session.execute(select(Passage.external_id, Passage.text).order_by(Passage.id)).all()
    return [tuple(r) for r in rows]


def runs(database):
    with database.sessions() as session:
        return [(r.stage, r.status, r.counts) for r in session.scalars(select(PipelineRun))]


def test_scifact_corpus_is_stored_once(database, scifact_dir):
    report = ingest_path(database, "scifact", scifact_dir / "corpus.jsonl")
    assert (report.records, report.added, report.errors) == (5183, 5183, [])
    again = ingest_path(database, "scifact", scifact_dir / "corpus.jsonl")
    assert (again.added, again.unchanged) == (0, 5183)
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Passage)) == 5183
        first = session.scalar(select(Passage).where(Passage.external_id == "4983"))
    assert first.title.startswith("Microstructural development of human newborn")
    assert first.source_file.endswith("corpus.jsonl") and first.source_line == 1


def test_dedup_by_normalised_content(database, tmp_path):
    path = jsonl(
        tmp_path / "c.jsonl",
        [
            {"_id": "1", "title": "T", "text": "Hello   World"},
            {"_id": "2", "title": "t", "text": "hello world"},  # same text, case and spaces apart
            {"_id": "3", "title": "T", "text": "Hello World, again"},
        ],
    )
    report = ingest_path(database, "p", path)
    assert (report.added, report.duplicates) == (2, 1)
    assert [i for i, _ in stored(database)] == ["1", "3"]


def test_batches_see_each_other(database, tmp_path):
    rows = [{"_id": str(i), "text": f"text {i % 7}"} for i in range(50)]
    report = ingest_path(database, "p", jsonl(tmp_path / "c.jsonl", rows), batch_size=3)
    assert (report.added, report.duplicates) == (7, 43)


def test_statistics_refresh_mid_ingest_keeps_dedup_and_rollback(
    database, backend, tmp_path, monkeypatch
):
    """The ingest ANALYZEs ``passages`` inside its transaction on PostgreSQL (at 4 added
    rows here, then 8, 16): duplicates, unchanged ids and a late id conflict are still
    told apart after it, the conflict still rolls the whole file back, and a clean file
    leaves the planner statistics behind."""
    monkeypatch.setattr("curator.services.ingest.ANALYZE_FIRST_AT", 4)
    first = [{"_id": str(i), "text": f"passage number {i}"} for i in range(10)]
    ingest_path(database, "p", jsonl(tmp_path / "a.jsonl", first), batch_size=3)
    rows = first[:5] + [{"_id": f"n{i}", "text": f"passage number {i % 15}"} for i in range(30)]
    report = ingest_path(database, "p", jsonl(tmp_path / "b.jsonl", rows), batch_size=3)
    assert (report.unchanged, report.duplicates, report.added) == (5, 25, 5)  # n10..n14
    late_conflict = [*rows, {"_id": "3", "text": "changed text"}]
    with pytest.raises(IngestAborted, match="already stored with different text"):
        ingest_path(database, "p", jsonl(tmp_path / "c.jsonl", late_conflict), batch_size=3)
    assert len(stored(database)) == 15
    if backend == "postgresql":
        with database.sessions() as session:
            analyzed = session.scalars(
                text("SELECT attname FROM pg_stats WHERE tablename = 'passages'")
            ).all()
        assert {"project_id", "external_id", "content_hash"} <= set(analyzed)


def test_ingest_does_not_wait_for_another_transactions_analyze_lock(
    database, backend, tmp_path, monkeypatch
):
    """While another transaction holds the lock ANALYZE needs (as a concurrent ingest's
    ANALYZE does until it commits), an ingest skips its statistics refresh after the
    lock timeout and stores everything instead of waiting or failing."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SQLite has no ANALYZE in the ingest)")
    monkeypatch.setattr("curator.services.ingest.ANALYZE_FIRST_AT", 4)
    monkeypatch.setattr("curator.services.ingest.ANALYZE_LOCK_TIMEOUT", "50ms")
    rows = [{"_id": str(i), "text": f"passage number {i % 12}"} for i in range(20)]
    with database.engine.connect() as other, other.begin():
        other.execute(text("LOCK TABLE passages IN SHARE UPDATE EXCLUSIVE MODE"))
        report = ingest_path(database, "p", jsonl(tmp_path / "a.jsonl", rows), batch_size=3)
    assert (report.added, report.duplicates, report.errors) == (12, 8, [])
    assert len(stored(database)) == 12


def test_duplicate_id_with_different_text_aborts_and_keeps_earlier_data(database, tmp_path):
    ingest_path(database, "p", jsonl(tmp_path / "a.jsonl", [{"_id": "1", "text": "original"}]))
    bad = jsonl(
        tmp_path / "b.jsonl",
        [
            {"_id": "2", "text": "new passage"},
            {"_id": "1", "text": "changed text"},
        ],
    )
    with pytest.raises(IngestAborted) as info:
        ingest_path(database, "p", bad)
    error = info.value.error
    assert (error.file, error.line, error.field) == (str(bad), 2, "id")
    assert "already stored with different text" in str(error)
    assert stored(database) == [("1", "original")]  # nothing of b.jsonl, a.jsonl intact
    assert runs(database)[-1][1] == "failed"


def test_duplicate_id_within_one_file(database, tmp_path):
    path = jsonl(tmp_path / "c.jsonl", [{"_id": "1", "text": "a"}, {"_id": "1", "text": "b"}])
    with pytest.raises(IngestAborted, match="line 1 of this file"):
        ingest_path(database, "p", path)
    assert stored(database) == []


def test_abort_on_a_bad_line_stores_nothing_of_the_file(database, tmp_path):
    rows = [json.dumps({"_id": str(i), "text": f"passage {i}"}) for i in range(2500)]
    rows[2100] = '{"_id": "broken", "text": '
    path = write(tmp_path / "c.jsonl", "\n".join(rows))
    with pytest.raises(IngestAborted) as info:
        ingest_path(database, "p", path, batch_size=500)  # four batches written before the error
    assert info.value.error.line == 2101
    assert stored(database) == []


def test_skip_mode_stores_good_records_and_reports_bad_ones(database, tmp_path):
    path = write(
        tmp_path / "c.jsonl",
        "\n".join(
            [
                json.dumps({"_id": "1", "text": "good one"}),
                "not json",
                json.dumps({"_id": "2"}),
                json.dumps({"_id": "3", "text": "good two"}),
            ]
        ),
    )
    report = ingest_path(database, "p", path, on_error="skip")
    assert report.added == 2
    assert [(e.line, e.field) for e in report.errors] == [(2, None), (3, "text")]
    assert [i for i, _ in stored(database)] == ["1", "3"]
    stage, status, counts = runs(database)[-1]
    assert (stage, status, counts["errors"], counts["added"]) == ("ingest", "done", 2, 2)


def test_unreadable_file_raises_and_is_recorded(database, tmp_path):
    with pytest.raises(IngestError, match="empty"):
        ingest_path(database, "p", write(tmp_path / "c.jsonl", ""))
    assert runs(database)[-1][1] == "failed"


def test_chunked_ingest_ids_and_reingest(database, tmp_path):
    long_text = " ".join(f"word{i}" for i in range(230))
    path = jsonl(
        tmp_path / "c.jsonl",
        [
            {"_id": "long", "title": "Long", "text": long_text},
            {"_id": "short", "title": "Short", "text": "tiny"},
        ],
    )
    chunking = ChunkingConfig(words=100, overlap=20)
    report = ingest_path(database, "p", path, chunking=chunking)
    assert report.added == 4
    assert [i for i, _ in stored(database)] == ["long#0", "long#1", "long#2", "short#0"]
    with database.sessions() as session:
        docs = session.execute(select(Passage.document_id, Passage.chunk_index)).all()
    assert sorted(docs) == [("long", 0), ("long", 1), ("long", 2), ("short", 0)]
    assert ingest_path(database, "p", path, chunking=chunking).added == 0


def test_projects_are_separate(database, tmp_path):
    path = jsonl(tmp_path / "c.jsonl", [{"_id": "1", "text": "same"}])
    assert ingest_path(database, "one", path).added == 1
    assert ingest_path(database, "two", path).added == 1
