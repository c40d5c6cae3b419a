"""Query functions over a session: ``fn(session, ...)``. They never commit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import column, distinct, func, insert, or_, select, table, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from db.limits import MAX_SEARCH_CHARS, check_length
from db.models import (
    Candidate,
    FlagKind,
    GeneratedQuery,
    Judgment,
    LLMScore,
    Passage,
    PipelineRun,
    Project,
    QueryFlag,
    TrainingRun,
)


def insert_or_ignore(session: Session, model: type, rows: Sequence[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``model``'s table, skipping those that break a unique
    constraint (a concurrent run stored them first) instead of raising IntegrityError.
    SQLite and PostgreSQL skip in the database (``ON CONFLICT DO NOTHING``); other
    databases get a plain insert. Returns how many rows were inserted (0 when all were
    skipped)."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        dialect_insert = None
    if dialect_insert is None:
        return session.connection().execute(insert(model), list(rows)).rowcount
    # the inserted rows' keys are returned and counted: psycopg reports rowcount -1 for an
    # INSERT ... ON CONFLICT DO NOTHING, so the driver's count cannot be trusted there
    key = sa_inspect(model).primary_key[0]
    statement = dialect_insert(model).on_conflict_do_nothing().returning(key)
    params = dict(rows[0]) if len(rows) == 1 else list(rows)
    return len(session.connection().execute(statement, params).all())


def get_or_raise(session: Session, model: type, row_id: int, missing: Exception) -> Any:
    """The ``model`` row whose id is ``row_id``; raises ``missing`` when there is none."""
    row = session.get(model, row_id)
    if row is None:
        raise missing
    return row


def get_project(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def project_names(session: Session) -> list[str]:
    return list(session.scalars(select(Project.name).order_by(Project.name)))


def existing_ids(session: Session, project_id: int, external_ids: Sequence[str]) -> dict[str, str]:
    """external_id -> content_hash for those of ``external_ids`` already stored."""
    if not external_ids:
        return {}
    rows = session.execute(
        select(Passage.external_id, Passage.content_hash).where(
            Passage.project_id == project_id, Passage.external_id.in_(external_ids)
        )
    )
    return dict(rows.all())


def existing_hashes(session: Session, project_id: int, hashes: Sequence[str]) -> dict[str, str]:
    """content_hash -> external_id for those of ``hashes`` already stored."""
    if not hashes:
        return {}
    rows = session.execute(
        select(Passage.content_hash, Passage.external_id).where(
            Passage.project_id == project_id, Passage.content_hash.in_(hashes)
        )
    )
    return dict(rows.all())


def project_counts(session: Session, project_id: int) -> dict[str, int]:
    """Counts per table and per pipeline stage for one project."""

    def count(statement) -> int:
        return int(session.scalar(statement) or 0)

    status_rows = session.execute(
        select(GeneratedQuery.status, func.count())
        .where(GeneratedQuery.project_id == project_id)
        .group_by(GeneratedQuery.status)
    ).all()
    by_status = {status: n for status, n in status_rows}
    in_project = GeneratedQuery.project_id == project_id
    flag_rows = session.execute(
        select(QueryFlag.kind, func.count(distinct(QueryFlag.query_id)))
        .join(GeneratedQuery, GeneratedQuery.id == QueryFlag.query_id)
        .where(in_project)
        .group_by(QueryFlag.kind)
    ).all()
    flagged = dict(flag_rows)
    return {
        **{f"flagged_{kind.value}": flagged.get(kind.value, 0) for kind in FlagKind},
        "queries_flagged": count(
            select(func.count(distinct(QueryFlag.query_id)))
            .join(GeneratedQuery, GeneratedQuery.id == QueryFlag.query_id)
            .where(in_project)
        ),
        "passages": count(select(func.count()).where(Passage.project_id == project_id)),
        "documents": count(
            select(func.count(distinct(Passage.document_id))).where(
                Passage.project_id == project_id
            )
        ),
        "queries": sum(by_status.values()),
        "queries_ok": by_status.get("ok", 0),
        "queries_parse_failed": by_status.get("parse_failed", 0),
        "queries_error": by_status.get("error", 0),
        "candidates": count(
            select(func.count()).select_from(Candidate).join(GeneratedQuery).where(in_project)
        ),
        "queries_mined": count(
            select(func.count(distinct(Candidate.query_id))).join(GeneratedQuery).where(in_project)
        ),
        "llm_scores": count(
            select(func.count()).select_from(LLMScore).join(GeneratedQuery).where(in_project)
        ),
        "queries_reranked": count(
            select(func.count(distinct(LLMScore.query_id)))
            .join(GeneratedQuery)
            .where(in_project, LLMScore.method == "rrf")
        ),
        "judgments": count(
            select(func.count()).select_from(Judgment).join(GeneratedQuery).where(in_project)
        ),
        "queries_judged": count(
            select(func.count(distinct(Judgment.query_id))).join(GeneratedQuery).where(in_project)
        ),
        "training_runs": count(select(func.count()).where(TrainingRun.project_id == project_id)),
        "pipeline_runs": count(select(func.count()).where(PipelineRun.project_id == project_id)),
    }


def recent_runs(session: Session, project_id: int, limit: int = 10) -> list[PipelineRun]:
    return list(
        session.scalars(
            select(PipelineRun)
            .where(PipelineRun.project_id == project_id)
            .order_by(PipelineRun.id.desc())
            .limit(limit)
        )
    )


def escape_like(text: str) -> str:
    """``text`` for a LIKE pattern with backslash as the escape character: ``%``, ``_``
    and ``\\`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


SEARCH_COUNT_LIMIT = 10_000  # passage_page counts matches up to this, then stops
_WORD = re.compile(r"[^\W_]+")  # letters and digits, as the FTS5 and "simple" parsers split


def passage_page(
    session: Session, project_id: int, *, search: str = "", offset: int = 0, limit: int = 50
) -> tuple[int, list[Passage]]:
    """(total matching, one page of passages) ordered by id; ``search`` matches id/title/text.

    A search that is exactly a passage id finds that passage alone. Otherwise a search
    with words uses the full-text index (SQLite FTS5, migration 0007, or PostgreSQL's
    ``tsvector`` column, migration 0008): the passages whose title or text hold every
    word. A search without words (punctuation only), or a database without the index,
    falls back to a substring match of id, title or text (``%`` and ``_`` taken
    literally). The total of a search stops at ``SEARCH_COUNT_LIMIT + 1`` (it means "more
    than"); browsing counts everything. A search over ``MAX_SEARCH_CHARS`` raises
    :class:`~db.limits.TextTooLong`.
    """
    check_length("the search", search, MAX_SEARCH_CHARS)
    in_project = Passage.project_id == project_id
    if not search:
        total = int(session.scalar(select(func.count()).where(in_project)) or 0)
        browsed = select(Passage).where(in_project).order_by(Passage.id)
        return total, _page(session, browsed, offset, limit)
    exact = session.scalar(select(Passage).where(in_project, Passage.external_id == search))
    if exact is not None:
        return 1, [exact] if offset == 0 else []
    words = _WORD.findall(search)
    dialect = session.get_bind().dialect.name
    if words and dialect == "sqlite" and _has_table(session, "passages_fts"):
        # FTS5 hands out matches in rowid (= passage id) order: both queries stream
        fts = table("passages_fts", column("rowid"))
        match = text("passages_fts MATCH :match").bindparams(
            match=" ".join(f'"{word}"' for word in words)  # each word a phrase, ANDed
        )
        matched = select(Passage).join_from(fts, Passage, Passage.id == fts.c.rowid)
        matched = matched.where(match, in_project).order_by(fts.c.rowid)
        counted = matched.with_only_columns(Passage.id)
    else:
        condition = _search_condition(session, search, words, dialect)
        if words and dialect == "postgresql":
            return _postgres_words_page(session, in_project, condition, offset, limit)
        matched = select(Passage).where(in_project, condition).order_by(Passage.id)
        counted = select(Passage.id).where(in_project, condition)  # any order: a count
    counted = counted.limit(SEARCH_COUNT_LIMIT + 1).subquery()
    total = int(session.scalar(select(func.count()).select_from(counted)) or 0)
    return total, _page(session, matched, offset, limit)


def _postgres_words_page(
    session: Session, in_project, condition, offset: int, limit: int
) -> tuple[int, list[Passage]]:
    """(total up to ``SEARCH_COUNT_LIMIT + 1``, one page by id) of a PostgreSQL full-text
    search, by plans that do not hang on the planner's guess of how common the words are.

    The ids of up to ``SEARCH_COUNT_LIMIT + 1`` matches are read in any order (the GIN
    index or a scan that stops early). When that is all of them, the page is cut from
    those ids, sorted here, and read by primary key. When there are more, matches are
    dense enough that walking the primary key in order and testing each row finds a page
    soon, so bitmap scans are turned off for that one query: otherwise a plan that fetches
    and sorts every match (half a million rows for a common word on a million passages)
    may be chosen."""
    found = session.scalars(
        select(Passage.id).where(in_project, condition).limit(SEARCH_COUNT_LIMIT + 1)
    ).all()
    if len(found) <= SEARCH_COUNT_LIMIT:
        page_ids = sorted(found)[offset : offset + limit]
        if not page_ids:
            return len(found), []
        rows = session.scalars(
            select(Passage).where(Passage.id.in_(page_ids)).order_by(Passage.id)
        ).all()
        return len(found), list(rows)
    matched = select(Passage).where(in_project, condition).order_by(Passage.id)
    session.execute(text("SET LOCAL enable_bitmapscan = off"))
    try:
        return len(found), _page(session, matched, offset, limit)
    finally:
        session.execute(text("RESET enable_bitmapscan"))


def _page(session: Session, statement, offset: int, limit: int) -> list[Passage]:
    """One page of an ordered select of passages."""
    return list(session.scalars(statement.offset(offset).limit(limit)))


def _search_condition(session: Session, search: str, words: list[str], dialect: str):
    """The WHERE clause of a search without FTS5: PostgreSQL's full-text match for words
    (on the stored ``search_vector`` column of migration 0008, else on the expression 0007
    indexes), else a substring match of id, title or text with ``%``, ``_`` and ``\\``
    escaped."""
    if words and dialect == "postgresql":
        if _has_search_vector(session):
            vector = "passages.search_vector"
        else:
            vector = (
                "to_tsvector('simple'::regconfig, coalesce(passages.title, '') || ' ' || "
                "passages.text)"
            )
        return text(f"{vector} @@ plainto_tsquery('simple'::regconfig, :words)").bindparams(
            words=" ".join(words)
        )
    pattern = f"%{escape_like(search)}%"
    return or_(
        Passage.external_id.ilike(pattern, escape="\\"),
        Passage.title.ilike(pattern, escape="\\"),
        Passage.text.ilike(pattern, escape="\\"),
    )


def _has_search_vector(session: Session) -> bool:
    """Whether PostgreSQL's ``passages`` table has migration 0008's ``search_vector``."""
    found = session.scalar(
        text(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('passages') "
            "AND attname = 'search_vector' AND NOT attisdropped"
        )
    )
    return found is not None


def _has_table(session: Session, name: str) -> bool:
    """Whether SQLite's schema holds a table (or virtual table) called ``name``."""
    found = session.scalar(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": name},
    )
    return found is not None
