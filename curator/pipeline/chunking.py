"""Split long documents into overlapping passages of about N words.

The DPR / Multi-passage BERT convention: windows of ~100 words with an overlap.
Chunks keep the document's original characters (line breaks and indentation of code
survive), cut at word boundaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkingConfig:
    """``words`` per passage and ``overlap`` words shared by neighbours (0 <= overlap < words)."""

    words: int = 100
    overlap: int = 20

    def __post_init__(self) -> None:
        if self.words < 1:
            raise ValueError(f"chunk size must be at least 1 word, got {self.words}")
        if not 0 <= self.overlap < self.words:
            raise ValueError(
                f"chunk overlap must be >= 0 and smaller than the chunk size "
                f"({self.words}), got {self.overlap}"
            )


def chunk_text(text: str, config: ChunkingConfig) -> list[str]:
    """Passages of at most ``config.words`` words; consecutive ones share ``config.overlap``.

    A text no longer than one window comes back whole (stripped); an empty text gives [].
    """
    spans = [match.span() for match in _WORD.finditer(text)]
    if not spans:
        return []
    if len(spans) <= config.words:
        return [text[spans[0][0] : spans[-1][1]]]
    stride = config.words - config.overlap
    chunks = []
    start = 0
    while True:
        end = min(start + config.words, len(spans))
        chunks.append(text[spans[start][0] : spans[end - 1][1]])
        if end == len(spans):
            return chunks
        start += stride
