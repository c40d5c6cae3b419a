"""Query-likelihood prompts (shared by best-of-n generation and LLM reranking).

QL scores ``log P(query | passage)``: the log-probability of the query's tokens after a
prefix holding the passage. The prefix ends with ``"Query:"`` and the continuation is
``" " + query``, so the tokenisation of the prefix is a true prefix of the whole.
"""

from __future__ import annotations

from curator.pipeline.generate import truncate_words

QL_PROMPT_VERSION = "ql-v1"
QL_MAX_PASSAGE_WORDS = 300


def build_ql_prefix(title: str, text: str, max_words: int = QL_MAX_PASSAGE_WORDS) -> str:
    """The prefix whose continuation is scored: the passage, then ``Query:``."""
    body, _ = truncate_words(text, max_words)
    head = f"Title: {' '.join(title.split())}\n" if title.strip() else ""
    return f"{head}Passage: {body}\nQuery:"


def ql_continuation(query: str) -> str:
    return " " + " ".join(query.split())


def mean_log_likelihood(total: float, tokens: int) -> float:
    """Per-token log-likelihood: compares queries of different lengths fairly."""
    return total / max(1, tokens)
