"""Reciprocal Rank Fusion and label proposal (pure functions)."""

from __future__ import annotations

import pytest

from curator.pipeline.fusion import (
    fused_order,
    propose_labels,
    ranks_from_scores,
    reciprocal_rank_fusion,
)
from curator.pipeline.negatives import NegativeFilter


def test_ranks_from_scores_share_ranks_on_ties_and_skip_missing():
    assert ranks_from_scores({1: 0.9, 2: 0.5, 3: 0.5, 4: 0.1, 5: None}) == {1: 1, 2: 2, 3: 2, 4: 4}


def test_rrf_with_k_zero_and_sixty():
    rankings = {"ql": {1: 1, 2: 2, 3: 3}, "guide": {1: 3, 2: 1, 3: 2}}
    fused = reciprocal_rank_fusion(rankings, k=0)
    assert fused == pytest.approx({1: 1 + 1 / 3, 2: 0.5 + 1, 3: 1 / 3 + 0.5})
    assert fused_order(fused) == [2, 1, 3]
    fused60 = reciprocal_rank_fusion(rankings, k=60)
    assert fused60[1] == pytest.approx(1 / 61 + 1 / 63)


def test_missing_ranks_contribute_nothing():
    fused = reciprocal_rank_fusion({"ql": {1: 1}, "rc": {1: 2, 2: 1}}, k=0)
    assert fused == pytest.approx({1: 1.5, 2: 1.0})


def test_fused_ties_break_by_guide_score_then_id():
    fused = {1: 1.0, 2: 1.0, 3: 1.0}
    assert fused_order(fused, {1: 0.2, 2: 0.9}) == [2, 1, 3]
    assert fused_order(fused) == [1, 2, 3]


@pytest.mark.parametrize("bad", [{"ql": {1: 0}}, {"ql": {1: -2}}])
def test_ranks_must_be_one_based(bad):
    with pytest.raises(ValueError):
        reciprocal_rank_fusion(bad)


def test_rrf_k_must_be_non_negative():
    with pytest.raises(ValueError):
        reciprocal_rank_fusion({"ql": {1: 1}}, k=-1)


def test_proposal_positive_confidence_and_seed_change():
    order = [7, 3, 5, 9]
    fused = {7: 2.0, 3: 1.0, 5: 0.5, 9: 0.25}
    guide = {7: 0.8, 3: 0.85, 5: 0.5, 9: 0.3}
    proposal = propose_labels(order, fused, seed=3, guide_scores=guide, negative_rank=3)
    assert proposal.positive == 7 and proposal.differs_from_seed
    assert proposal.confidence == pytest.approx(0.5)
    assert proposal.fused_rank == {7: 1, 3: 2, 5: 3, 9: 4}
    # negatives start at fused rank 3; the guard compares with the lower of positive/seed
    assert proposal.negatives == [5]


def test_negative_at_rank_failing_the_guard_moves_down_then_up():
    order = [1, 2, 3, 4, 5]
    fused = {p: 1 / p for p in order}
    guide = {1: 0.8, 2: 0.4, 3: 0.79, 4: 0.78, 5: 0.77}  # ranks 3-5 too close to 0.8
    proposal = propose_labels(
        order,
        fused,
        seed=1,
        guide_scores=guide,
        negative_rank=3,
        flt=NegativeFilter(relative_margin=0.95),
    )
    assert proposal.negatives == [2]  # 3, 4, 5 fail (> 0.76), then upwards: 2 passes
    assert not proposal.differs_from_seed


def test_several_negatives_and_none_when_all_fail():
    order = [1, 2, 3, 4]
    fused = {p: 1 / p for p in order}
    proposal = propose_labels(
        order, fused, 1, {1: 0.9, 2: 0.1, 3: 0.2, 4: 0.3}, negative_rank=2, negatives=2
    )
    assert proposal.negatives == [2, 3]
    none = propose_labels(order, fused, 1, {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.8})
    assert none.negatives == []


def test_single_candidate_has_full_confidence_and_empty_input_is_refused():
    proposal = propose_labels([4], {4: 1.0}, 4, {4: 0.5})
    assert proposal.confidence == 1.0 and proposal.negatives == []
    with pytest.raises(ValueError):
        propose_labels([], {}, 1, {})


def test_a_tie_between_the_llms_and_the_guides_favourites_goes_to_the_seed():
    # the LLM ranks the seed (7) first, the guide ranks it last among the candidates and
    # puts 3 first: with k = 0 both fuse to 1 + 1/3; the seed must not lose on the guide's
    # own score as tie-breaker (issue #78 on dbpedia)
    rankings = {"ql": {7: 1, 5: 2, 3: 3}, "guide": {3: 1, 5: 2, 7: 3}}
    fused = reciprocal_rank_fusion(rankings, k=0)
    guide = {3: 0.9, 5: 0.8, 7: 0.4}
    assert fused[7] == fused[3]
    assert fused_order(fused, guide, seed=7)[0] == 7
    assert fused_order(fused, guide)[0] == 3  # without a seed: the guide's score decides
