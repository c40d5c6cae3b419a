"""Hard-negative selection with a false-negative guard: pure functions over guide scores.

A mined "negative" that really answers the query (a false negative) teaches the model the
wrong thing; it is the commonest complaint about mining tools. The guard drops a
candidate when the guide model scores it too close to, or above, the query's positives:

- rank window: only candidates ranked ``min_rank``..``max_rank`` by the guide;
- ``margin``: keep a negative only if ``score <= positive - margin`` (absolute);
- ``relative_margin``: keep it only if ``score <= relative_margin * positive``
  (NV-Retriever's TopK-PercPos; 0.95 is their recommended setting and our default);
- ``max_score``: keep it only if ``score <= max_score``;
- ``gist``: drop a candidate the guide scores above the positive (GISTEmbed's rule).

With several positives the thresholds are taken against the **lowest-scoring** positive,
the strictest choice: a candidate that scores like any true positive is suspect.
(sentence-transformers' ``mine_hard_negatives`` compares against a single positive's
score, which lets a candidate that beats the weakest positive through.)

Positives themselves are never negatives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NegativeFilter:
    min_rank: int = 1
    max_rank: int = 30
    margin: float | None = None
    relative_margin: float | None = 0.95
    max_score: float | None = None
    gist: bool = True

    def __post_init__(self) -> None:
        if self.min_rank < 1 or self.max_rank < self.min_rank:
            raise ValueError(
                f"rank window must satisfy 1 <= min_rank <= max_rank, got "
                f"{self.min_rank}..{self.max_rank}"
            )
        if self.relative_margin is not None and not 0 < self.relative_margin <= 1:
            raise ValueError(f"relative margin must be in (0, 1], got {self.relative_margin}")
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")


@dataclass(frozen=True)
class GuideCandidate:
    """A passage the guide model retrieved for one query: its id, guide score and 1-based
    guide rank (plain data; the stored row is ``db.models.Candidate``)."""

    passage_id: int
    score: float
    rank: int


@dataclass
class NegativeSelection:
    """The kept negatives (best first) and why each other candidate was dropped."""

    negatives: list[GuideCandidate] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)
    threshold: float | None = None


def positive_threshold(positive_scores: Iterable[float]) -> float:
    """The score the guard compares against: the lowest positive's."""
    scores = list(positive_scores)
    if not scores:
        raise ValueError("a query needs at least one positive to select negatives")
    return min(scores)


def drop_reason(candidate: GuideCandidate, threshold: float, flt: NegativeFilter) -> str | None:
    """Why ``candidate`` is not an admissible negative against ``threshold``, or None."""
    if not flt.min_rank <= candidate.rank <= flt.max_rank:
        return "rank"
    if flt.gist and candidate.score > threshold:
        return "gist"
    if flt.margin is not None and candidate.score > threshold - flt.margin:
        return "margin"
    if flt.relative_margin is not None and candidate.score > flt.relative_margin * threshold:
        return "relative_margin"
    if flt.max_score is not None and candidate.score > flt.max_score:
        return "max_score"
    return None


def select_negatives(
    candidates: Iterable[GuideCandidate],
    positive_scores: Mapping[int, float],
    flt: NegativeFilter = NegativeFilter(),
    limit: int | None = None,
) -> NegativeSelection:
    """Admissible negatives among ``candidates``, ordered by guide rank (hardest first).

    ``positive_scores`` maps each known positive passage to its guide score for the query.
    ``limit`` keeps at most that many negatives (the rest are dropped as ``limit``).
    """
    threshold = positive_threshold(positive_scores.values())
    selection = NegativeSelection(threshold=threshold)
    for candidate in sorted(candidates, key=lambda c: c.rank):
        if candidate.passage_id in positive_scores:
            selection.dropped[candidate.passage_id] = "positive"
            continue
        reason = drop_reason(candidate, threshold, flt)
        if reason is None and limit is not None and len(selection.negatives) >= limit:
            reason = "limit"
        if reason is None:
            selection.negatives.append(candidate)
        else:
            selection.dropped[candidate.passage_id] = reason
    return selection


@dataclass
class Diagnostics:
    """What a filter setting does to a set of queries, for tuning it by looking.

    ``relative_scores`` holds, for every non-positive candidate in the rank window,
    ``score / lowest positive score``: a histogram of it with a line at the relative
    margin shows what the guard discards. Queries whose positive scores <= 0 (the guide
    finds the positive unrelated: a suspect query) have no ratio and are counted in
    ``queries_with_weak_positive`` instead. ``score_gaps`` holds ``score - lowest
    positive score`` for the same candidates and for those queries too (a line at
    ``-margin`` shows what the absolute margin discards).
    """

    queries: int = 0
    candidates: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    queries_without_negative: int = 0
    queries_with_weak_positive: int = 0
    relative_scores: list[float] = field(default_factory=list)
    score_gaps: list[float] = field(default_factory=list)

    @property
    def in_window(self) -> int:
        """Non-positive candidates inside the rank window (those the score rules judge)."""
        return self.candidates - self.dropped.get("rank", 0)

    @property
    def discarded(self) -> int:
        """Candidates inside the rank window that the guard drops, by any score rule."""
        return sum(n for reason, n in self.dropped.items() if reason != "rank")

    def as_dict(self) -> dict:
        return {
            "queries": self.queries,
            "candidates": self.candidates,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "queries_without_negative": self.queries_without_negative,
            "queries_with_weak_positive": self.queries_with_weak_positive,
        }


def diagnose(
    queries: Iterable[tuple[list[GuideCandidate], Mapping[int, float]]],
    flt: NegativeFilter = NegativeFilter(),
) -> Diagnostics:
    """Apply ``flt`` to each (candidates, positive scores) pair and count the outcome."""
    result = Diagnostics()
    for candidates, positives in queries:
        selection = select_negatives(candidates, positives, flt)
        result.queries += 1
        result.candidates += sum(1 for c in candidates if c.passage_id not in positives)
        result.kept += len(selection.negatives)
        result.dropped.update(r for r in selection.dropped.values() if r != "positive")
        if not selection.negatives:
            result.queries_without_negative += 1
        threshold = selection.threshold or 0.0
        judged = [
            c.score
            for c in candidates
            if c.passage_id not in positives and flt.min_rank <= c.rank <= flt.max_rank
        ]
        result.score_gaps.extend(score - threshold for score in judged)
        if threshold <= 0:
            result.queries_with_weak_positive += 1
        else:
            result.relative_scores.extend(score / threshold for score in judged)
    return result


@dataclass(frozen=True)
class HistogramBin:
    """One bar of a guard histogram: ``[start, end)`` (the last bar includes ``end``), how
    many values fall in it, and whether it lies past the cut (what the rule discards)."""

    start: float
    end: float
    count: int
    discarded: bool


def guard_histogram(values: Iterable[float], cut: float, bins: int = 40) -> list[HistogramBin]:
    """``values`` (e.g. :attr:`Diagnostics.relative_scores` or ``score_gaps``) in about
    ``bins`` equal bins over their range and ``cut``, one edge exactly at ``cut`` so each bar
    is wholly kept or wholly discarded (bars from ``cut`` up are ``discarded``). The CLI's
    ``curator diagnose`` prints these bars; the app draws them."""
    import math

    import numpy as np

    data = np.asarray(list(values), dtype=float)
    low = min(float(data.min()) if data.size else cut, cut)
    high = max(float(data.max()) if data.size else cut, cut)
    width = (high - low) / bins or 0.05
    start = cut - math.ceil((cut - low) / width - 1e-9) * width
    count = max(1, math.ceil((high - start) / width + 1e-9))
    if start + count * width <= high:
        count += 1
    edges = start + width * np.arange(count + 1)
    counts, _ = np.histogram(data, bins=edges)
    return [
        HistogramBin(round(float(a), 6), round(float(b), 6), int(n), bool(a >= cut - 1e-9))
        for a, b, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
