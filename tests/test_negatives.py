"""Hard-negative selection and its false-negative guard (pure functions)."""

from __future__ import annotations

import pytest

from curator.pipeline.negatives import (
    GuideCandidate,
    NegativeFilter,
    diagnose,
    drop_reason,
    guard_histogram,
    select_negatives,
)


def cands(*scores: float) -> list[GuideCandidate]:
    """Candidates with ids 1.. and ranks in the order given (scores descending)."""
    return [GuideCandidate(passage_id=i, score=s, rank=i) for i, s in enumerate(scores, start=1)]


def test_relative_margin_keeps_candidates_below_95_percent_of_the_positive():
    candidates = cands(0.90, 0.80, 0.76, 0.75, 0.50)
    selection = select_negatives(candidates, {99: 0.80}, NegativeFilter(relative_margin=0.95))
    assert [c.passage_id for c in selection.negatives] == [3, 4, 5]  # <= 0.76
    assert selection.dropped == {1: "gist", 2: "relative_margin"}


def test_gist_rule_alone_drops_only_candidates_above_the_positive():
    flt = NegativeFilter(relative_margin=None, gist=True)
    selection = select_negatives(cands(0.9, 0.8, 0.7), {99: 0.85}, flt)
    assert [c.passage_id for c in selection.negatives] == [2, 3]
    assert selection.dropped == {1: "gist"}


def test_absolute_margin_and_max_score():
    flt = NegativeFilter(relative_margin=None, gist=False, margin=0.1, max_score=0.6)
    selection = select_negatives(cands(0.75, 0.65, 0.55), {99: 0.8}, flt)
    assert selection.dropped == {1: "margin", 2: "max_score"}
    assert [c.passage_id for c in selection.negatives] == [3]


def test_rank_window_and_limit():
    flt = NegativeFilter(min_rank=2, max_rank=4, relative_margin=None)
    selection = select_negatives(cands(0.5, 0.4, 0.3, 0.2, 0.1), {99: 0.9}, flt, limit=2)
    assert [c.passage_id for c in selection.negatives] == [2, 3]
    assert selection.dropped == {1: "rank", 4: "limit", 5: "rank"}


def test_several_positives_use_the_lowest_scoring_one():
    """Candidate 2 (0.70) beats the weaker positive (0.72 * 0.95 = 0.684): a likely false
    negative. Comparing with the strongest positive (0.90 * 0.95) would have kept it."""
    candidates = [
        GuideCandidate(10, 0.90, 1),
        GuideCandidate(2, 0.70, 2),
        GuideCandidate(11, 0.72, 3),
        GuideCandidate(3, 0.60, 4),
    ]
    positives = {10: 0.90, 11: 0.72}
    selection = select_negatives(candidates, positives, NegativeFilter())
    assert [c.passage_id for c in selection.negatives] == [3]
    assert selection.dropped == {10: "positive", 2: "relative_margin", 11: "positive"}
    assert selection.threshold == 0.72


def test_positives_are_never_negatives_even_with_no_filter():
    flt = NegativeFilter(relative_margin=None, gist=False)
    selection = select_negatives(cands(0.9, 0.8), {1: 0.9}, flt)
    assert [c.passage_id for c in selection.negatives] == [2]


def test_a_query_needs_a_positive():
    with pytest.raises(ValueError, match="at least one positive"):
        select_negatives(cands(0.5), {}, NegativeFilter())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_rank": 0},
        {"min_rank": 5, "max_rank": 4},
        {"relative_margin": 1.5},
        {"relative_margin": 0},
        {"margin": -0.1},
    ],
)
def test_invalid_filters_are_refused(kwargs):
    with pytest.raises(ValueError):
        NegativeFilter(**kwargs)


def test_drop_reason_order_is_gist_before_margins():
    assert drop_reason(GuideCandidate(1, 0.95, 3), 0.9, NegativeFilter()) == "gist"
    assert drop_reason(GuideCandidate(1, 0.95, 40), 0.9, NegativeFilter()) == "rank"


def test_diagnostics_count_discards_and_queries_left_without_negatives():
    queries = [
        (cands(0.90, 0.70, 0.50), {1: 0.90}),  # keeps 2 and 3
        (cands(0.80, 0.79), {1: 0.80}),  # 0.79 > 0.76: nothing left
    ]
    result = diagnose(queries, NegativeFilter())
    assert result.as_dict() == {
        "queries": 2,
        "candidates": 3,
        "kept": 2,
        "dropped": {"relative_margin": 1},
        "queries_without_negative": 1,
        "queries_with_weak_positive": 0,
    }
    assert sorted(round(r, 4) for r in result.relative_scores) == [0.5556, 0.7778, 0.9875]


def test_diagnostics_count_queries_whose_positive_the_guide_finds_unrelated():
    result = diagnose([(cands(0.30, 0.20), {9: -0.05})], NegativeFilter())
    assert result.queries_with_weak_positive == 1 and result.relative_scores == []
    assert result.dropped == {"gist": 2} and result.queries_without_negative == 1


def test_guard_histogram_puts_an_edge_at_the_cut_and_counts_every_value():
    values = [0.1, 0.42, 0.5, 0.55, 0.93, 1.2]
    bars = guard_histogram(values, cut=0.5, bins=10)
    assert sum(b.count for b in bars) == len(values)
    assert any(b.start == 0.5 for b in bars)  # no bar straddles the cut
    assert all(b.discarded == (b.start >= 0.5) for b in bars)
    assert sum(b.count for b in bars if b.discarded) == 4  # 0.5, 0.55, 0.93, 1.2
    assert bars[0].start <= 0.1 and bars[-1].end >= 1.2
    assert guard_histogram([], cut=0.95)[0].count == 0
