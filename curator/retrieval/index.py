"""A FAISS inner-product index over a project's passage vectors, persisted beside them.

``kind='auto'`` picks exact search (``IndexFlatIP``) below 50,000 passages, HNSW from
there to 200,000 (approximate, much faster, every vector in RAM), and IVF-PQ above
(``ivfpq``: 48 bytes a vector in RAM; the float vectors stay memory-mapped on disk and only
the ``RERANK_FACTOR * k`` candidates of each query are read back and scored exactly);
``flat``, ``hnsw`` or ``ivfpq`` override. The index is rebuilt only when the set of
passages (or the model) changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX_KINDS = ("auto", "flat", "hnsw", "ivfpq")
FLAT_LIMIT = 50_000
HNSW_LIMIT = 200_000
HNSW_M = 32
HNSW_EF_SEARCH = 128
PQ_BYTES = 48  # sub-quantizers of 8 bits: 48 bytes a vector (384 dims: 8 dims each)
IVF_NPROBE = 32  # inverted lists visited per query
RERANK_FACTOR = 20  # IVF-PQ candidates per wanted result, rescored on the exact vectors
TRAIN_PER_LIST = 64  # training vectors per inverted list (FAISS wants at least 39)
TRAIN_MIN = 10_000  # and at least 39 x 256 for the 8-bit sub-quantizers
ADD_CHUNK = 65_536  # vectors read from disk and added at a time


class MappedRows:
    """Rows ``rows`` of a float32 matrix that may be memory-mapped (``np.memmap``): the
    vectors of an index's passages, in the index's order, read from disk in pieces.
    A plain array is taken as is (``rows`` defaults to all of it)."""

    def __init__(self, matrix: np.ndarray, rows: np.ndarray | None = None) -> None:
        self.matrix = matrix
        self.rows = np.arange(len(matrix)) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def take(self, positions) -> np.ndarray:
        """The vectors at ``positions`` (a slice or an index array) as float32 in RAM."""
        rows = self.rows[positions]
        if isinstance(positions, slice) and len(rows) and np.all(np.diff(rows) == 1):
            block = self.matrix[rows[0] : rows[-1] + 1]  # one contiguous read
        else:
            block = self.matrix[rows]
        return np.ascontiguousarray(block, dtype=np.float32)


def _as_rows(vectors) -> MappedRows:
    return vectors if isinstance(vectors, MappedRows) else MappedRows(np.asarray(vectors))


def choose_kind(n: int, kind: str = "auto") -> str:
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
    if kind != "auto":
        return kind
    if n < FLAT_LIMIT:
        return "flat"
    return "hnsw" if n < HNSW_LIMIT else "ivfpq"


def ids_fingerprint(ids: np.ndarray, model_key: str) -> str:
    digest = hashlib.sha256(model_key.encode())
    digest.update(np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    return digest.hexdigest()


@dataclass
class VectorIndex:
    """FAISS index + the passage id of each row."""

    index: object
    ids: np.ndarray
    kind: str
    vectors: MappedRows | None = None  # IVF-PQ: the exact vectors, to rescore candidates

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, passage ids) of the top ``k`` per query; -1 ids pad short results.
        IVF-PQ scores are exact inner products of the rescored candidates."""
        k = min(k, len(self.ids))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.kind == "ivfpq" and self.vectors is not None:
            scores, rows = self._rescored(queries, k)
        else:
            scores, rows = self.index.search(queries, k)
        ids = np.where(rows >= 0, self.ids[np.clip(rows, 0, None)], -1)
        return scores, ids

    def _rescored(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows per query by exact score among IVF-PQ's ``RERANK_FACTOR * k``."""
        wide = min(len(self.ids), RERANK_FACTOR * k)
        _, rows = self.index.search(queries, wide)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        best = np.full((len(queries), k), -1, dtype=np.int64)
        for i, found in enumerate(rows):
            found = found[found >= 0]
            if not len(found):
                continue
            exact = self.vectors.take(found) @ queries[i]
            order = np.argsort(-exact, kind="stable")[:k]
            scores[i, : len(order)] = exact[order]
            best[i, : len(order)] = found[order]
        return scores, best


def build_index(vectors, ids: np.ndarray, kind: str = "auto") -> VectorIndex:
    """An index over ``vectors`` (an array, or ``MappedRows`` over a memory-mapped matrix;
    row i belongs to passage ``ids[i]``). IVF-PQ reads the vectors in pieces and keeps
    them mapped, never all in RAM; flat and HNSW load them all."""
    import faiss

    rows = _as_rows(vectors)
    chosen = choose_kind(len(rows), kind)
    if chosen == "ivfpq":
        return VectorIndex(_build_ivfpq(rows), np.asarray(ids, dtype=np.int64), chosen, rows)
    vectors = rows.take(slice(None))
    if chosen == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(vectors)
    return VectorIndex(index, np.asarray(ids, dtype=np.int64), chosen)


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: about sqrt(n), a power of two, 16 to 4,096."""
    return int(min(4096, max(16, 2 ** round(np.log2(max(n, 1) ** 0.5)))))


def _build_ivfpq(rows: MappedRows):
    """Train an IVF-PQ index (inner product) on a sample of ``rows``, then add every row
    in chunks of ``ADD_CHUNK`` read from disk."""
    import faiss

    nlist = ivf_lists(len(rows))
    quantizer = faiss.IndexFlatIP(rows.dim)
    index = faiss.IndexIVFPQ(quantizer, rows.dim, nlist, PQ_BYTES, 8, faiss.METRIC_INNER_PRODUCT)
    sample_size = min(len(rows), max(TRAIN_MIN, TRAIN_PER_LIST * nlist))
    sample = np.sort(np.random.default_rng(0).choice(len(rows), sample_size, replace=False))
    index.train(rows.take(sample))
    for start in range(0, len(rows), ADD_CHUNK):
        index.add(rows.take(slice(start, start + ADD_CHUNK)))
    index.nprobe = IVF_NPROBE
    return index


def load_or_build(
    folder: Path, vectors_fn, ids: np.ndarray, model_key: str, kind: str = "auto"
) -> tuple[VectorIndex, bool]:
    """(index, built?) — loads ``folder``'s index if it covers exactly ``ids`` with this
    model and kind, else builds it from ``vectors_fn()`` and saves it. ``vectors_fn``
    returns an array or ``MappedRows``; IVF-PQ calls it on load too (to rescore), so
    let it return mapped rows, not a copy in RAM."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    chosen = choose_kind(len(ids), kind)
    fingerprint = ids_fingerprint(ids, f"{model_key}:{chosen}")
    meta_path = folder / "index.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint and (folder / "index.faiss").exists():
            index = faiss.read_index(str(folder / "index.faiss"))
            if chosen == "hnsw":
                index.hnsw.efSearch = HNSW_EF_SEARCH
            mapped = None
            if chosen == "ivfpq":
                index.nprobe = IVF_NPROBE
                mapped = _as_rows(vectors_fn())
            return VectorIndex(index, np.load(folder / "ids.npy"), chosen, mapped), False
    built = build_index(vectors_fn(), ids, chosen)
    faiss.write_index(built.index, str(folder / "index.faiss.tmp"))
    (folder / "index.faiss.tmp").replace(folder / "index.faiss")
    np.save(folder / "ids.npy", built.ids)
    meta_path.write_text(json.dumps({"fingerprint": fingerprint, "kind": chosen, "size": len(ids)}))
    return built, True
