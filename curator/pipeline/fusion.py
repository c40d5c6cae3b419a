"""Reciprocal Rank Fusion and label proposal from fused rankings (pure functions).

RRF (Cormack et al. 2009): ``fused(p) = sum over methods m of 1 / (k + rank_m(p))``, with
1-based ranks. Gecko uses k = 0; the classic IR default is k = 60. A passage that a method
did not rank contributes nothing for that method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from curator.pipeline.negatives import (
    GuideCandidate,
    NegativeFilter,
    drop_reason,
    positive_threshold,
)

DEFAULT_FILTER = NegativeFilter()


def ranks_from_scores(scores: Mapping[int, float]) -> dict[int, int]:
    """1-based competition ranks (higher score first; ties share the best rank: 1, 2, 2, 4).

    ``None`` scores are left out (the method could not score that passage).
    """
    valid = [(p, s) for p, s in scores.items() if s is not None]
    ordered = sorted(valid, key=lambda item: -item[1])
    ranks: dict[int, int] = {}
    previous = None
    for position, (passage, score) in enumerate(ordered, start=1):
        if previous is None or score != previous[1]:
            previous = (position, score)
        ranks[passage] = previous[0]
    return ranks


def reciprocal_rank_fusion(
    rankings: Mapping[str, Mapping[int, int]], k: float = 0.0
) -> dict[int, float]:
    """Fused score per passage from several methods' 1-based ranks."""
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    fused: dict[int, float] = {}
    for ranks in rankings.values():
        for passage, rank in ranks.items():
            if rank < 1:
                raise ValueError(f"ranks are 1-based, got {rank} for passage {passage}")
            fused[passage] = fused.get(passage, 0.0) + 1.0 / (k + rank)
    return fused


def fused_order(
    fused: Mapping[int, float],
    tie_break: Mapping[int, float] | None = None,
    seed: int | None = None,
) -> list[int]:
    """Passages by fused score, best first; ties go to the ``seed`` passage (the one the
    query was written for: a tie between the LLM's and the guide's favourites must not
    drop it), then by ``tie_break`` (e.g. guide score), then by passage id."""
    tie_break = tie_break or {}
    return sorted(fused, key=lambda p: (-fused[p], p != seed, -tie_break.get(p, 0.0), p))


@dataclass
class Proposal:
    """What the pipeline proposes for one query after reranking."""

    positive: int
    negatives: list[int] = field(default_factory=list)
    fused_rank: dict[int, int] = field(default_factory=dict)
    confidence: float = 0.0
    differs_from_seed: bool = False


def propose_labels(
    order: list[int],
    fused: Mapping[int, float],
    seed: int,
    guide_scores: Mapping[int, float],
    flt: NegativeFilter = DEFAULT_FILTER,
    negative_rank: int = 20,
    negatives: int = 1,
) -> Proposal:
    """Positive = the top fused passage; negatives = passages from fused rank
    ``negative_rank`` downwards (then upwards if too few), each passing the false-negative
    guard against the positives' guide scores (the chosen positive and the seed).

    ``confidence`` is the fused-score gap between the first and the second passage,
    divided by the first's: 0 when they tie, 1 when only one passage was ranked.
    """
    if not order:
        raise ValueError("nothing to propose: the query has no ranked candidates")
    positive = order[0]
    proposal = Proposal(
        positive=positive,
        fused_rank={p: i for i, p in enumerate(order, start=1)},
        differs_from_seed=positive != seed,
    )
    top = fused[order[0]]
    second = fused[order[1]] if len(order) > 1 else 0.0
    proposal.confidence = (top - second) / top if top > 0 else 0.0
    positives = {p: guide_scores[p] for p in (positive, seed) if guide_scores.get(p) is not None}
    if not positives or negatives < 1:
        return proposal
    threshold = positive_threshold(positives.values())
    start = max(2, min(negative_rank, len(order)))
    sequence = order[start - 1 :] + order[1 : start - 1][::-1]
    # the rank window does not apply here: the candidates are the reranked top-k
    guard = NegativeFilter(
        min_rank=1,
        max_rank=len(order),
        margin=flt.margin,
        relative_margin=flt.relative_margin,
        max_score=flt.max_score,
        gist=flt.gist,
    )
    for passage in sequence:
        if passage in positives or guide_scores.get(passage) is None:
            continue
        candidate = GuideCandidate(passage, guide_scores[passage], proposal.fused_rank[passage])
        if drop_reason(candidate, threshold, guard) is None:
            proposal.negatives.append(passage)
            if len(proposal.negatives) >= negatives:
                break
    return proposal


def rankings_from_scores(
    scores_by_method: Mapping[str, Mapping[int, float | None]],
) -> dict[str, dict[int, int]]:
    """Each method's scores turned into 1-based competition ranks."""
    return {method: ranks_from_scores(scores) for method, scores in scores_by_method.items()}
