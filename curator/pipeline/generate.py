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

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from curator.pipeline.readers import IngestError

PROMPT_VERSION = "fret-fewshot-v1"
INSTRUCTION = (
    "Each passage below is followed by a retrieval task and a query that the passage "
    "answers. The query uses the key terms of the passage."
)
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


_QUOTES = "\"'`“”‘’"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


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
    reply = re.sub(r"^\**\s*task\s*\**\s*:\s*\**\s*", "", reply, flags=re.IGNORECASE)
    match = re.search(r"\**\s*query\s*\**\s*:\s*\**", reply, flags=re.IGNORECASE)
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
    query_words = re.findall(r"\w+", query.lower())
    task_words = set(re.findall(r"\w+", task.lower()))
    if query_words and sum(w in task_words for w in query_words) >= 0.7 * len(query_words):
        raise ParseError("the query repeats the task instead of asking about the passage")
    normalised = " ".join(query.lower().split())
    if any(normalised == " ".join(e.query.lower().split()) for e in examples):
        raise ParseError("the query copies a few-shot example")
    return ParsedGeneration(task=task, query=query)
