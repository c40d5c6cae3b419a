"""Accounts for the app's login: scrypt password hashes and roles in the annotators table,
a login check that takes as long for unknown names as for known ones, and a per-name
backoff after repeated failures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import select

from db import Database
from db.models import Annotator, Role

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8
ROLES = tuple(role.value for role in Role)


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash of a random password: unknown names are checked against it, so a login
    costs one scrypt whether or not the name exists."""
    return hash_password(secrets.token_hex(16))


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(
        password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate.hex(), digest)


def set_password(database: Database, username: str, password: str, role: str | None = None) -> None:
    """Create annotator ``username`` (or update their password); ``role`` (admin or
    annotator) sets their role, None keeps it (new accounts: annotator)."""
    name = username.strip()
    if not name:
        raise ValueError("a username is required")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"passwords need at least {MIN_PASSWORD} characters")
    if role is not None and role not in ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    with database.sessions() as session, session.begin():
        annotator = session.scalar(select(Annotator).where(Annotator.username == name))
        if annotator is None:
            annotator = Annotator(username=name, display_name=name, role=Role.ANNOTATOR.value)
            session.add(annotator)
        annotator.password_hash = hash_password(password)
        annotator.is_active = True
        if role is not None:
            annotator.role = role


def check_login(database: Database, username: str, password: str) -> bool:
    """True when ``username`` is an active annotator with this password. An unknown or
    inactive name is checked against a dummy hash, so the answer takes as long."""
    with database.sessions() as session:
        annotator = session.scalar(select(Annotator).where(Annotator.username == username))
    usable = bool(annotator and annotator.is_active and annotator.password_hash)
    stored = annotator.password_hash if usable else _dummy_hash()
    return verify_password(password, stored) and usable


def role_of(database: Database, username: str | None) -> str | None:
    """The role of active account ``username``; None for an unknown or inactive name."""
    if not username:
        return None
    with database.sessions() as session:
        annotator = session.scalar(select(Annotator).where(Annotator.username == username))
    return annotator.role if annotator and annotator.is_active else None


def has_accounts(database: Database) -> bool:
    with database.sessions() as session:
        return (
            session.scalar(
                select(Annotator.id).where(Annotator.password_hash.is_not(None)).limit(1)
            )
            is not None
        )


@dataclass
class LoginThrottle:
    """Per-name backoff for failed logins: after ``free`` failures in a row a name is
    locked for ``base`` seconds, doubling with each further failure up to ``cap``; while
    locked, attempts are refused without checking the password. A success clears the
    name. Unknown names are throttled alike, so the lock tells nothing about which exist.
    """

    free: int = 3
    base: float = 1.0
    cap: float = 60.0
    clock: object = time.monotonic
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_seconds(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        with self._lock:
            _, until = self._failures.get(name, (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, name: str) -> None:
        with self._lock:
            count, _ = self._failures.get(name, (0, 0.0))
            count += 1
            delay = (
                0.0 if count < self.free else min(self.cap, self.base * 2 ** (count - self.free))
            )
            self._failures[name] = (count, self.clock() + delay)
            if len(self._failures) > 100_000:  # bound the memory a name spray can take
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


def throttled_login(
    database: Database, throttle: LoginThrottle, username: str, password: str
) -> bool:
    """``check_login`` behind ``throttle``: a locked name is refused at once."""
    name = username.strip().lower()
    if throttle.wait_seconds(name) > 0:
        return False
    if check_login(database, username, password):
        throttle.succeeded(name)
        return True
    throttle.failed(name)
    return False
