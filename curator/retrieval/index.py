"""A FAISS inner-product index over a project's passage vectors, persisted beside them.

``kind='auto'`` picks exact search (``IndexFlatIP``) below 50,000 passages and HNSW above
(approximate, much faster on large corpora); ``flat`` or ``hnsw`` override. The index is
rebuilt only when the set of passages (or the model) changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX_KINDS = ("auto", "flat", "hnsw")
FLAT_LIMIT = 50_000
HNSW_M = 32
HNSW_EF_SEARCH = 128


def choose_kind(n: int, kind: str = "auto") -> str:
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
    if kind != "auto":
        return kind
    return "flat" if n < FLAT_LIMIT else "hnsw"


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

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, passage ids) of the top ``k`` per query; -1 ids pad short results."""
        k = min(k, len(self.ids))
        scores, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        ids = np.where(rows >= 0, self.ids[np.clip(rows, 0, None)], -1)
        return scores, ids


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto") -> VectorIndex:
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    chosen = choose_kind(len(vectors), kind)
    if chosen == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(vectors)
    return VectorIndex(index, np.asarray(ids, dtype=np.int64), chosen)


def load_or_build(
    folder: Path, vectors_fn, ids: np.ndarray, model_key: str, kind: str = "auto"
) -> tuple[VectorIndex, bool]:
    """(index, built?) — loads ``folder``'s index if it covers exactly ``ids`` with this
    model and kind, else builds it from ``vectors_fn()`` and saves it."""
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
            return VectorIndex(index, np.load(folder / "ids.npy"), chosen), False
    built = build_index(vectors_fn(), ids, chosen)
    faiss.write_index(built.index, str(folder / "index.faiss.tmp"))
    (folder / "index.faiss.tmp").replace(folder / "index.faiss")
    np.save(folder / "ids.npy", built.ids)
    meta_path.write_text(json.dumps({"fingerprint": fingerprint, "kind": chosen, "size": len(ids)}))
    return built, True
