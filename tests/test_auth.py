"""Annotator accounts and the login the app checks."""

from __future__ import annotations

import io
import sys

import pytest

from curator.cli import main
from curator.services.auth import (
    check_login,
    has_accounts,
    hash_password,
    set_password,
    verify_password,
)


def test_hashes_are_salted_and_verify():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("correct horse", first) and not verify_password("wrong", first)
    assert not verify_password("anything", None) and not verify_password("x", "plain")


def test_accounts_and_logins(database):
    assert not has_accounts(database)
    set_password(database, "ann", "s3cret-pass")
    assert has_accounts(database)
    assert check_login(database, "ann", "s3cret-pass")
    assert not check_login(database, "ann", "wrong-pass")
    assert not check_login(database, "bob", "s3cret-pass")
    set_password(database, "ann", "new-pass-123")  # a password change
    assert not check_login(database, "ann", "s3cret-pass")
    with pytest.raises(ValueError, match="at least 8"):
        set_password(database, "bob", "short")


def test_cli_adds_an_account_and_serve_login_needs_one(capsys, tmp_path, monkeypatch):
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "init"]) == 0
    assert main([*data, "serve", "--login"]) == 2
    assert "curator annotator add" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
    assert main([*data, "annotator", "add", "ann", "--password-stdin"]) == 0
    assert "can log in" in capsys.readouterr().out
    assert main([*data, "serve", "--host", "0.0.0.0"]) == 2
    assert "--login" in capsys.readouterr().err


def test_roles_from_the_command_line(capsys, tmp_path, monkeypatch):
    from curator.services.auth import role_of
    from db import open_database
    from db.session import sqlite_url

    data = ["--data-dir", str(tmp_path / "data")]
    for name, role in (("ann", None), ("boss", "admin")):
        monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-password\n"))
        extra = ["--role", role] if role else []
        assert main([*data, "annotator", "add", name, "--password-stdin", *extra]) == 0
    assert "as admin" in capsys.readouterr().out
    database = open_database(sqlite_url(tmp_path / "data" / "curator.db"))
    assert (role_of(database, "ann"), role_of(database, "boss")) == ("annotator", "admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("another-password\n"))
    assert main([*data, "annotator", "add", "boss", "--password-stdin"]) == 0
    assert role_of(database, "boss") == "admin"  # a password change keeps the role
    with pytest.raises(SystemExit):
        main([*data, "annotator", "add", "x", "--password-stdin", "--role", "root"])


def test_init_sets_the_models_the_app_may_use(capsys, tmp_path):
    from curator.services.access import allowed_models, check_model
    from db import open_database
    from db.session import sqlite_url

    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "init", "--allow-model", "openai/gpt-4o-mini"]) == 0
    assert "local/gemma3-270m, openai/gpt-4o-mini" in capsys.readouterr().out
    database = open_database(sqlite_url(tmp_path / "data" / "curator.db"))
    assert allowed_models(database, "default") == ["local/gemma3-270m", "openai/gpt-4o-mini"]
    assert check_model(database, "default", "") == "local/gemma3-270m"
    with pytest.raises(PermissionError, match="not allowed"):
        check_model(database, "default", "local//etc/passwd.gguf")
    assert main([*data, "init", "--allow-model", ""]) == 0  # clears the list
    assert allowed_models(database, "default") == ["local/gemma3-270m"]


def test_the_login_throttle_locks_a_name_after_repeated_failures():
    from curator.services.auth import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(free=3, base=1.0, cap=4.0, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("ann")
    assert throttle.wait_seconds("ann") == 0  # two failures: no lock yet
    throttle.failed("ann")
    assert throttle.wait_seconds("ann") == 1.0
    throttle.failed("ann")
    throttle.failed("ann")
    assert throttle.wait_seconds("ann") == 4.0  # doubling, capped
    assert throttle.wait_seconds("bob") == 0  # per name
    now[0] += 4.0
    assert throttle.wait_seconds("ann") == 0
    throttle.succeeded("ann")
    throttle.failed("ann")
    assert throttle.wait_seconds("ann") == 0  # a success starts the count again
