"""Persistence: SQLAlchemy models, sessions, Alembic migrations and query functions."""

from db.database import Database, open_database

__all__ = ["Database", "open_database"]
