"""Who may do what in the app, checked on the server for every call (pages and API alike).

Without ``--login`` the app serves one local user, who may do everything. With it, each
call carries the logged-in name: ``admin`` accounts may do everything; ``annotator``
accounts browse passages, annotate and read the agreement page, and every pipeline,
training, export and ingest call from them is refused before it touches anything.

Model strings typed in the app are checked against the project's allow-list
(``settings['allowed_models']``, set with ``curator init --allow-model``): the embedded
local model always, plus the models an admin allowed. The app never opens an arbitrary
``local/<path>.gguf`` or spends API keys on a model nobody allowed.
"""

from __future__ import annotations

from collections.abc import Sequence

from curator.services.auth import role_of
from db import Database
from db.models import Role
from db.queries import get_project

DEFAULT_MODEL = "local/gemma3-270m"
ALLOWED_MODELS_SETTING = "allowed_models"


class PermissionDenied(PermissionError):
    """The caller may not do this; the message is safe to show in the browser."""


def is_admin(database: Database, username: str | None, *, login: bool) -> bool:
    """True without login (one local user), else when ``username`` is an active admin."""
    if not login:
        return True
    return role_of(database, username) == Role.ADMIN.value


def require_admin(database: Database, username: str | None, action: str, *, login: bool) -> None:
    """Raise PermissionDenied unless the caller may run ``action`` (admins only)."""
    if not is_admin(database, username, login=login):
        raise PermissionDenied(f"{action} is for admins; ask an admin to run it")


def allowed_models(database: Database, project: str) -> list[str]:
    """The model strings the app accepts for ``project``: the embedded model first, then
    those in the project's ``allowed_models`` setting."""
    with database.sessions() as session:
        found = get_project(session, project)
        extra = (found.settings or {}).get(ALLOWED_MODELS_SETTING, []) if found else []
    return list(dict.fromkeys([DEFAULT_MODEL, *(str(m).strip() for m in extra if str(m).strip())]))


def check_model(database: Database, project: str, model: str | None) -> str:
    """``model`` (blank: the embedded model) when it is on the allow-list, else
    PermissionDenied naming the allowed ones."""
    chosen = (model or "").strip() or DEFAULT_MODEL
    allowed = allowed_models(database, project)
    if chosen not in allowed:
        raise PermissionDenied(
            f"model {chosen!r} is not allowed here (allowed: {', '.join(allowed)}); "
            "an admin adds models with `curator init --allow-model MODEL`"
        )
    return chosen


def set_allowed_models(database: Database, project: str, models: Sequence[str]) -> list[str]:
    """Replace ``project``'s allow-list with ``models`` (the embedded model stays allowed);
    returns the resulting list."""
    with database.sessions() as session, session.begin():
        found = get_project(session, project)
        if found is None:
            raise LookupError(f"no project named {project!r}")
        cleaned = [m.strip() for m in models if m.strip() and m.strip() != DEFAULT_MODEL]
        found.settings = {**(found.settings or {}), ALLOWED_MODELS_SETTING: cleaned}
    return allowed_models(database, project)
