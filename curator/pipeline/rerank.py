"""Relevance classification (RC) prompts and reply parsing (pure functions).

With a local model, RC scores a (query, passage) pair by ``log P(" yes") - log P(" no")``
after the few-shot QL prompt extended with the query and ``Relevant:`` (so it reuses the
KV cache of the QL computation). With a remote chat model, the reply is parsed as a
graded label (yes = 1, no = 0).
"""

from __future__ import annotations

import re

from curator.pipeline.generate import ParseError, truncate_words
from curator.pipeline.likelihood import build_ql_prefix

RC_PROMPT_VERSION = "rc-yesno-v2"
YES, NO = " yes", " no"


def build_rc_prefix(title: str, text: str, query: str) -> str:
    """The QL prompt extended with the query and ``Relevant:``; the next word is scored."""
    return f"{build_ql_prefix(title, text)} {' '.join(query.split())}\nRelevant:"


def build_rc_messages(title: str, text: str, query: str) -> list[dict[str, str]]:
    """Chat messages for providers without log-probabilities: answer yes or no."""
    body, _ = truncate_words(f"{title}. {text}" if title.strip() else text, 400)
    return [
        {
            "role": "user",
            "content": (
                f"Passage: {body}\n\nQuery: {' '.join(query.split())}\n\n"
                "Does the passage answer the query? Reply with one word: yes or no."
            ),
        }
    ]


def parse_rc(text: str) -> float:
    """1.0 for a yes, 0.0 for a no; ParseError otherwise."""
    words = re.findall(r"[a-z]+", (text or "").lower())
    if not words:
        raise ParseError("empty reply")
    if words[0] in ("yes", "relevant"):
        return 1.0
    if words[0] in ("no", "irrelevant"):
        return 0.0
    raise ParseError(f"expected yes or no, got {text.strip()[:40]!r}")
