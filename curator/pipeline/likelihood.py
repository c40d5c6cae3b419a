"""Query-likelihood prompts (shared by best-of-n generation and LLM reranking).

QL scores ``log P(query | passage)``: the log-probability of the query's tokens after a
prefix holding the passage. The prefix is a few-shot header (shared by every passage, so
its KV cache is reused) and the passage, ending with ``"Query:"``; the continuation is
``" " + query``, so the prefix's tokens are a true prefix of the whole.

With Gemma 3 270M on 30 SciFact test pairs (relevant vs a random passage), a one-shot
prefix ranked the relevant passage first 30/30 times, a bare ``Passage: ... Query:``
prefix 29/30 (``tests/test_local_llm.py`` checks 10 such pairs).
"""

from __future__ import annotations

from curator.pipeline.generate import truncate_words

QL_PROMPT_VERSION = "ql-fewshot-v2"
QL_MAX_PASSAGE_WORDS = 300
# Shared with relevance classification (curator.pipeline.rerank): the RC prompt extends
# the QL prompt with the query and "Relevant:", so on a local model RC reuses the KV cache
# of the QL computation and costs a few tokens instead of a second pass over the passage.
QL_HEADER = (
    "Read each passage, write a search query, and say whether the passage answers it.\n\n"
    "Passage: Metformin lowers blood glucose mainly by reducing hepatic glucose production "
    "and improving insulin sensitivity; it is the usual first-line drug for type 2 diabetes.\n"
    "Query: metformin lowers blood glucose by reducing hepatic glucose production\n"
    "Relevant: yes\n\n"
    "Passage: The Great Barrier Reef is the world's largest coral reef system, stretching "
    "for over 2,300 kilometres off the coast of Queensland, Australia.\n"
    "Query: how does metformin lower blood sugar\n"
    "Relevant: no\n\n"
)


def build_ql_prefix(title: str, text: str, max_words: int = QL_MAX_PASSAGE_WORDS) -> str:
    """The prefix whose continuation is scored: header, the passage, then ``Query:``."""
    body, _ = truncate_words(text, max_words)
    head = f"Title: {' '.join(title.split())}\n" if title.strip() else ""
    return f"{QL_HEADER}{head}Passage: {body}\nQuery:"


def ql_continuation(query: str) -> str:
    return " " + " ".join(query.split())


def mean_log_likelihood(total: float, tokens: int) -> float:
    """Per-token log-likelihood: compares queries of different lengths fairly."""
    return total / max(1, tokens)
