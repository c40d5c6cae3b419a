"""BM25 over a project's passages with bm25s, built once per passage set and persisted.

Lucene's BM25 (k1=1.2, b=0.75) over title + text, lower-cased, English stop words removed,
Snowball-stemmed: the setting that gives nDCG@10 0.679 on SciFact test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator.retrieval.index import ids_fingerprint

K1 = 1.2
B = 0.75


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@dataclass
class BM25Index:
    retriever: object
    ids: np.ndarray

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage (row order of ``ids``) for ``query``."""
        return next(self.scores_many([query]))

    def scores_many(self, queries: list[str]) -> Iterator[np.ndarray]:
        """BM25 scores of every passage (row order of ``ids``) for each query in turn, the
        queries tokenized in one batch; all zeros for a query with no indexed term."""
        import bm25s

        tokenized = bm25s.tokenize(
            queries, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
        )
        vocab = self.retriever.vocab_dict
        for tokens in tokenized:
            known = [t for t in tokens if t in vocab]
            if not known:
                yield np.zeros(len(self.ids), dtype=np.float32)
            else:
                yield np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def score_and_rank(self, query: str, passage_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, 1-based ranks over the whole corpus) of ``passage_ids``.

        Ties share the best rank; a passage with score 0 (no query term) gets rank 0,
        meaning "not retrieved".
        """
        all_scores = self.scores(query)
        row_of = self._row_of()
        rows = np.fromiter(
            (row_of[int(p)] for p in passage_ids), dtype=np.int64, count=len(passage_ids)
        )
        chosen = all_scores[rows]
        ordered = np.sort(all_scores)[::-1]
        # rank = 1 + number of passages with a strictly higher score
        ranks = np.searchsorted(-ordered, -chosen, side="left") + 1
        ranks = np.where(chosen > 0, ranks, 0)
        return chosen, ranks

    def _row_of(self) -> dict[int, int]:
        cached = getattr(self, "_rows", None)
        if cached is None:
            cached = {int(p): i for i, p in enumerate(self.ids)}
            self._rows = cached
        return cached


def build_bm25(ids: np.ndarray, texts: list[str]) -> BM25Index:
    import bm25s

    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), show_progress=False)
    retriever = bm25s.BM25(method="lucene", k1=K1, b=B)
    retriever.index(tokens, show_progress=False)
    return BM25Index(retriever, np.asarray(ids, dtype=np.int64))


def load_or_build_bm25(folder: Path, ids: np.ndarray, texts_fn) -> tuple[BM25Index, bool]:
    """(index, built?) — the persisted index if it covers exactly ``ids``, else a new one."""
    import bm25s

    fingerprint = ids_fingerprint(ids, f"bm25:{K1}:{B}")
    meta_path = folder / "bm25.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("fingerprint") == fingerprint:
        retriever = bm25s.BM25.load(str(folder / "bm25"))
        return BM25Index(retriever, np.load(folder / "bm25_ids.npy")), False
    index = build_bm25(ids, texts_fn())
    folder.mkdir(parents=True, exist_ok=True)
    index.retriever.save(str(folder / "bm25"))
    np.save(folder / "bm25_ids.npy", index.ids)
    meta_path.write_text(json.dumps({"fingerprint": fingerprint, "size": len(ids)}))
    return index, True
