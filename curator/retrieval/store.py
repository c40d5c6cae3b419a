"""Passage embeddings on disk, keyed by content hash, one folder per model setting.

``vectors.f32`` holds float32 rows (append-only), ``hashes.txt`` the content hash of each
row in the same order. Re-mining, new queries or a restart never re-encode a passage whose
text is unchanged. Rows are appended vectors first, hashes second, each flushed to disk,
so a crash in between leaves extra vectors that the next open trims.
One process writes a store at a time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


class EmbeddingStore:
    def __init__(self, folder: str | Path, dim: int) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.folder.mkdir(parents=True, exist_ok=True)
        self._vectors_path = self.folder / "vectors.f32"
        self._hashes_path = self.folder / "hashes.txt"
        self._rows: dict[str, int] = {}
        self._load()

    def _load(self) -> None:
        hashes = self._hashes_path.read_text().split() if self._hashes_path.exists() else []
        size = self._vectors_path.stat().st_size if self._vectors_path.exists() else 0
        complete = min(len(hashes), size // (self.dim * 4))
        if size != complete * self.dim * 4:  # trim a partial append
            with self._vectors_path.open("r+b") as handle:
                handle.truncate(complete * self.dim * 4)
        if len(hashes) != complete:
            self._hashes_path.write_text("".join(f"{h}\n" for h in hashes[:complete]))
        self._rows = {h: i for i, h in enumerate(hashes[:complete])}

    def __len__(self) -> int:
        return len(self._rows)

    def missing(self, hashes: Sequence[str]) -> list[str]:
        """The hashes (first occurrence order, no repeats) without a stored vector."""
        seen: set[str] = set()
        out = []
        for h in hashes:
            if h not in self._rows and h not in seen:
                seen.add(h)
                out.append(h)
        return out

    def add(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Append ``vectors`` (one row per hash) to the store."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(hashes), self.dim):
            raise ValueError(f"expected {(len(hashes), self.dim)} vectors, got {vectors.shape}")
        with self._vectors_path.open("ab") as handle:
            handle.write(vectors.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
        with self._hashes_path.open("a") as handle:
            handle.write("".join(f"{h}\n" for h in hashes))
            handle.flush()
            os.fsync(handle.fileno())
        start = len(self._rows)
        for offset, h in enumerate(hashes):
            self._rows[h] = start + offset

    def view(self, hashes: Sequence[str]):
        """``MappedRows`` over the stored vectors of ``hashes``, in that order, memory-mapped:
        nothing is read until rows are taken (KeyError if one is missing)."""
        from curator.retrieval.index import MappedRows

        rows = np.fromiter((self._rows[h] for h in hashes), dtype=np.int64, count=len(hashes))
        return MappedRows(self._matrix(), rows)

    def _matrix(self) -> np.ndarray:
        if not self._rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.memmap(
            self._vectors_path, dtype=np.float32, mode="r", shape=(len(self._rows), self.dim)
        )

    def get(self, hashes: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``hashes``, in that order (KeyError if one is missing)."""
        rows = np.fromiter((self._rows[h] for h in hashes), dtype=np.int64, count=len(hashes))
        if not len(rows):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._matrix()[rows])
