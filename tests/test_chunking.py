"""Chunking into overlapping ~N-word passages."""

from __future__ import annotations

import pytest

from curator.pipeline.chunking import ChunkingConfig, chunk_text


def words(n: int, start: int = 0) -> str:
    return " ".join(f"w{i}" for i in range(start, start + n))


def test_short_text_is_one_passage():
    assert chunk_text("  a short   text ", ChunkingConfig(100, 20)) == ["a short   text"]
    assert chunk_text("   ", ChunkingConfig()) == []


def test_windows_have_the_size_and_overlap_asked_for():
    chunks = chunk_text(words(250), ChunkingConfig(words=100, overlap=20))
    sizes = [len(c.split()) for c in chunks]
    assert sizes == [100, 100, 90]
    assert chunks[0].split()[-20:] == chunks[1].split()[:20]
    assert chunks[1].split()[0] == "w80" and chunks[2].split()[-1] == "w249"


def test_every_word_is_covered_and_no_window_is_redundant():
    text = words(1234)
    chunks = chunk_text(text, ChunkingConfig(words=100, overlap=30))
    covered = {w for c in chunks for w in c.split()}
    assert covered == set(text.split())
    assert len(chunks) == 18  # ceil((1234 - 100) / 70) + 1


def test_original_formatting_inside_a_chunk_is_kept():
    code = "def f(x):\n    return x + 1\n\nprint(f(2))"
    assert chunk_text(code, ChunkingConfig(words=100, overlap=0)) == [code]
    parts = chunk_text(code, ChunkingConfig(words=4, overlap=1))
    assert parts[0] == "def f(x):\n    return x"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_invalid_configs_are_refused(size, overlap):
    with pytest.raises(ValueError):
        ChunkingConfig(size, overlap)
