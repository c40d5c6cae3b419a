"""A seeded sample of bench/fuzz.py's malformed and hostile inputs through the real CLI:
no traceback, no silent acceptance, no stored row lost or changed, every error located."""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import fuzz


def test_a_seeded_fuzz_sample_finds_no_defect():
    report = io.StringIO()
    counts = fuzz.fuzz(100, seed=7, out=report)
    assert counts["tried"] == 100
    failures = {verdict: counts[verdict] for verdict in sorted(fuzz.FAILURES)}
    assert failures == dict.fromkeys(sorted(fuzz.FAILURES), 0), report.getvalue()
    # the sample holds both kinds: refused malformed input and stored well-formed input
    assert counts["clear error"] > 50 and counts["accepted"] > 5


def test_every_family_is_in_the_sample():
    names = {fuzz.make_case(7, index).name.split("/")[0] for index in range(100)}
    assert names >= {
        "jsonl",
        "beir",
        "csv",
        "tsv",
        "parquet",
        "folder",
        "beir-import",
        "flag-import",
    }


def test_the_checks_can_fail(tmp_path):
    """A well-formed case whose expected records are wrong is reported as data lost, and a
    malformed case expected to pass is reported as refused: the verdicts are not constant."""
    template = fuzz.make_template(tmp_path)
    good = fuzz.Case("x/ok", "ingest", {"c.jsonl": b'{"_id": "a", "text": "t"}\n'}, "c.jsonl")
    good.good = {"a": "other text"}
    assert fuzz.run_case(good, template, tmp_path / "w")[0][0] == "data lost"
    bad = fuzz.Case("x/bad", "ingest", {"c.jsonl": b'{"_id": "a"}\n'}, "c.jsonl")
    assert fuzz.run_case(bad, template, tmp_path / "w")[0][0] == "wrongly refused"
    bad.bad = ("c.jsonl", 1, "title")  # the error names 'text', not 'title'
    assert fuzz.run_case(bad, template, tmp_path / "w")[0][0] == "unlocated error"
