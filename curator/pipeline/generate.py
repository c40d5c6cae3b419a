"""Query generation (FRet step 1): prompt building and reply parsing, pure functions.

For each passage the LLM writes a retrieval *task* and then a *query* for that task that
the passage answers, continuing a few-shot prompt::

    <instruction>

    Title: <example title>
    Passage: <example passage>
    Task: <example task>
    Query: <example query>

    ... (more examples)

    Title: <title>
    Passage: <passage>
    Task:

The model's reply is ``" <task>\\nQuery: <query>"``. The same text works for base models
(plain continuation) and chat models (which tend to answer with both lines).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from curator.pipeline.readers import IngestError

PROMPT_VERSION = "fret-fewshot-v2"
INSTRUCTION = (
    "Each passage below is followed by a search task and a query that a person would type "
    "to find the passage. The person has not read the passage: the query says what they "
    "want in their own words and does not copy a sentence of the passage."
)
#: how many few-shot examples each prompt shows, drawn per passage from the example set
EXAMPLES_PER_PROMPT = 3
STOP = ["\n\n", "Passage:", "Title:"]
MAX_PASSAGE_WORDS = 300
MAX_QUERY_WORDS = 64
EXAMPLE_FIELDS = ("title", "passage", "task", "query")


@dataclass(frozen=True)
class GenerationExample:
    title: str
    passage: str
    task: str
    query: str


@dataclass(frozen=True)
class PassageInput:
    title: str
    text: str


@dataclass(frozen=True)
class GenerationPrompt:
    """Messages for the LLM; ``truncated_from`` is the passage's word count if it was cut."""

    messages: list[dict[str, str]]
    truncated_from: int | None = None


@dataclass(frozen=True)
class ParsedGeneration:
    task: str
    query: str


class ParseError(ValueError):
    """The reply does not hold a usable task and query; the message says why."""


def default_examples_path() -> Path:
    return Path(str(resources.files("curator.prompts").joinpath("generation_examples.jsonl")))


def load_examples(path: str | Path | None = None) -> list[GenerationExample]:
    """Few-shot examples from a JSONL file (fields: title, passage, task, query).

    Errors name the file, line and field. The default file ships with curator; copy it,
    edit it, and pass it with ``--examples`` to adapt the prompt to a corpus.
    """
    path = Path(path) if path else default_examples_path()
    examples = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise IngestError(path, None, None, f"cannot read examples: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise IngestError(path, number, None, f"malformed JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise IngestError(path, number, None, "expected a JSON object")
        for name in EXAMPLE_FIELDS:
            value = row.get(name, "" if name == "title" else None)
            if not isinstance(value, str) or (name != "title" and not value.strip()):
                raise IngestError(path, number, name, "missing or empty (required)")
        examples.append(
            GenerationExample(*(" ".join(row.get(n, "").split()) for n in EXAMPLE_FIELDS))
        )
    if not examples:
        raise IngestError(path, None, None, "no examples in the file")
    return examples


def examples_version(examples: list[GenerationExample]) -> str:
    """A short fingerprint of the example set (stored with every query it prompted)."""
    payload = json.dumps([vars(e) for e in examples], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def choose_examples(
    examples: list[GenerationExample], key: str, k: int = EXAMPLES_PER_PROMPT
) -> list[GenerationExample]:
    """``k`` examples drawn from the set by a seed made of ``key`` (e.g. passage id and
    sample index): each passage sees a stable mix of tasks and query styles, so no one
    example's task or wording dominates a run (Gecko samples tasks the same way)."""
    if len(examples) <= k:
        return list(examples)
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return random.Random(seed).sample(examples, k)


def _block(title: str, passage: str) -> str:
    head = f"Title: {title}\n" if title else ""
    return f"{head}Passage: {passage}"


def truncate_words(text: str, max_words: int) -> tuple[str, int | None]:
    """(text cut to ``max_words`` words with white space folded, original word count if cut)."""
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words), None
    return " ".join(words[:max_words]), len(words)


def build_generation_messages(
    passage: PassageInput,
    examples: list[GenerationExample],
    max_words: int = MAX_PASSAGE_WORDS,
) -> GenerationPrompt:
    """The few-shot prompt for ``passage`` (cut to ``max_words`` words to fit the context)."""
    text, truncated_from = truncate_words(passage.text, max_words)
    parts = [INSTRUCTION]
    for example in examples:
        parts.append(
            f"{_block(example.title, example.passage)}\nTask: {example.task}\n"
            f"Query: {example.query}"
        )
    parts.append(f"{_block(' '.join(passage.title.split()), text)}\nTask:")
    return GenerationPrompt([{"role": "user", "content": "\n\n".join(parts)}], truncated_from)


def build_query_messages(prompt: GenerationPrompt, task: str) -> GenerationPrompt:
    """The generation ``prompt`` continued with the model's own ``task`` and ``Query:``:
    asked when a reply stopped after its task line, so the model writes only the query."""
    content = prompt.messages[-1]["content"]
    message = {"role": "user", "content": f"{content} {' '.join(task.split())}\nQuery:"}
    return GenerationPrompt([*prompt.messages[:-1], message], prompt.truncated_from)


#: words of a task instruction ("Given a question, retrieve passages that answer it.")
_INSTRUCTION_WORDS = frozenset(
    [
        "given",
        "a",
        "an",
        "the",
        "retrieve",
        "find",
        "search",
        "passages",
        "passage",
        "documents",
        "document",
        "articles",
        "article",
        "that",
        "which",
        "answer",
        "answers",
        "it",
        "them",
        "query",
        "queries",
        "question",
        "questions",
        "relevant",
        "to",
        "for",
        "support",
        "refute",
        "or",
        "and",
    ]
)


def _repeats_instruction(query: str, task: str) -> bool:
    """True when the query restates the task's instruction: most of its words are the
    task's and at least half are instruction words. A short topical query that shares the
    task's topic words ("list of national parks in africa") passes."""
    query_words = re.findall(r"\w+", query.lower())
    task_words = set(re.findall(r"\w+", task.lower()))
    if not query_words:
        return False
    in_task = sum(w in task_words for w in query_words)
    instruction = sum(w in _INSTRUCTION_WORDS for w in query_words)
    return in_task >= 0.7 * len(query_words) and instruction >= 0.5 * len(query_words)


_QUOTES = "\"'`“”‘’"


_TASK_WORDS = re.compile(r"\b(given|retrieve|find|search)\b", re.IGNORECASE)
#: the labels of a reply's lines, as a model may write them (``**Task:**``, ``query :``)
_TASK_LABEL = re.compile(r"^\**\s*task\s*\**\s*:\s*\**\s*", re.IGNORECASE)
_QUERY_LABEL = re.compile(r"\**\s*query\s*\**\s*:\s*\**", re.IGNORECASE)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def task_only(text: str) -> str | None:
    """The task of a reply that is a task instruction ("Given ..., retrieve ...") with no
    ``Query:`` line after it (the model stopped after its task), else None."""
    reply = _TASK_LABEL.sub("", (text or "").strip())
    if _QUERY_LABEL.search(reply):
        return None
    task = _first_line(reply)
    return task if _TASK_WORDS.search(task) else None


def parse_query_reply(
    task: str, text: str, examples: list[GenerationExample] | tuple[GenerationExample, ...] = ()
) -> ParsedGeneration:
    """The reply to :func:`build_query_messages` (the query, with or without its own
    ``Query:`` label) under ``task``, checked as :func:`parse_generation` checks a query."""
    reply = (text or "").strip()
    label = _QUERY_LABEL.match(reply)
    return parse_generation(f"{task}\nQuery: {reply[label.end() if label else 0 :]}", examples)


def parse_generation(
    text: str, examples: list[GenerationExample] | tuple[GenerationExample, ...] = ()
) -> ParsedGeneration:
    """The task and query in a reply, or ParseError saying what is wrong with it.

    Accepts the continuation (``" <task>\\nQuery: <query>"``) and a full answer
    (``"Task: ...\\nQuery: ..."``); text after the query line is ignored. A query that
    repeats a few-shot example's query is refused: the model copied instead of writing.
    """
    reply = (text or "").strip()
    if not reply:
        raise ParseError("empty reply")
    reply = _TASK_LABEL.sub("", reply)
    match = _QUERY_LABEL.search(reply)
    if match is None:
        raise ParseError("no 'Query:' line in the reply")
    task = _first_line(reply[: match.start()])
    query = _first_line(reply[match.end() :]).strip(_QUOTES + " ")
    if not task:
        raise ParseError("empty task")
    if not query:
        raise ParseError("empty query")
    if len(query.split()) > MAX_QUERY_WORDS:
        raise ParseError(f"query longer than {MAX_QUERY_WORDS} words")
    if _repeats_instruction(query, task):
        raise ParseError("the query repeats the task instead of asking about the passage")
    normalised = " ".join(query.lower().split())
    if any(normalised == " ".join(e.query.lower().split()) for e in examples):
        raise ParseError("the query copies a few-shot example")
    return ParsedGeneration(task=task, query=query)
