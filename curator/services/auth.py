"""Annotator accounts for the app's login: scrypt password hashes in the annotators table."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from db import Database
from db.models import Annotator

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate.hex(), digest)


def set_password(database: Database, username: str, password: str) -> None:
    """Create annotator ``username`` (or update their password)."""
    name = username.strip()
    if not name:
        raise ValueError("a username is required")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"passwords need at least {MIN_PASSWORD} characters")
    with database.sessions() as session, session.begin():
        annotator = session.scalar(select(Annotator).where(Annotator.username == name))
        if annotator is None:
            annotator = Annotator(username=name, display_name=name)
            session.add(annotator)
        annotator.password_hash = hash_password(password)
        annotator.is_active = True


def check_login(database: Database, username: str, password: str) -> bool:
    """True when ``username`` is an active annotator with this password."""
    with database.sessions() as session:
        annotator = session.scalar(select(Annotator).where(Annotator.username == username))
    return bool(
        annotator and annotator.is_active and verify_password(password, annotator.password_hash)
    )


def has_accounts(database: Database) -> bool:
    with database.sessions() as session:
        return (
            session.scalar(
                select(Annotator.id).where(Annotator.password_hash.is_not(None)).limit(1)
            )
            is not None
        )
