"""The curated training set as plain data, and the rules that build it.

Input: one :class:`QueryRecord` per generated query (its text, the pipeline's latest
proposal, and the effective human or imported judgments on it). Output: a
:class:`TrainingSet` of :class:`Example` rows split into ``train`` and ``eval``.

Rules (shared by the trainer and by every export format):

- a query with a judgment takes its labels from the **latest** effective judgment (a
  person's decision overrides the LLM's proposal; with several annotators the most recent
  decision wins, the others stay in the history);
- a rejected query is dropped;
- an edited query text, and edited passage texts, replace the originals;
- a passage marked *false negative* is never used as a negative;
- a judgment that marks no negatives (e.g. an override that only picks the positive, or
  imported qrels) keeps the pipeline's proposed hard negatives, minus its positives and
  false negatives;
- an unreviewed query (no effective judgment) is included by ``policy``: ``none`` (never),
  ``high_confidence`` (its proposal's confidence >= ``min_confidence``) or ``all``; an
  unreviewed query that a pipeline stage flagged (a copy of its passage, junk, a
  duplicate, or a seed the guide does not retrieve) is left out under every policy, with
  the flag as the reason; a person's judgment overrides the flags;
- the split is by **seed passage** (all queries written for one passage land on the same
  side, so no query or near-duplicate of it is in both), decided by a hash of the seed and
  the passage id: stable when queries are added, and stored so runs compare.

No database or ML imports here: ``curator.services.training_set`` reads the tables; the
trainer (``curator.services.train``) and every export writer (``curator.pipeline.export``)
use these rules.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass, field
from typing import Any

POLICIES = ("none", "high_confidence", "all")
SCORE_SOURCES = ("auto", "ql", "guide")
SPLITS = ("train", "eval")
DEFAULT_SEED = 13
DEFAULT_EVAL_FRACTION = 0.2
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class PassageRecord:
    passage_id: int
    external_id: str
    title: str
    text: str

    def full_text(self) -> str:
        """Title and text as the models see them (the mining stage's convention)."""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass
class JudgmentRecord:
    """One effective judgment (not retracted) on a query."""

    judgment_id: int
    annotator: str
    decision: str  # accept / override / reject
    provenance: str  # human / imported
    created_at: Any = None
    edited_query: str | None = None
    reject_reason: str | None = None
    positives: list[int] = field(default_factory=list)
    negatives: list[int] = field(default_factory=list)
    false_negatives: list[int] = field(default_factory=list)
    edited_texts: dict[int, str] = field(default_factory=dict)


@dataclass
class QueryRecord:
    """A generated query with what the pipeline proposed and what people decided."""

    query_id: int
    seed_passage_id: int
    task: str
    query: str
    model: str = ""
    prompt_version: str = ""
    proposed_positives: list[int] = field(default_factory=list)
    proposed_negatives: list[int] = field(default_factory=list)
    confidence: float | None = None
    proposal_provenance: str | None = None
    judgments: list[JudgmentRecord] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # flag kinds (copy, junk, ...)


@dataclass
class Example:
    """One training or evaluation query with its labelled passages (passage ids)."""

    query_id: int
    seed_passage_id: int
    task: str
    query: str
    positives: list[int]
    negatives: list[int]
    false_negatives: list[int] = field(default_factory=list)
    source: str = "llm"  # human / imported / llm (unreviewed proposal)
    judgment_id: int | None = None
    annotator: str | None = None
    split: str = "train"
    model: str = ""
    prompt_version: str = ""
    confidence: float | None = None
    guide_scores: dict[int, float] = field(default_factory=dict)
    llm_scores: dict[int, float] = field(default_factory=dict)
    edited_texts: dict[int, str] = field(default_factory=dict)


@dataclass
class TrainingSet:
    """Examples plus the passages they name and how they were chosen."""

    examples: list[Example]
    passages: dict[int, PassageRecord]
    policy: str
    seed: int
    eval_fraction: float
    min_confidence: float
    project: str = ""
    snapshot: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def train(self) -> list[Example]:
        return [e for e in self.examples if e.split == "train"]

    @property
    def eval(self) -> list[Example]:
        return [e for e in self.examples if e.split == "eval"]

    def text(self, example: Example, passage_id: int) -> str:
        """The passage's text for this example: the annotator's edit, else the original."""
        edited = example.edited_texts.get(passage_id)
        if edited is not None:
            return edited
        return self.passages[passage_id].full_text()

    def counts(self) -> dict[str, Any]:
        by_source: dict[str, int] = {}
        for example in self.examples:
            by_source[example.source] = by_source.get(example.source, 0) + 1
        return {
            "examples": len(self.examples),
            "train": len(self.train),
            "eval": len(self.eval),
            "by_source": by_source,
            "with_negatives": sum(1 for e in self.examples if e.negatives),
            "passages": len(self.passages),
            "dropped": dict(self.dropped),
        }


def assign_split(group: int, seed: int, eval_fraction: float) -> str:
    """``eval`` for about ``eval_fraction`` of groups, decided by a hash of (seed, group)."""
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "eval" if position < eval_fraction else "train"


def resolve_example(
    record: QueryRecord, policy: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> tuple[Example | None, str]:
    """The example a query contributes, or ``None`` and the reason it is left out."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    base = {
        "query_id": record.query_id,
        "seed_passage_id": record.seed_passage_id,
        "task": record.task,
        "model": record.model,
        "prompt_version": record.prompt_version,
        "confidence": record.confidence,
    }
    if record.judgments:
        latest = max(record.judgments, key=lambda j: j.judgment_id)
        if latest.decision == "reject":
            return None, "rejected"
        if not latest.positives:
            return None, "no_positive"
        excluded = set(latest.positives) | set(latest.false_negatives)
        # a judgment that marks no negatives keeps the miner's guarded hard negatives
        negatives = latest.negatives or record.proposed_negatives
        return (
            Example(
                **base,
                query=latest.edited_query or record.query,
                positives=list(latest.positives),
                negatives=[p for p in negatives if p not in excluded],
                false_negatives=list(latest.false_negatives),
                source=latest.provenance,
                judgment_id=latest.judgment_id,
                annotator=latest.annotator,
                edited_texts=dict(latest.edited_texts),
            ),
            "",
        )
    if policy == "none":
        return None, "unreviewed"
    if record.flags:
        return None, f"flagged_{sorted(record.flags)[0]}"
    if not record.proposed_positives:
        return None, "no_proposal"
    if policy == "high_confidence" and (record.confidence or 0.0) < min_confidence:
        return None, "low_confidence"
    positives = set(record.proposed_positives)
    return (
        Example(
            **base,
            query=record.query,
            positives=list(record.proposed_positives),
            negatives=[p for p in record.proposed_negatives if p not in positives],
            source="llm",
        ),
        "",
    )


def build_examples(
    records: list[QueryRecord],
    policy: str = "none",
    *,
    seed: int = DEFAULT_SEED,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    stored_splits: dict[int, str] | None = None,
) -> tuple[list[Example], dict[str, int]]:
    """Examples for the records (stored splits kept, new ones assigned by seed passage),
    and how many queries were left out for each reason."""
    stored = stored_splits or {}
    examples: list[Example] = []
    dropped: dict[str, int] = {}
    for record in records:
        example, reason = resolve_example(record, policy, min_confidence)
        if example is None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        example.split = stored.get(record.query_id) or assign_split(
            record.seed_passage_id, seed, eval_fraction
        )
        examples.append(example)
    return examples, dropped


# flags that do not keep a query out of a label-free *evaluation*: "inconsistent" means the
# guide (the base model) does not retrieve the seed, so leaving those out would choose the
# test queries by one of the models the test compares
EVAL_KEEPS_FLAGS = frozenset({"inconsistent"})


def generated_held_out(
    records: list[QueryRecord],
    *,
    seed: int = DEFAULT_SEED,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    stored_splits: dict[int, str] | None = None,
) -> list[Example]:
    """The held-out side of the unreviewed generated queries, for a label-free evaluation.

    In: every parsed query's record, the split seed and fraction, the stored splits. Out:
    one ``eval`` example per unreviewed query on the held-out side (stored split, else the
    seed passage's hash, as :func:`build_examples`), whose only relevant passage is its seed
    passage. A query flagged copy, junk or duplicate is left out; one flagged only
    ``inconsistent`` stays (see ``EVAL_KEEPS_FLAGS``), so the set is not picked by the
    base model, and no model's proposal decides what counts as relevant.
    """
    stored = stored_splits or {}
    examples = []
    for record in records:
        if record.judgments or set(record.flags) - EVAL_KEEPS_FLAGS:
            continue
        split = stored.get(record.query_id) or assign_split(
            record.seed_passage_id, seed, eval_fraction
        )
        if split != "eval":
            continue
        examples.append(
            Example(
                query_id=record.query_id,
                seed_passage_id=record.seed_passage_id,
                task=record.task,
                query=record.query,
                positives=[record.seed_passage_id],
                negatives=[],
                split="eval",
                model=record.model,
                prompt_version=record.prompt_version,
            )
        )
    return examples


def training_rows(
    training_set: TrainingSet, split: str = "train", negatives: int = 1, seed: int = 0
) -> list[dict[str, str]]:
    """Rows ``{"anchor", "positive", "negative_1", ...}`` for sentence-transformers, one per
    (example, positive). An example with fewer than ``negatives`` hard negatives is filled
    with other examples' positives (random, seeded; never its own positives or false
    negatives), so every row has the same columns and no curated query is lost."""
    import random

    rng = random.Random(seed)
    chosen_split = [e for e in training_set.examples if e.split == split]
    pool = sorted({p for e in chosen_split for p in e.positives})
    rows: list[dict[str, str]] = []
    for example in chosen_split:
        chosen = example.negatives[:negatives]
        if len(chosen) < negatives:
            excluded = set(example.positives) | set(example.false_negatives) | set(chosen)
            _fill(chosen, negatives, pool, excluded, rng)
        if len(chosen) < negatives:
            continue
        for positive in example.positives:
            row = {"anchor": example.query, "positive": training_set.text(example, positive)}
            for i, negative in enumerate(chosen, start=1):
                row[f"negative_{i}"] = training_set.text(example, negative)
            rows.append(row)
    return rows


def _fill(chosen: list[int], wanted: int, pool: list[int], excluded: set[int], rng) -> None:
    """Append random members of ``pool`` not in ``excluded`` to ``chosen`` until it has
    ``wanted`` (or the pool runs out). When at least half the pool is eligible, draw and
    reject (a few draws per pick), so filling stays cheap however large the pool is."""
    if len(pool) > 2 * (len(excluded) + wanted):
        taken = set(excluded)
        while len(chosen) < wanted:
            candidate = pool[rng.randrange(len(pool))]
            if candidate not in taken:
                chosen.append(candidate)
                taken.add(candidate)
        return
    fillers = [p for p in pool if p not in excluded]
    while len(chosen) < wanted and fillers:
        chosen.append(fillers.pop(rng.randrange(len(fillers))))


def choose_score_source(training_set: TrainingSet, wanted: str = "auto") -> str | None:
    """The teacher scores to use: ``ql`` (the LLM's query likelihood) when any example has
    them and ``wanted`` is ``auto``, else ``guide`` (the guide model's cosine) when any has
    them; ``None`` when there are none. One source per set: the two scales differ."""
    if wanted not in SCORE_SOURCES:
        raise ValueError(f"scores must be one of {SCORE_SOURCES}, got {wanted!r}")
    has_ql = any(e.llm_scores for e in training_set.examples)
    has_guide = any(e.guide_scores for e in training_set.examples)
    if wanted == "ql":
        return "ql" if has_ql else None
    if wanted == "guide":
        return "guide" if has_guide else None
    return "ql" if has_ql else ("guide" if has_guide else None)


def teacher_scores(example: Example, source: str | None) -> dict[int, float]:
    """The example's scores from ``source`` (``ql`` / ``guide``), empty for ``None``."""
    if source == "ql":
        return example.llm_scores
    if source == "guide":
        return example.guide_scores
    return {}


def teacher_scale(training_set: TrainingSet, source: str | None, split: str = "train") -> float:
    """The factor that puts ``source``'s score margins on the guide's cosine scale.

    In: the set (with scores loaded) and the teacher. Out: the standard deviation of the
    guide's (positive - negative) margins over the split's pairs that both scored, divided
    by that of the teacher's margins on the same pairs; 1.0 for the guide itself, or with
    fewer than two such pairs or no spread. Query likelihoods are sums of log-probabilities
    (tens of nats apart) while a normalised student's margins stay within [-2, 2]: trained
    on raw QL margins, MarginMSE pulls every pair apart as far as it can and the retriever
    collapses (SciFact train nDCG@10 0.660 -> 0.528, README)."""
    if source in (None, "guide"):
        return 1.0
    guide_margins, teacher_margins = [], []
    for example in training_set.examples:
        if example.split != split:
            continue
        scores, guide = teacher_scores(example, source), example.guide_scores
        for positive in example.positives:
            for negative in example.negatives:
                pair = (positive, negative)
                if all(p in scores and p in guide for p in pair):
                    teacher_margins.append(scores[positive] - scores[negative])
                    guide_margins.append(guide[positive] - guide[negative])
    if len(teacher_margins) < 2:
        return 1.0
    spread = statistics.pstdev(teacher_margins)
    return statistics.pstdev(guide_margins) / spread if spread > 0 else 1.0


def margin_mse_rows(
    training_set: TrainingSet,
    split: str,
    negatives: int,
    source: str | None,
    scale: float = 1.0,
) -> tuple[list[dict[str, Any]], int]:
    """MarginMSE rows of ``split`` (``anchor``, ``positive``, ``negative_1..n``, ``label``
    = [scale * (score(positive) - score(negative_i))] from ``source``; ``scale`` from
    :func:`teacher_scale` for training) and how many (example, positive) pairs were left
    out for want of ``negatives`` scored hard negatives."""
    rows: list[dict[str, Any]] = []
    left_out = 0
    for example in training_set.examples:
        if example.split != split:
            continue
        scores = teacher_scores(example, source)
        scored = [n for n in example.negatives if n in scores][:negatives]
        for positive in example.positives:
            if len(scored) < negatives or positive not in scores:
                left_out += 1
                continue
            row: dict[str, Any] = {
                "anchor": example.query,
                "positive": training_set.text(example, positive),
            }
            for i, negative in enumerate(scored, start=1):
                row[f"negative_{i}"] = training_set.text(example, negative)
            row["label"] = [scale * (scores[positive] - scores[n]) for n in scored]
            rows.append(row)
    return rows, left_out
