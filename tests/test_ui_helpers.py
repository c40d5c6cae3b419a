"""Small parts of the app without a browser: the progress bar's ETA, the first-use
guide, the fine-tuned vs base comparison."""

from __future__ import annotations

import pytest

from curator.services.status import ProjectStatus
from curator.services.train import PairedComparison, paired_comparison
from curator.ui.passages import NEXT_STEPS, next_step
from curator.ui.progress_bar import BarProgress, eta_text
from curator.ui.training import held_out_note


def test_eta_from_the_rate_so_far():
    assert eta_text(0, 10, 5.0) == ""  # nothing done: no rate yet
    assert eta_text(5, None, 5.0) == ""  # no total
    assert eta_text(10, 40, 20.0) == "ETA 1:00"  # 2 s per item, 30 left
    assert eta_text(1, 3601, 1.0) == "ETA 1:00:00"


def test_the_bar_reports_counts_and_an_eta():
    now = [100.0]
    calls = []
    bar = BarProgress(lambda p, desc, unit: calls.append((p, desc, unit)), clock=lambda: now[0])
    bar.start(4, "passages", "generate")
    now[0] += 10
    bar.advance(1)
    assert calls[0] == ((0, 4), "generate", "passages")
    assert calls[-1] == ((1, 4), "generate · ETA 0:30", "passages")
    bar.start(None, "B", "ingest")
    assert calls[-1] == (None, "ingest", "B")  # unknown total: an indeterminate bar


def test_training_steps_count_from_the_first_step():
    now = [0.0]
    calls = []
    bar = BarProgress(lambda p, desc, unit: calls.append((p, desc)), clock=lambda: now[0])
    now[0] = 50.0  # model loading before the first step is not counted
    bar.update(1, 11, "fine-tune")
    now[0] += 20
    bar.update(3, 11, "fine-tune")
    assert calls[-1] == ((3, 11), "fine-tune · ETA 1:20")  # 10 s per step, 8 left


def _status(**counts) -> ProjectStatus:
    keys = {k for k, _ in NEXT_STEPS}
    return ProjectStatus("p", "sqlite://", {k: counts.get(k, 0) for k in keys}, [])


def test_the_guide_names_the_first_stage_with_nothing_in_it():
    assert "ingest a corpus" in next_step(_status())
    assert "generate queries" in next_step(_status(passages=5))
    assert "mine candidates" in next_step(_status(passages=5, queries_ok=3))
    done = {k: 1 for k, _ in NEXT_STEPS}
    assert next_step(_status(**done)) == ""


def test_paired_comparison_counts_wins_ties_losses_by_query():
    qrels = {"a": {"d1": 1}, "b": {"d2": 1}, "c": {"d3": 1}, "d": {"d4": 1}}
    tuned = {
        "a": {"d1": 2.0, "x": 1.0},  # relevant first: nDCG 1
        "b": {"d2": 2.0, "x": 1.0},
        "c": {"d3": 2.0, "x": 1.0},  # same as base: a tie
        "d": {"x": 2.0, "d4": 1.0},  # relevant second
    }
    base = {
        "a": {"x": 2.0, "d1": 1.0},
        "b": {"x": 2.0, "y": 1.0},  # relevant not retrieved: 0
        "c": {"d3": 2.0, "x": 1.0},
        "d": {"d4": 2.0, "x": 1.0},
    }
    paired = paired_comparison(tuned, base, qrels, resamples=500)
    assert (paired.wins, paired.ties, paired.losses) == (2, 1, 1)
    second = 1 / 1.584962500721156  # nDCG of a lone relevant passage at rank 2 (1/log2 3)
    expected = ((1 - second) + 1 + 0 + (second - 1)) / 4
    assert paired.mean_diff == pytest.approx(expected)
    assert paired.low <= paired.mean_diff <= paired.high
    assert paired_comparison(tuned, base, qrels, resamples=500) == paired  # seeded
    assert PairedComparison.from_values(paired.values()) == paired
    note = held_out_note(4, paired)
    assert "2 wins, 1 ties, 1 losses" in note and "interval" in note
    assert "fewer than 30" in note
