"""Turn source records into passage drafts: optional chunking, then content hashes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from curator.pipeline.chunking import ChunkingConfig, chunk_text
from curator.pipeline.readers import SourceRecord
from curator.pipeline.text import content_hash


@dataclass(frozen=True)
class PassageDraft:
    """A passage ready to store: ids, text, hash and where it came from."""

    external_id: str
    document_id: str
    chunk_index: int
    title: str
    text: str
    content_hash: str
    source_file: str
    source_line: int


def passages_from_record(
    record: SourceRecord, chunking: ChunkingConfig | None = None
) -> Iterator[PassageDraft]:
    """One draft per passage of ``record``.

    Without chunking the document is one passage whose id is the document id. With
    chunking, passage ``i`` of document ``D`` has the id ``D#i`` (also when there is only
    one), so the ids of a chunked ingest are stable and never collide with document ids.
    """
    if chunking is None:
        pieces = [(record.doc_id, record.text)]
    else:
        pieces = [
            (f"{record.doc_id}#{index}", piece)
            for index, piece in enumerate(chunk_text(record.text, chunking))
        ]
    for index, (external_id, text) in enumerate(pieces):
        yield PassageDraft(
            external_id=external_id,
            document_id=record.doc_id,
            chunk_index=index,
            title=record.title,
            text=text,
            content_hash=content_hash(record.title, text),
            source_file=record.source_file,
            source_line=record.line,
        )
