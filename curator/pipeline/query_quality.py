"""Flags for generated queries that are not worth training on: copies and junk.

Pure functions over strings. Each check returns ``None`` for a query that passes, or a
short reason. The generation service stores the reasons as flags beside the query (never
a silent drop); the label-free training policy leaves flagged queries out.

Definitions (the benchmark prints the rates of these exact rules):

- **copy**: the longest run of consecutive query words that also appears, word for
  word and in order, in the passage covers at least ``COPY_SHARE`` (60 %) of the
  query's words. Words are lower-cased ``\\w+`` tokens. "tsavo east national park"
  for a passage naming Tsavo East National Park is a copy; "list of national parks in
  africa" is not (the passage never says it in that order).
- **junk**: no letters at all; a template placeholder (``{0}``, ``<name>``,
  ``[query]``, ``$1``); one word or character pattern repeated (``"1010..."``, a word
  making up more than half of a query of 4+ words); a copy of a few-shot example's
  query (same text) or of its passage (a copy, as defined above, of the example's
  passage); or the same query, normalised, as an earlier one for another passage
  (``duplicate``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

COPY_SHARE = 0.6
_WORD = re.compile(r"\w+", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_PLACEHOLDER = re.compile(r"\{\w*\}|<\w[\w ]*>|\[\w[\w ]*\]|\$\d")
# "1010101010", "abababab", "xxxxxxxx"; not "100000" (a number's zeros are fine)
_REPEATED_CHUNK = re.compile(r"(.{2,4}?)\1{3,}|([^\d])\2{7,}")


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text``."""
    return _WORD.findall(text.lower())


def longest_shared_run(query: list[str], passage: list[str]) -> int:
    """Length of the longest run of consecutive ``query`` words found in ``passage`` in the
    same order (longest common substring over words; dynamic programming, O(q x p))."""
    if not query or not passage:
        return 0
    best = 0
    previous = [0] * (len(passage) + 1)
    for q in query:
        current = [0] * (len(passage) + 1)
        for j, p in enumerate(passage, start=1):
            if q == p:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best = current[j]
        previous = current
    return best


def copy_share(query: str, passage: str) -> float:
    """Share of the query's words covered by its longest word-for-word run in ``passage``."""
    query_words = words(query)
    if not query_words:
        return 0.0
    return longest_shared_run(query_words, words(passage)) / len(query_words)


def copy_reason(query: str, passage: str, share: float = COPY_SHARE) -> str | None:
    """``"copy: ..."`` when the query is mostly one contiguous span of ``passage``."""
    covered = copy_share(query, passage)
    if covered >= share:
        return f"copy: {covered:.0%} of the query's words are one span of the passage"
    return None


def normalised_query(query: str) -> str:
    """The query as compared for duplicates: its words, lower-cased, single-spaced."""
    return " ".join(words(query))


def junk_reason(
    query: str, example_queries: Iterable[str] = (), example_passages: Iterable[str] = ()
) -> str | None:
    """Why ``query`` is junk (see the module docstring), or ``None``. Duplicates are found
    across queries by :func:`duplicate_reasons`, not here."""
    text = query.strip()
    if not _LETTER.search(text):
        return "junk: no letters"
    if _PLACEHOLDER.search(text):
        return "junk: template placeholder"
    tokens = words(text)
    if len(tokens) >= 4 and Counter(tokens).most_common(1)[0][1] > len(tokens) / 2:
        return "junk: one word repeated"
    if _REPEATED_CHUNK.search(text.replace(" ", "")):
        return "junk: repeated characters"
    normalised = normalised_query(text)
    if any(normalised == normalised_query(example) for example in example_queries):
        return "junk: copies a few-shot example's query"
    for passage in example_passages:
        if len(tokens) >= 3 and copy_share(text, passage) >= COPY_SHARE:
            return "junk: copies a few-shot example's passage"
    return None


def duplicate_reasons(queries: list[tuple[int, int, str]]) -> dict[int, str]:
    """``{query id: reason}`` for each query whose normalised text an earlier query (lower
    id) for another seed passage already has. Input rows: (query id, seed passage id, text)."""
    first: dict[str, tuple[int, int]] = {}
    flagged: dict[int, str] = {}
    for query_id, seed, text in sorted(queries):
        key = normalised_query(text)
        if not key:
            continue
        if key in first and first[key][1] != seed:
            flagged[query_id] = f"duplicate: same query as #{first[key][0]}"
        else:
            first.setdefault(key, (query_id, seed))
    return flagged
