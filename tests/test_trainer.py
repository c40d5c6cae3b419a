"""The trainer: evaluation metrics, a real short fine-tune, resume, and the DB service."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
from sqlalchemy import select

from curator.services.annotate import record_judgment
from curator.services.train import TrainOptions, evaluate_project, train_project
from db.models import EmbeddingModel, EvaluationResult, Passage, TrainingRun
from trainer.evaluate import (
    RetrievalData,
    bm25_run,
    hybrid_run,
    ir_metrics,
    load_beir,
)
from trainer.finetune import TrainSettings, check_rows, fine_tune

FAST = dict(batch_size=8, max_seq_length=64, learning_rate=1e-4, bf16="off", save_steps=2)


def test_metrics_follow_trec_eval_definitions():
    qrels = {"a": {"d1": 1}, "b": {"d2": 1, "d3": 1}, "c": {"d9": 1}}
    run = {
        "a": {"d1": 3.0, "x": 2.0},  # relevant at rank 1
        "b": {"x": 3.0, "d2": 2.0},  # one of two relevant at rank 2
        "c": {f"x{i}": 20.0 - i for i in range(11)} | {"d9": 0.5},  # rank 12
    }
    metrics = ir_metrics(run, qrels)
    assert metrics["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)  # rank 12 is beyond 10
    assert metrics["recall@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["recall@100"] == pytest.approx((1 + 0.5 + 1) / 3)
    ndcg_b = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert metrics["ndcg@10"] == pytest.approx((1 + ndcg_b + 0) / 3)
    assert ir_metrics({"a": {"d1": 1.0}}, {"a": {"d1": 1}})["map@100"] == 1.0
    # a query missing from the run counts as 0, not skipped
    assert ir_metrics({}, {"a": {"d1": 1}})["ndcg@10"] == 0.0


def test_hybrid_is_reciprocal_rank_fusion():
    fused = hybrid_run({"q": {"a": 3, "b": 2, "c": 1}}, {"q": {"c": 9, "a": 8}}, k=60)
    assert list(fused["q"]) == ["a", "c", "b"]
    assert fused["q"]["a"] == pytest.approx(1 / 61 + 1 / 62)


def test_bm25_on_scifact_test_matches_the_published_setup(scifact_dir):
    data = load_beir(scifact_dir, "test")
    assert len(data.queries) == 300
    metrics = ir_metrics(bm25_run(data), data.qrels)
    # bm25s lucene k1=1.2 b=0.75 with stemming measured 0.679 (BEIR paper's Anserini: 0.665)
    assert metrics["ndcg@10"] == pytest.approx(0.679, abs=0.002)


def test_load_beir_names_file_and_line(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "y"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tmany\n")
    with pytest.raises(ValueError, match=r"test.tsv:2: field 'score': must be a number"):
        load_beir(tmp_path)


def scifact_rows(scifact_dir, n=32):
    """The first ``n`` SciFact train queries (in qrels order) with their first positive."""
    train = load_beir(scifact_dir, "train")
    corpus = dict(zip(train.doc_ids, train.doc_texts, strict=True))
    rows = []
    for query_id, docs in train.qrels.items():
        if all(r["anchor"] != train.queries[query_id] for r in rows):
            rows.append({"anchor": train.queries[query_id], "positive": corpus[next(iter(docs))]})
        if len(rows) == n:
            return rows


def mnrl_loss(model, rows, scale=20.0):
    """The MNRL objective on ``rows`` (cross-entropy over the in-set similarity matrix)."""
    anchors = model.encode([r["anchor"] for r in rows], normalize_embeddings=True)
    positives = model.encode([r["positive"] for r in rows], normalize_embeddings=True)
    logits = scale * anchors @ positives.T
    logits -= logits.max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.mean(np.diag(log_softmax)))


@pytest.mark.slow
def test_short_fine_tune_lowers_the_loss_and_writes_a_loadable_model(scifact_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from trainer.finetune import load_model

    rows = scifact_rows(scifact_dir, 32)
    base = load_model("all-MiniLM-L6-v2", 64)
    before = mnrl_loss(base, rows)
    result = fine_tune("all-MiniLM-L6-v2", rows, tmp_path / "out", TrainSettings(epochs=2, **FAST))
    assert result.steps == 8 and len(result.loss_curve) == 8
    tuned = SentenceTransformer(str(result.model_path))
    tuned.max_seq_length = 64
    after = mnrl_loss(tuned, rows)
    assert after < before * 0.8, (before, after)
    assert (result.model_path / "README.md").exists()  # the model card


@pytest.mark.slow
def test_interrupted_training_resumes_from_its_checkpoint(scifact_dir, tmp_path):
    rows = scifact_rows(scifact_dir, 16)
    settings = TrainSettings(max_steps=4, **FAST)

    def crash(step, total, loss):
        if step == 3:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        fine_tune("all-MiniLM-L6-v2", rows, tmp_path / "out", settings, on_step=crash)
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-2").exists()
    result = fine_tune("all-MiniLM-L6-v2", rows, tmp_path / "out", settings)
    assert result.resumed_from.endswith("checkpoint-2")
    assert result.steps == 4
    assert [p["step"] for p in result.loss_curve] == [1, 2, 3, 4]  # the whole curve


def test_a_checkpoint_cut_short_is_removed_and_the_last_complete_one_resumed(tmp_path):
    """A run killed while it wrote checkpoint-4 (its config there, no weights, no trainer
    state) resumes from checkpoint-2 and keeps the loss of every step."""
    import shutil

    text_of = {doc_id: f"{title}\n{text}" for doc_id, title, text in TOY_DOCS}
    rows = [{"anchor": query, "positive": text_of[seed]} for query, seed in TOY_QUERIES]
    out = tmp_path / "out"
    fast = {**FAST, "batch_size": 4}
    first = fine_tune("all-MiniLM-L6-v2", rows, out, TrainSettings(max_steps=2, **fast))
    assert [p["step"] for p in first.loss_curve] == [1, 2]
    complete = out / "checkpoints" / "checkpoint-2"
    partial = out / "checkpoints" / "checkpoint-4"
    partial.mkdir()
    shutil.copy(complete / "config.json", partial / "config.json")
    result = fine_tune("all-MiniLM-L6-v2", rows, out, TrainSettings(max_steps=4, **fast))
    assert result.resumed_from == str(complete)
    assert result.steps == 4
    assert [p["step"] for p in result.loss_curve] == [1, 2, 3, 4]
    assert result.loss_curve[:2] == first.loss_curve
    assert (partial / "trainer_state.json").exists()  # written anew by the resumed run


def test_rows_are_checked_before_training():
    with pytest.raises(ValueError, match="no training rows"):
        check_rows([], TrainSettings())
    with pytest.raises(ValueError, match="label"):
        check_rows([{"anchor": "a", "positive": "b"}] * 2, TrainSettings(loss="margin_mse"))
    with pytest.raises(ValueError, match="loss must be"):
        TrainSettings(loss="magic")


DOCS = TOY_DOCS[:8]
QUERIES = TOY_QUERIES


@pytest.fixture
def judged(database, tmp_path, guide_model):
    ids = mine_small_project(database, tmp_path, guide_model, DOCS, QUERIES, top_n=8)
    for query_id in ids:
        record_judgment(database, query_id, "ann", "accept")
    return SimpleNamespace(db=database, data=tmp_path / "data", queries=ids)


@pytest.mark.slow
def test_train_and_evaluate_a_project(judged):
    options = TrainOptions(
        eval_fraction=0.3,
        settings=TrainSettings(
            epochs=1, batch_size=4, **{k: v for k, v in FAST.items() if k != "batch_size"}
        ),
    )
    report = train_project(judged.db, "p", judged.data, options)
    with judged.db.sessions() as session:
        run = session.get(TrainingRun, report.run_id)
        assert run.status == "done" and run.loss_curve and run.output_path
        assert run.data_snapshot["train_query_ids"]
        assert run.settings["learning_rate"] == 1e-4
        model = session.scalar(
            select(EmbeddingModel).where(EmbeddingModel.training_run_id == run.id)
        )
        assert model.kind == "fine-tuned" and (report.model_path / "config.json").exists()
    evaluation = evaluate_project(judged.db, "p", judged.data, eval_fraction=0.3)
    assert set(evaluation.metrics) == {"BM25", "base", "fine-tuned", "hybrid"}
    assert evaluation.queries == report.eval_queries > 0
    with judged.db.sessions() as session:
        stored = session.scalars(
            select(EvaluationResult).where(
                EvaluationResult.system == "fine-tuned", EvaluationResult.metric == "ndcg@10"
            )
        ).all()
        assert stored and stored[0].training_run_id == report.run_id
        n_passages = len(session.scalars(select(Passage.id)).all())
    assert n_passages == len(evaluation.data.doc_ids)


def test_training_without_judgments_says_what_to_do(database, tmp_path, guide_model):
    mine_small_project(database, tmp_path, guide_model, DOCS, QUERIES[:2], top_n=4)
    with pytest.raises(ValueError, match="judge more queries"):
        train_project(database, "p", tmp_path / "data")


def test_retrieval_data_keeps_only_queries_with_relevant_documents():
    data = RetrievalData(["d"], ["t"], {"a": "x", "b": "y"}, {"a": {"d": 1}, "b": {"d": 0}})
    assert list(data.queries) == ["a"]


@pytest.mark.slow
def test_cli_train_then_eval(judged, capsys):
    from curator.cli import main

    common = ["--data-dir", str(judged.data), "--db", judged.db.url, "--project", "p"]
    code = main(
        [
            *common,
            "train",
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--max-seq-length",
            "64",
            "--eval-fraction",
            "0.3",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "training run 1:" in out and "fine-tuned" in out and "ndcg@10" in out
    from curator.services.jobs import list_jobs

    [job] = list_jobs(judged.db, limit=1)
    assert (job.kind, job.status, job.progress_done, job.progress_total) == ("train", "done", 2, 2)
    assert job.message.startswith("fine-tune (loss ")  # what `curator jobs` shows while it runs
    code = main([*common, "eval", "--eval-fraction", "0.3"])
    out, _ = capsys.readouterr()
    assert code == 0
    systems = [line.split()[0] for line in out.splitlines() if line.strip()][2:]
    assert systems == ["BM25", "base", "fine-tuned", "hybrid"]
    code = main([*common, "eval", "--run", "99"])
    assert code == 2 and "no fine-tuned model for run 99" in capsys.readouterr().err


@pytest.mark.slow
def test_fine_tune_page_handlers_train_compare_and_rank_side_by_side(judged):
    from curator.services.train import training_events, training_options, training_params
    from curator.ui.training import (
        held_out_choices,
        latest_run_view,
        metrics_frames,
        side_by_side,
    )

    params = training_params("none", "mnrl", 1, 4, 1e-4, 64, 1)
    events = list(training_events(judged.db, "p", judged.data, training_options(params)))
    assert any("training: step" in e.get("status", "") for e in events)
    final = events[-1]
    assert "error" not in final, final
    table, bars = metrics_frames(final["report"])
    assert list(table["system"]) == ["BM25", "base", "fine-tuned", "hybrid"]
    assert list(bars["system"]) == list(table["system"])
    assert list(bars["nDCG@10"]) == list(table["ndcg@10"])
    assert final["curve"] and final["curve"][-1]["step"] >= 1

    # what a reload of the page shows: the stored run, its metrics, the held-out count
    status, curve, stored_bars, stored_table, note = latest_run_view(judged.db, "p")
    assert status.startswith(f"training run {final['report'].training_run_id} (done, mnrl)")
    assert list(stored_table["system"]) == list(table["system"])
    assert list(stored_table["ndcg@10"]) == list(table["ndcg@10"])
    assert list(stored_bars["nDCG@10"]) == list(bars["nDCG@10"])
    assert len(curve) == len(final["curve"])
    held_out = final["report"].queries
    assert f"Metrics from **{held_out} held-out queries**" in note
    assert "fewer than 30" in note  # a toy project holds out a handful
    paired = final["report"].paired  # fine-tuned vs base, query by query
    assert paired is not None and paired.queries == held_out
    assert f"{paired.wins} wins, {paired.ties} ties, {paired.losses} losses" in note
    assert "paired bootstrap 95% interval" in note

    choices = held_out_choices(judged.db, "p")
    assert choices
    label, query_id = choices[0]
    message, bm25, base, tuned = side_by_side(judged.db, "p", judged.data, "", query_id)
    assert label in message and "relevant passages in the top 10" in message
    for frame in (bm25, base, tuned):
        assert list(frame["#"]) == list(range(1, len(DOCS) + 1))
        assert (frame["rel"] == "✓").sum() == 1
        assert set(frame["id"]) == {doc[0] for doc in DOCS}
    assert set(tuned["vs base"]) <= {"="} | {f"▲{i}" for i in range(8)} | {
        f"▼{i}" for i in range(8)
    }
    message, *_ = side_by_side(judged.db, "p", judged.data, "", None)
    assert message == "Type a query or pick a held-out one."


@pytest.mark.slow
def test_a_stopped_training_run_is_resumed_by_the_next_identical_call(judged):
    settings = TrainSettings(epochs=3, batch_size=2, max_seq_length=64, bf16="off", save_steps=2)
    options = TrainOptions(eval_fraction=0.3, settings=settings)

    def crash(step, total, loss):
        if step == 3:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        train_project(judged.db, "p", judged.data, options, on_step=crash)
    with judged.db.sessions() as session:
        (stopped,) = session.scalars(select(TrainingRun)).all()
        assert stopped.status == "interrupted"
    report = train_project(judged.db, "p", judged.data, options)
    assert report.run_id == stopped.id and report.resumed_from.endswith("checkpoint-2")
    with judged.db.sessions() as session:
        run = session.get(TrainingRun, report.run_id)
        assert run.status == "done"
        steps = [p["step"] for p in run.loss_curve]
        assert steps == sorted(set(steps)) and steps[0] == 1  # the curve spans both attempts


def test_eval_on_a_beir_folder_from_the_command_line(judged, capsys):
    from curator.cli import main

    beir = judged.data.parent / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in DOCS)
    )
    (beir / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{n}", "text": q}) for n, (q, _) in enumerate(QUERIES))
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"q{n}\t{seed}\t1\n" for n, (_, seed) in enumerate(QUERIES))
    )
    where = ["--data-dir", str(judged.data), "--db", judged.db.url, "--project", "p"]
    code = main([*where, "eval", "--beir", str(beir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "beir/test (8 queries)" in out
    bm25 = next(line for line in out.splitlines() if line.startswith("BM25"))
    assert float(bm25.split()[1]) > 0.5  # nDCG@10 on these easy queries


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss", "matryoshka"),
    [("cached_mnrl", False), ("gist", False), ("margin_mse", False), ("mnrl", True)],
)
def test_every_loss_trains_a_few_steps(scifact_dir, tmp_path, loss, matryoshka):
    rows = scifact_rows(scifact_dir, 8)
    for i, row in enumerate(rows):  # a hard negative: the next row's positive
        row["negative_1"] = rows[(i + 1) % len(rows)]["positive"]
    if loss == "margin_mse":
        rows = [{**row, "label": [0.9, 0.1]} for row in rows]
    settings = TrainSettings(
        loss=loss,
        matryoshka=matryoshka,
        max_steps=2,
        batch_size=4,
        mini_batch_size=2,
        max_seq_length=32,
        bf16="off",
        save_steps=100,
    )
    result = fine_tune("all-MiniLM-L6-v2", rows, tmp_path / loss, settings)
    assert result.steps == 2 and len(result.loss_curve) == 2
    assert all(np.isfinite(p["loss"]) for p in result.loss_curve)
    assert (result.model_path / "config.json").exists()


@pytest.mark.slow
def test_a_fine_tune_without_held_out_queries_keeps_the_model_and_says_why(
    database, tmp_path, guide_model
):
    from curator.services.train import training_events, training_options, training_params

    ids = mine_small_project(database, tmp_path, guide_model, DOCS, QUERIES[:3], top_n=4)
    for query_id in ids:
        record_judgment(database, query_id, "ann", "accept")
    events = list(
        training_events(
            database,
            "p",
            tmp_path / "data",
            training_options(training_params("none", "mnrl", 1, 2, 1e-4, 32, 1)),
        )
    )
    assert "error" not in events[-1]
    assert "not evaluated: no held-out queries" in events[-1]["status"]


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        (
            RuntimeError("Failed to load\nTraceback (most recent call last):\n  File x"),
            "RuntimeError: Failed to load",
        ),
        (RuntimeError(" \n "), "RuntimeError: RuntimeError(' \\n ')"),  # blank message
        (RuntimeError(), "RuntimeError: RuntimeError()"),
    ],
)
def test_a_failed_fine_tune_reaches_the_page_as_one_line(monkeypatch, tmp_path, raised, shown):
    import curator.services.train as train_service

    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr(train_service, "train_project", fail)
    events = train_service.training_events(
        None, "p", tmp_path, train_service.TrainOptions(), poll_seconds=0.01
    )
    seen: list = []  # a handler that dies itself never sends its event: read with a bound
    reader = threading.Thread(target=lambda: seen.extend(events), daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "no last event: the failure handler itself failed"
    assert seen[-1]["error"] == shown
