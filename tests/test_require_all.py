"""CURATOR_REQUIRE_ALL turns the skips for missing outside resources into failures."""

from __future__ import annotations

import pytest
from conftest import skip_unless_required


def test_a_missing_resource_skips_by_default(monkeypatch):
    monkeypatch.delenv("CURATOR_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        skip_unless_required("no chromium")


def test_a_missing_resource_fails_when_everything_is_required(monkeypatch):
    monkeypatch.setenv("CURATOR_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no chromium .*CURATOR_REQUIRE_ALL"):
        skip_unless_required("no chromium")


def test_ci_requires_everything():
    from pathlib import Path

    script = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "export CURATOR_REQUIRE_ALL=1" in script
    # the PostgreSQL half of the suite runs on a real server that CI starts
    assert "make postgres-deps" in script and "tests/postgres.py start" in script
