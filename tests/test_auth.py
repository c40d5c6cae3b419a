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
