"""Inter-annotator agreement on judgments (pure functions).

A judgment is summarised as one nominal label per (query, annotator): ``reject`` or the
set of passages marked positive (``pos:3,17``). Agreement is computed on those labels:

- Cohen's kappa for a pair of annotators, on the queries both judged;
- Krippendorff's alpha (nominal) for any number of annotators, with missing judgments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import combinations, permutations


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two equally long label lists; None when undefined (no items, or
    chance agreement is 1 because both used a single identical label throughout)."""
    if len(a) != len(b):
        raise ValueError("the two annotators must label the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Mapping[object, Mapping[str, str]]) -> float | None:
    """Nominal Krippendorff's alpha. ``units``: item -> {annotator: label}; items with fewer
    than two labels are not pairable and are left out. None when undefined."""
    coincidence: Counter = Counter()
    for labels in units.values():
        values = list(labels.values())
        m = len(values)
        if m < 2:
            continue
        for i, j in permutations(range(m), 2):
            coincidence[(values[i], values[j])] += 1 / (m - 1)
    totals: Counter = Counter()
    for (c, _), weight in coincidence.items():
        totals[c] += weight
    n = sum(totals.values())
    if n <= 1:
        return None
    disagree_observed = sum(w for (c, k), w in coincidence.items() if c != k)
    disagree_expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if disagree_expected == 0:
        return None
    return 1 - (n - 1) * disagree_observed / disagree_expected


def pairwise_kappa(
    units: Mapping[object, Mapping[str, str]],
) -> dict[tuple[str, str], tuple[float | None, int]]:
    """(annotator, annotator) -> (Cohen's kappa, number of shared items)."""
    annotators = sorted({a for labels in units.values() for a in labels})
    out = {}
    for first, second in combinations(annotators, 2):
        shared = [labels for labels in units.values() if first in labels and second in labels]
        out[(first, second)] = (
            cohen_kappa([s[first] for s in shared], [s[second] for s in shared]),
            len(shared),
        )
    return out
