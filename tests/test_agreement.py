"""Agreement statistics, checked against scikit-learn and a published example."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import cohen_kappa_score

from curator.pipeline.agreement import cohen_kappa, krippendorff_alpha, pairwise_kappa


def test_cohen_kappa_matches_scikit_learn():
    rng = random.Random(0)
    for _ in range(20):
        a = [rng.choice("xyz") for _ in range(30)]
        b = [x if rng.random() < 0.6 else rng.choice("xyz") for x in a]
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x", "x"], ["x", "x"]) is None  # chance agreement is certain
    assert cohen_kappa(["x", "y"], ["x", "y"]) == 1.0
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_krippendorff_alpha_on_the_published_nominal_example():
    """Krippendorff (2011), 'Computing Krippendorff's alpha-reliability': 4 observers,
    12 units with missing values; nominal alpha = 0.743."""
    rows = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    units = {
        u: {coder: str(values[u]) for coder, values in rows.items() if values[u] is not None}
        for u in range(12)
    }
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=0.001)


def test_alpha_extremes_and_pairwise_table():
    perfect = {1: {"a": "x", "b": "x"}, 2: {"a": "y", "b": "y"}}
    assert krippendorff_alpha(perfect) == pytest.approx(1.0)
    assert krippendorff_alpha({1: {"a": "x"}}) is None
    table = pairwise_kappa({1: {"a": "x", "b": "x", "c": "y"}, 2: {"a": "y", "b": "y"}})
    assert table[("a", "b")] == (1.0, 2)
    assert table[("a", "c")][1] == 1 and table[("b", "c")][1] == 1
