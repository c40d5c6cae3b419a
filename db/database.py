"""Open a database, bring its schema up to date with Alembic, hand out sessions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from db.session import make_engine, make_session_factory

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


@dataclass
class Database:
    """An engine plus its session factory, for one database URL."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def current_revision(self) -> str | None:
        """The migration the database is at, or None for an empty database."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` (all of them by default)."""
        from alembic import command

        config = _alembic_config(self.url)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def downgrade(self, revision: str) -> None:
        """Revert migrations down to ``revision`` (``base`` empties the schema)."""
        from alembic import command

        config = _alembic_config(self.url)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, upgrade: bool = True) -> Database:
    """Open ``url``; with ``upgrade`` (the default) migrate an old or empty schema to head.

    A database newer than this code (a revision it does not know) raises ``RuntimeError``
    instead of being touched.
    """
    engine = make_engine(url)
    database = Database(url=url, engine=engine, sessions=make_session_factory(engine))
    if upgrade:
        current = database.current_revision()
        head = head_revision()
        if current != head:
            _check_known_revision(current)
            log.info("upgrading database schema %s -> %s", current or "(empty)", head)
            database.upgrade("head")
    return database


def _check_known_revision(revision: str | None) -> None:
    if revision is None:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    try:
        script.get_revision(revision)
    except Exception as exc:  # alembic raises several types for unknown revisions
        raise RuntimeError(
            f"database is at schema revision {revision!r}, which this version of curator "
            "does not know (was it written by a newer version?); refusing to touch it"
        ) from exc
