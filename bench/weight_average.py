"""Weight averaging (WiSE-FT) of the base model and a label-free fine-tuned one: does a
point between them retrieve better, and can a label-free signal choose the point?

Run after `bench/label_free.py`, which leaves each corpus's project database and fine-tuned
model in `bench/out/label_free/<corpus>/`. For each mixing weight alpha (0 = the base
model, 1 = the fine-tuned one), the script averages the two models' weights
(``(1 - alpha) * base + alpha * fine-tuned``) and prints nDCG@10 on:

- ``gen-consistent``: the held-out generated queries the guide retrieves (the label-free
  evaluation before it kept the others: the base model chose these queries);
- ``gen-all``: every held-out generated query but copies, junk and duplicates, scored
  against its seed passage (the label-free evaluation `curator train` reports now);
- the corpus's real qrels (``--splits``; choose on ``train``, report ``test``).

    python bench/weight_average.py --corpus scifact --run 2 --splits train,test
    python bench/weight_average.py --corpus dbpedia --run 1
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "bench" / "out" / "label_free"
FOLDERS = {
    "scifact": "scifact",
    "dbpedia": "dbpedia-entity-subset5k",
    "msmarco": "msmarco-dl19-subset5k",
}


def generated_sets(folder: Path, doc_data) -> dict:
    """``gen-consistent`` and ``gen-all`` held-out generated query sets over the corpus."""
    from curator.pipeline.training_set import EVAL_KEEPS_FLAGS
    from curator.services.train import external_ids
    from curator.services.training_set import load_generated_held_out
    from db import open_database
    from trainer.evaluate import RetrievalData

    database = open_database(f"sqlite:///{folder / 'bench.db'}")
    examples = load_generated_held_out(database, "bench")
    flagged = _flags(database)
    external = external_ids(database, "bench", [e.seed_passage_id for e in examples])
    sets = {}
    for name, keep in (("gen-consistent", frozenset()), ("gen-all", EVAL_KEEPS_FLAGS)):
        chosen = [e for e in examples if flagged.get(e.query_id, set()) <= keep]
        queries = {str(e.query_id): e.query for e in chosen}
        qrels = {str(e.query_id): {external[str(e.seed_passage_id)]: 1} for e in chosen}
        sets[name] = RetrievalData(doc_data.doc_ids, doc_data.doc_texts, queries, qrels, name)
    return sets


def _flags(database) -> dict[int, set[str]]:
    from sqlalchemy import select

    from db.models import QueryFlag

    found: dict[int, set[str]] = {}
    with database.sessions() as session:
        for query_id, kind in session.execute(select(QueryFlag.query_id, QueryFlag.kind)):
            found.setdefault(query_id, set()).add(kind)
    return found


def averaged_model(base: str, tuned: Path, alpha: float, work: Path) -> str:
    """A saved model whose weights are ``(1 - alpha) * base + alpha * tuned``."""
    if alpha == 0:
        return base
    if alpha == 1:
        return str(tuned)
    from sentence_transformers import SentenceTransformer

    from curator.retrieval.guide import resolve_model

    dest = work / f"alpha-{alpha:g}"
    if not dest.exists():
        path, local = resolve_model(base)
        mixed = SentenceTransformer(str(tuned), device="cpu")
        base_state = SentenceTransformer(path, device="cpu", local_files_only=local).state_dict()
        state = mixed.state_dict()
        mixed.load_state_dict(
            {
                k: (1 - alpha) * base_state[k] + alpha * v if v.is_floating_point() else v
                for k, v in state.items()
            }
        )
        mixed.save(str(dest))
    return str(dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=list(FOLDERS), required=True)
    parser.add_argument("--run", type=int, default=1, help="training run id in the bench db")
    parser.add_argument("--splits", default="test", help="real qrels splits, e.g. train,test")
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--out", type=Path, default=OUT, help="bench/label_free.py's --out")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curator.services.train import BASE_MODEL, encoder
    from trainer.evaluate import dense_run, ir_metrics, load_beir

    folder = args.out / args.corpus
    if not (folder / "bench.db").exists():
        parser.error(f"{folder / 'bench.db'} not found: run bench/label_free.py first")
    beir = DATASETS / FOLDERS[args.corpus]
    datasets = {split: load_beir(beir, split) for split in args.splits.split(",")}
    corpus = next(iter(datasets.values()))
    datasets.update(generated_sets(folder, corpus))
    print({name: len(data.queries) for name, data in datasets.items()})
    tuned = folder / "models" / "bench" / f"run-{args.run}" / "model"
    for alpha in (float(a) for a in args.alphas.split(",")):
        model = encoder(averaged_model(BASE_MODEL, tuned, alpha, folder / "averaged"))
        vectors = model.encode(corpus.doc_texts)
        row = {
            name: ir_metrics(dense_run(model.encode, data, doc_vectors=vectors)[0], data.qrels)
            for name, data in datasets.items()
        }
        print(f"alpha {alpha:<5g}" + "".join(f"{n} {m['ndcg@10']:.4f}  " for n, m in row.items()))


if __name__ == "__main__":
    main()
