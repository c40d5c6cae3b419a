"""Reading passages and generated queries for display (the app's Passages and Pipeline
pages): plain values out, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from curator.services.projects import require_project
from db import Database
from db.limits import TextTooLong as TextTooLong  # a search over MAX_SEARCH_CHARS
from db.models import GeneratedQuery, Passage
from db.queries import SEARCH_COUNT_LIMIT as SEARCH_COUNT_LIMIT  # a search counts up to it
from db.queries import passage_page


@dataclass
class PassageRow:
    external_id: str
    title: str
    text: str
    source_file: str | None
    source_line: int | None


@dataclass
class PassagePage:
    rows: list[PassageRow]
    total: int
    page: int  # the page shown (1-based; the last one when asked past it)
    pages: int


def passages_on_page(
    database: Database, project: str, search: str, page: int, page_size: int
) -> PassagePage:
    """Page ``page`` (1-based) of the project's passages matching ``search`` (id, title or
    text); a page past the end gives the last page."""
    project_id = require_project(database, project)
    page = max(1, int(page or 1))
    search = (search or "").strip()
    with database.sessions() as session:

        def read(page: int):
            offset = (page - 1) * page_size
            return passage_page(session, project_id, search=search, offset=offset, limit=page_size)

        total, passages = read(page)
        pages = max(1, -(-total // page_size))
        if page > pages:
            page = pages
            total, passages = read(page)
        rows = [
            PassageRow(p.external_id, p.title or "", p.text, p.source_file, p.source_line)
            for p in passages
        ]
    return PassagePage(rows, total, page, pages)


def passage_text(database: Database, project: str, external_id: str) -> str | None:
    """The title and text of passage ``external_id`` as plain text; None when unknown."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        passage = session.scalar(
            select(Passage).where(
                Passage.project_id == project_id, Passage.external_id == external_id
            )
        )
        if passage is None:
            return None
        return f"{passage.title}\n\n{passage.text}" if passage.title else passage.text


@dataclass
class QueryRow:
    passage: str
    title: str
    task: str
    query: str | None
    status: str
    model: str
    error: str | None


def latest_generated_queries(database: Database, project: str, limit: int = 100) -> list[QueryRow]:
    """The project's latest generated queries (newest first) with their seed passage."""
    project_id = require_project(database, project)
    with database.sessions() as session:
        rows = session.execute(
            select(
                Passage.external_id,
                Passage.title,
                GeneratedQuery.task,
                GeneratedQuery.query,
                GeneratedQuery.status,
                GeneratedQuery.model,
                GeneratedQuery.error,
            )
            .join(Passage, Passage.id == GeneratedQuery.seed_passage_id)
            .where(GeneratedQuery.project_id == project_id)
            .order_by(GeneratedQuery.id.desc())
            .limit(limit)
        ).all()
    return [QueryRow(*row) for row in rows]
