"""Prompt building and reply parsing for query generation (pure functions)."""

from __future__ import annotations

import pytest
from conftest import write

from curator.pipeline.generate import (
    STOP,
    GenerationExample,
    ParseError,
    PassageInput,
    build_generation_messages,
    build_query_messages,
    load_examples,
    parse_generation,
    parse_query_reply,
    task_only,
)
from curator.pipeline.readers import IngestError

EXAMPLES = [
    GenerationExample(
        "Reef", "The reef is long.", "Given a question, find answers.", "how long is the reef"
    ),
]

# Replies recorded from the embedded Gemma 3 270M and from chat models.
GOOD = [
    (
        " Given a claim, retrieve documents that support or refute it.\n"
        "Query: IL-13 inhibitors block the development of hepatic fibrosis.",
        "Given a claim, retrieve documents that support or refute it.",
        "IL-13 inhibitors block the development of hepatic fibrosis.",
    ),
    (
        "Task: Given a question, retrieve passages that answer it.\nQuery: what is the basic "
        "reproduction rate of malaria?",
        "Given a question, retrieve passages that answer it.",
        "what is the basic reproduction rate of malaria?",
    ),
    (
        '**Task:** Find studies on sleep.\n**Query:** "does melatonin improve sleep onset"',
        "Find studies on sleep.",
        "does melatonin improve sleep onset",
    ),
    # extra text after the query line is ignored
    (
        " Given a claim, retrieve documents.\nQuery: tumour shrinkage after radiotherapy\n"
        "I'm not sure how to do this.",
        "Given a claim, retrieve documents.",
        "tumour shrinkage after radiotherapy",
    ),
]


@pytest.mark.parametrize(("reply", "task", "query"), GOOD)
def test_good_replies_parse(reply, task, query):
    parsed = parse_generation(reply, EXAMPLES)
    assert (parsed.task, parsed.query) == (task, query)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("", "empty reply"),
        ("   \n ", "empty reply"),
        (
            " Provide a source of evidence to support or refute the following claims.\n"
            "I think it is true that the brain is growing.",
            "no 'Query:' line",
        ),
        (" Given a claim, retrieve documents.\nQuery:   ", "empty query"),
        ("Query: what is a reef", "empty task"),
        (
            " Given a question, retrieve documents that support or refute it.\n"
            "Query: how to retrieve documents that support or refute it.",
            "repeats the task",
        ),
        (" Given a question, find answers.\nQuery: How long is the   reef", "copies a few-shot"),
        (" A task.\nQuery: " + "word " * 70, "longer than 64 words"),
    ],
)
def test_malformed_replies_are_refused_with_a_reason(reply, reason):
    with pytest.raises(ParseError, match=reason):
        parse_generation(reply, EXAMPLES)


def test_prompt_holds_examples_and_ends_at_the_task():
    prompt = build_generation_messages(PassageInput("A title", "Some  passage\ntext."), EXAMPLES)
    assert prompt.truncated_from is None
    [message] = prompt.messages
    text = message["content"]
    assert (
        "Title: Reef\nPassage: The reef is long.\nTask: Given a question, find answers.\n"
        "Query: how long is the reef" in text
    )
    assert text.endswith("Title: A title\nPassage: Some passage text.\nTask:")
    assert all(stop not in text.split("Title: A title")[1] for stop in STOP[:1])


def test_prompt_without_title_and_truncation_note():
    long_text = " ".join(f"w{i}" for i in range(500))
    prompt = build_generation_messages(PassageInput("", long_text), EXAMPLES, max_words=100)
    assert prompt.truncated_from == 500
    tail = prompt.messages[0]["content"].rsplit("\n\n", 1)[1]
    assert tail.startswith("Passage: w0 ") and tail.endswith("w99\nTask:")


def test_shipped_examples_load():
    examples = load_examples()
    assert len(examples) >= 3 and all(e.query and e.task and e.passage for e in examples)


def test_examples_file_errors_name_line_and_field(tmp_path):
    path = write(
        tmp_path / "ex.jsonl",
        '{"title": "t", "passage": "p", "task": "t", "query": "q"}\n'
        '{"title": "t", "passage": "p", "task": ""}\n',
    )
    with pytest.raises(IngestError) as info:
        load_examples(path)
    assert (info.value.line, info.value.field) == (2, "task")
    with pytest.raises(IngestError, match="malformed JSON"):
        load_examples(write(tmp_path / "bad.jsonl", "{nope\n"))
    with pytest.raises(IngestError, match="no examples"):
        load_examples(write(tmp_path / "empty.jsonl", "\n"))


# Replies of the embedded Gemma 3 270M that stopped after the task line (SciFact, with
# curated few-shot examples: 108 of 1,000 replies in bench/human_budget.py).
TASK_ONLY = " Given a scientific claim, retrieve studies that support or refute it."


@pytest.mark.parametrize(
    "reply, task",
    [
        (TASK_ONLY, "Given a scientific claim, retrieve studies that support or refute it."),
        (
            "Task: Given a keyword query, retrieve relevant passages.\n",
            "Given a keyword query, retrieve relevant passages.",
        ),
        (" Find the article that explains it.", "Find the article that explains it."),
        (" I think it is true that the brain is growing.", None),  # not a task
        (" Given a claim, retrieve documents.\nQuery: a query", None),  # parses as it is
        ("", None),
    ],
)
def test_a_reply_that_stopped_after_its_task_is_recognised(reply, task):
    assert task_only(reply) == task


def test_the_query_is_asked_after_the_models_own_task():
    prompt = build_generation_messages(PassageInput("A title", "Some passage text."), EXAMPLES)
    again = build_query_messages(prompt, " Given a claim,  retrieve studies.")
    [message] = again.messages
    assert message["content"] == prompt.messages[0]["content"] + (
        " Given a claim, retrieve studies.\nQuery:"
    )
    assert again.truncated_from == prompt.truncated_from


@pytest.mark.parametrize(
    "reply",
    [
        " what grows in the brain",
        "Query: what grows in the brain",
        " what grows in the brain\nmore",
    ],
)
def test_the_reply_to_the_query_prompt_parses_under_the_task(reply):
    parsed = parse_query_reply("Given a claim, retrieve studies.", reply, EXAMPLES)
    assert (parsed.task, parsed.query) == (
        "Given a claim, retrieve studies.",
        "what grows in the brain",
    )


@pytest.mark.parametrize(
    "reply, error", [("", "empty query"), (" how long is the reef", "copies a few-shot example")]
)
def test_a_bad_reply_to_the_query_prompt_is_refused_as_any_query(reply, error):
    with pytest.raises(ParseError, match=error):
        parse_query_reply("Given a claim, retrieve studies.", reply, EXAMPLES)
