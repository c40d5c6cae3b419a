"""The copy and junk detectors on hand-made queries (pure functions)."""

from __future__ import annotations

import pytest

from curator.pipeline.query_quality import (
    copy_reason,
    copy_share,
    duplicate_reasons,
    junk_reason,
    longest_shared_run,
)

PASSAGE = (
    "Tsavo East National Park is one of the oldest and largest parks in Kenya. "
    "It is situated in a semi-arid area previously known as the Taru Desert."
)


def test_longest_shared_run_counts_consecutive_words_in_order():
    assert longest_shared_run(["a", "b", "c", "d"], ["x", "a", "b", "c", "y", "d"]) == 3
    assert longest_shared_run(["c", "b", "a"], ["a", "b", "c"]) == 1
    assert longest_shared_run([], ["a"]) == 0


@pytest.mark.parametrize(
    "query",
    [
        "Tsavo East National Park is one of the oldest and largest parks in Kenya.",
        "tsavo east national park",
        "oldest and largest parks in Kenya",
        "Taru Desert",
    ],
)
def test_copies_of_a_span_of_the_passage_are_flagged(query):
    assert copy_reason(query, PASSAGE) is not None


@pytest.mark.parametrize(
    "query",
    [
        "list of national parks in africa",
        "biggest wildlife reserve in kenya desert region",
        "which kenyan park used to be a desert",
    ],
)
def test_queries_in_other_words_are_not_copies(query):
    assert copy_reason(query, PASSAGE) is None


def test_copy_share_is_the_covered_fraction():
    # "national park" is a 2-word run of a 5-word query
    assert copy_share("best national park to visit", PASSAGE) == pytest.approx(2 / 5)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("1010101010101010", "no letters"),
        ("--- ???", "no letters"),
        ("{0} is a {1}", "placeholder"),
        ("what is <entity name>", "placeholder"),
        ("abababababab", "repeated characters"),
        ("park park park park lion", "one word repeated"),
        ("How long is the  great barrier reef", "few-shot example's query"),
        ("coral reef system off the coast of Queensland", "few-shot example's passage"),
    ],
)
def test_junk_is_flagged_with_its_reason(query, reason):
    found = junk_reason(
        query,
        ["how long is the great barrier reef"],
        [
            "The Great Barrier Reef is the world's largest coral reef system, composed of "
            "over 2,900 individual reefs off the coast of Queensland, Australia."
        ],
    )
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "query",
    [
        "list of national parks in africa",
        "C++ templates",
        "is vitamin D good for bones",
        "B12",
        "cities with over 1000000 people",
    ],
)
def test_ordinary_queries_are_not_junk(query):
    assert junk_reason(query, ["how long is the great barrier reef"]) is None


def test_duplicates_are_flagged_across_seed_passages_only():
    rows = [
        (1, 10, "Vitamin D and bones"),
        (2, 11, "vitamin  d and BONES?"),  # same words, another passage: duplicate
        (3, 10, "vitamin d and bones"),  # same passage again: not a duplicate
        (4, 12, "something else"),
    ]
    assert duplicate_reasons(rows) == {2: "duplicate: same query as #1"}
