"""FAISS indexes over passage vectors: IVF-PQ on memory-mapped vectors against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from curator.retrieval import index as vector_index
from curator.retrieval.index import MappedRows, build_index, choose_kind, load_or_build
from curator.retrieval.store import EmbeddingStore

DIM = 384


def clustered(n: int, seed: int, centers: np.ndarray, noise: float = 0.6) -> np.ndarray:
    """Unit vectors around random centres, as sentence embeddings of topics are."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(centers), n)
    vectors = centers[picks] + noise * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((300, DIM)) / np.sqrt(DIM)
    passages = clustered(30_000, 1, centers)
    queries = clustered(200, 2, centers)
    return passages, queries


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))


def test_auto_kind_by_corpus_size():
    assert [choose_kind(n) for n in (10, 49_999, 50_000, 199_999, 200_000, 5_000_000)] == [
        "flat",
        "flat",
        "hnsw",
        "hnsw",
        "ivfpq",
        "ivfpq",
    ]
    with pytest.raises(ValueError, match="index kind"):
        choose_kind(10, "pq")


def test_ivfpq_on_mapped_vectors_finds_what_exact_search_finds(corpus, tmp_path):
    passages, queries = corpus
    ids = np.arange(1000, 1000 + len(passages))
    store = EmbeddingStore(tmp_path / "store", DIM)
    hashes = [f"h{i}" for i in range(len(passages))]
    store.add(hashes[::-1], passages[::-1])  # stored in another order than the index's
    mapped = store.view(hashes)
    assert isinstance(mapped.matrix, np.memmap)  # read from disk, not a copy in RAM

    exact_scores, exact_ids = build_index(passages, ids, "flat").search(queries, 10)
    approximate = build_index(mapped, ids, "ivfpq")
    scores, found = approximate.search(queries, 10)
    assert approximate.kind == "ivfpq" and approximate.index.ntotal == len(passages)
    assert recall_at_10(found, exact_ids) >= 0.9
    # the scores are exact inner products of the passages returned, best first
    by_id = dict(zip(ids.tolist(), passages, strict=True))
    assert np.allclose(scores[0], [by_id[i] @ queries[0] for i in found[0]], atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    assert np.isclose(scores[:, 0], exact_scores[:, 0], atol=1e-5).mean() >= 0.9


def test_ivfpq_index_is_saved_and_loaded_with_its_mapped_vectors(corpus, tmp_path):
    passages, queries = corpus
    ids = np.arange(len(passages))
    calls = []

    def vectors():
        calls.append(1)
        return MappedRows(passages)

    built, was_built = load_or_build(tmp_path / "ix", vectors, ids, "m", "ivfpq")
    loaded, rebuilt = load_or_build(tmp_path / "ix", vectors, ids, "m", "ivfpq")
    assert was_built and not rebuilt and loaded.kind == "ivfpq" and len(calls) == 2
    assert loaded.index.nprobe == vector_index.IVF_NPROBE
    assert np.array_equal(built.search(queries, 10)[1], loaded.search(queries, 10)[1])


def test_ivfpq_asked_for_more_than_it_holds_returns_each_passage_once(corpus):
    passages, queries = corpus
    small = build_index(passages[:12_000], np.arange(12_000), "ivfpq")
    scores, found = small.search(queries[:3], 20_000)
    assert found.shape == (3, 12_000)
    for row, ranked in zip(scores, found, strict=True):
        kept = ranked[ranked >= 0]
        assert len(kept) == len(set(kept.tolist())) > 1_000  # no passage twice
        assert np.all(np.isneginf(row[ranked < 0]))  # padding is marked, never scored
