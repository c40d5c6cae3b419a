"""Curation projects: create, find, describe."""

from __future__ import annotations

from typing import Any

from db import Database
from db.limits import MAX_NAME_CHARS, check_length
from db.models import Project
from db.queries import get_project, project_names


class ProjectNotFound(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(known) if known else "none yet; create one with `curator init`"
        super().__init__(f"no project named {name!r} (projects: {listing})")


def ensure_project(
    database: Database, name: str, description: str = "", settings: dict[str, Any] | None = None
) -> int:
    """The id of project ``name``, created if it does not exist yet (a name over
    ``MAX_NAME_CHARS`` raises :class:`~db.limits.TextTooLong`)."""
    check_length("the project name", name, MAX_NAME_CHARS)
    with database.sessions() as session, session.begin():
        project = get_project(session, name)
        if project is None:
            project = Project(name=name, description=description, settings=settings or {})
            session.add(project)
            session.flush()
        return project.id


def require_project(database: Database, name: str) -> int:
    """The id of project ``name``; raises ProjectNotFound listing the known projects."""
    with database.sessions() as session:
        project = get_project(session, name)
        if project is None:
            raise ProjectNotFound(name, project_names(session))
        return project.id
