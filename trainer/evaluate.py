"""Retrieval evaluation: BM25, dense models and their hybrid, scored by trec_eval.

Plain data in, plain data out:

- a corpus is ``(ids, texts)``; queries are ``{query_id: text}``; qrels are
  ``{query_id: {doc_id: relevance}}`` (BEIR's convention, string ids);
- a *run* is ``{query_id: {doc_id: score}}`` holding each query's top ``k`` documents;
- :func:`ir_metrics` scores a run with ``pytrec_eval`` (the trec_eval measures BEIR uses),
  so no metric here is hand-written: nDCG@10, MRR@10 (reciprocal rank over the top 10),
  Recall@10, Recall@100 and MAP@100, averaged over the queries that have qrels.

BM25 is bm25s' Lucene variant (k1=1.2, b=0.75, English stop words, Snowball stemming),
the setting of ``curator.retrieval.bm25``. Dense runs use exact inner product over
L2-normalised vectors. The hybrid is Reciprocal Rank Fusion of two runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100")
HYBRID_K = 60.0


@dataclass
class RetrievalData:
    """A corpus, queries and qrels (string ids), e.g. a BEIR folder or a held-out split."""

    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    qrels: Qrels
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.doc_ids) != len(self.doc_texts):
            raise ValueError("doc_ids and doc_texts differ in length")
        # only queries that have at least one relevant document are evaluated
        self.queries = {
            q: t
            for q, t in self.queries.items()
            if any(r > 0 for r in self.qrels.get(q, {}).values())
        }


def load_beir(folder: str | Path, split: str = "test") -> RetrievalData:
    """A BEIR dataset folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``),
    read by ``curator.pipeline.label_readers.read_beir``: errors name the file, line and
    field. Document text is ``title + "\\n" + text`` when a title is present (the
    evaluation convention)."""
    from curator.pipeline.label_readers import read_beir

    folder = Path(folder)
    beir = read_beir(folder, split)
    return RetrievalData(
        [d.doc_id for d in beir.documents],
        [f"{d.title}\n{d.text}" if d.title else d.text for d in beir.documents],
        beir.queries,
        beir.qrels,
        name=f"{folder.name}/{split}",
    )


def ir_metrics(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, MRR@10, Recall@10/100 and MAP@100 of ``run`` over the queries of
    ``qrels`` that have a relevant document (a query missing from the run scores 0)."""
    import pytrec_eval

    judged = {q: docs for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
    if not judged:
        raise ValueError("no query has a relevant document: nothing to evaluate")
    full = {q: dict(run.get(q) or {}) for q in judged}
    # trec_eval needs at least one document per query; a dummy one scores 0
    for docs in full.values():
        if not docs:
            docs["__none__"] = 0.0
    top10 = {q: dict(sorted(d.items(), key=lambda item: -item[1])[:10]) for q, d in full.items()}
    main = pytrec_eval.RelevanceEvaluator(
        judged, {"ndcg_cut.10", "recall.10,100", "map_cut.100"}
    ).evaluate(full)
    rr = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    n = len(judged)
    return {
        "ndcg@10": sum(v["ndcg_cut_10"] for v in main.values()) / n,
        "mrr@10": sum(v["recip_rank"] for v in rr.values()) / n,
        "recall@10": sum(v["recall_10"] for v in main.values()) / n,
        "recall@100": sum(v["recall_100"] for v in main.values()) / n,
        "map@100": sum(v["map_cut_100"] for v in main.values()) / n,
    }


def per_query_ndcg(run: Run, qrels: Qrels, k: int = 10) -> dict[str, float]:
    """nDCG@``k`` of each query of ``qrels`` that has a relevant document, by
    ``pytrec_eval`` (a query missing from the run scores 0)."""
    import pytrec_eval

    judged = {q: docs for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
    full = {q: dict(run.get(q) or {}) or {"__none__": 0.0} for q in judged}
    measure = f"ndcg_cut.{k}"
    values = pytrec_eval.RelevanceEvaluator(judged, {measure}).evaluate(full)
    return {q: values[q][f"ndcg_cut_{k}"] for q in judged}


def bm25_run(data: RetrievalData, k: int = 100) -> Run:
    """Each query's top ``k`` documents by BM25 (``curator.retrieval.bm25``: Lucene,
    k1=1.2, b=0.75); a query with no indexed term retrieves nothing."""
    from curator.retrieval.bm25 import build_bm25

    index = build_bm25(np.arange(len(data.doc_ids)), data.doc_texts)
    query_ids = list(data.queries)
    k = min(k, len(data.doc_ids))
    all_scores = index.scores_many([data.queries[q] for q in query_ids])
    return {
        query_id: _top(scores, data.doc_ids, k) if scores.any() else {}
        for query_id, scores in zip(query_ids, all_scores, strict=True)
    }


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the ``k`` highest scores, best first (ties in row order)."""
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return top[np.argsort(-scores[top], kind="stable")]


def _top(scores: np.ndarray, doc_ids: list[str], k: int) -> dict[str, float]:
    """BM25's top ``k``: documents with no query term (score 0) only when ``k`` covers the
    whole corpus."""
    return {
        doc_ids[i]: float(scores[i]) for i in _best(scores, k) if scores[i] > 0 or k >= len(scores)
    }


EncodeFn = Callable[[list[str]], np.ndarray]


def dense_run(
    encode: EncodeFn,
    data: RetrievalData,
    k: int = 100,
    doc_vectors: np.ndarray | None = None,
) -> tuple[Run, np.ndarray]:
    """(each query's top ``k`` by cosine, the document vectors) for an ``encode`` function
    returning L2-normalised vectors. Pass ``doc_vectors`` to reuse an encoded corpus."""
    if doc_vectors is None:
        doc_vectors = encode(data.doc_texts)
    query_ids = list(data.queries)
    query_vectors = encode([data.queries[q] for q in query_ids])
    k = min(k, len(data.doc_ids))
    run: Run = {}
    for start in range(0, len(query_ids), 256):
        block = query_vectors[start : start + 256] @ doc_vectors.T
        for offset, scores in enumerate(block):
            run[query_ids[start + offset]] = {
                data.doc_ids[i]: float(scores[i]) for i in _best(scores, k)
            }
    return run, doc_vectors


def hybrid_run(first: Run, second: Run, k: float = HYBRID_K, depth: int = 100) -> Run:
    """Reciprocal Rank Fusion of two runs (1-based ranks, ``1 / (k + rank)`` summed)."""
    from curator.pipeline.fusion import reciprocal_rank_fusion

    fused_run: Run = {}
    for query_id in set(first) | set(second):
        rankings = {}
        for name, run in (("a", first), ("b", second)):
            ordered = sorted((run.get(query_id) or {}).items(), key=lambda item: -item[1])
            rankings[name] = {doc: rank for rank, (doc, _) in enumerate(ordered, start=1)}
        # fusion works on integer keys: map the doc ids to positions and back
        names = sorted({d for ranks in rankings.values() for d in ranks})
        position = {d: i for i, d in enumerate(names)}
        fused = reciprocal_rank_fusion(
            {m: {position[d]: r for d, r in ranks.items()} for m, ranks in rankings.items()}, k
        )
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:depth]
        fused_run[query_id] = {names[i]: score for i, score in best}
    return fused_run


def top_documents(run: Run, query_id: str, n: int = 10) -> list[tuple[str, float]]:
    """The ``n`` best (doc id, score) of one query in a run, best first."""
    return sorted((run.get(query_id) or {}).items(), key=lambda item: -item[1])[:n]
