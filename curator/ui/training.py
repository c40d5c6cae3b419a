"""The Fine-tune page: train on the curated set, compare with BM25 and the base model.

Handlers are module-level functions over plain values (testable without a browser);
``build_training_tab`` only creates and wires the components inside the caller's Blocks.
Passage and query text go into Dataframe cells as plain strings (rendered as text).
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from curator.services.train import (
    EvaluationReport,
    TrainOptions,
    compare_rankings,
    evaluate_project,
    external_ids,
    fine_tuned_model,
    held_out_data,
    latest_training_run,
    train_project,
)
from db import Database
from trainer.evaluate import METRICS
from trainer.finetune import TrainSettings

RANKING_COLUMNS = ["rank", "passage id", "relevant", "vs base", "passage"]
PREVIEW = 220
FEW_HELD_OUT = 30


def metrics_frames(report: EvaluationReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table: one row per system and metric, bar data: nDCG@10 per system)."""
    table = pd.DataFrame(
        [[system] + [round(v[m], 4) for m in METRICS] for system, v in report.metrics.items()],
        columns=["system", *METRICS],
    )
    bars = pd.DataFrame(
        [
            {"system": system, "nDCG@10": round(values["ndcg@10"], 4)}
            for system, values in report.metrics.items()
        ]
    )
    return table, bars


def loss_frame(curve: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame(curve or [], columns=["step", "loss"])


def training_events(
    database: Database,
    project: str,
    data_dir: Path,
    policy: str,
    loss: str,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_seq_length: int,
    negatives: int,
    eval_fraction: float = 0.2,
    poll_seconds: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """Run a fine-tune in a thread and yield ``{"status", "curve", "step", "total"}``
    while it runs, then ``{"status", "curve", "report"}`` after the held-out evaluation
    (or ``{"error": ...}``)."""
    options = TrainOptions(
        policy=policy,
        eval_fraction=eval_fraction,
        settings=TrainSettings(
            loss=loss,
            epochs=float(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            max_seq_length=int(max_seq_length),
            negatives=int(negatives),
        ),
    )
    events: queue.Queue = queue.Queue()
    curve: list[dict[str, float]] = []

    def on_step(step: int, total: int, latest: float | None) -> None:
        events.put(("step", step, total, latest))

    def work() -> None:
        try:
            report = train_project(database, project, data_dir, options, on_step)
            events.put(("trained", report))
            try:
                evaluation = evaluate_project(
                    database,
                    project,
                    data_dir,
                    run_id=report.run_id,
                    split_seed=options.split_seed,
                    eval_fraction=eval_fraction,
                )
            except ValueError as error:  # e.g. no held-out query yet: the model is kept
                events.put(("unevaluated", str(error)))
                return
            events.put(("evaluated", evaluation))
        except Exception as error:  # shown to the user, with the reason
            traceback.print_exc()
            events.put(("error", str(error) or repr(error)))

    threading.Thread(target=work, daemon=True).start()
    trained = None
    while True:
        try:
            event = events.get(timeout=poll_seconds)
        except queue.Empty:
            continue
        kind = event[0]
        if kind == "step":
            _, step, total, latest = event
            if latest is not None and (not curve or curve[-1]["step"] != step):
                curve.append({"step": step, "loss": latest})
            yield {
                "status": f"training: step {step} of {total}"
                + (f", loss {latest:.4f}" if latest is not None else ""),
                "curve": list(curve),
                "step": step,
                "total": total,
            }
        elif kind == "trained":
            trained = event[1]
            yield {
                "status": trained.summary() + "\n\nevaluating on the held-out queries...",
                "curve": trained.loss_curve,
            }
        elif kind == "unevaluated":
            yield {
                "status": f"{trained.summary()}\n\nnot evaluated: {event[1]}",
                "curve": trained.loss_curve,
            }
            return
        elif kind == "evaluated":
            yield {"status": trained.summary(), "curve": trained.loss_curve, "report": event[1]}
            return
        else:
            yield {"error": event[1], "curve": list(curve)}
            return


def held_out_note(queries: int | None) -> str:
    """Markdown: how many held-out queries the metrics come from, with a warning under
    ``FEW_HELD_OUT``."""
    if queries is None:
        return ""
    text = f"Metrics from **{queries} held-out queries**."
    if queries < FEW_HELD_OUT:
        text += (
            f" **Warning: fewer than {FEW_HELD_OUT}.** Differences between the systems on so"
            " few queries are mostly noise; judge more queries before trusting them."
        )
    return text


def latest_run_view(database: Database, project: str) -> tuple:
    """What the page shows for the project's latest stored run, so a reload keeps it:
    (status text, loss curve, nDCG@10 bars, metrics table, held-out note). Empty values
    when no run exists yet."""
    latest = latest_training_run(database, project)
    if latest is None:
        return (
            "No training run yet.",
            loss_frame([]),
            pd.DataFrame(columns=["system", "nDCG@10"]),
            pd.DataFrame(columns=["system", *METRICS]),
            "",
        )
    report = EvaluationReport("held-out", "held-out", latest.eval_queries or 0, latest.metrics)
    table, bars = metrics_frames(report)
    if not latest.metrics:
        table = pd.DataFrame(columns=["system", *METRICS])
        bars = pd.DataFrame(columns=["system", "nDCG@10"])
    status = latest.summary()
    if not latest.metrics:
        status += "\n\nno held-out metrics stored for this run"
    return status, loss_frame(latest.loss_curve), bars, table, held_out_note(latest.eval_queries)


def held_out_choices(database: Database, project: str) -> list[tuple[str, str]]:
    """(label, query id) of the held-out curated queries, for the side-by-side picker."""
    data = held_out_data(database, project)
    return [(text[:120], query_id) for query_id, text in data.queries.items()]


def side_by_side(
    database: Database, project: str, data_dir: Path, typed: str, held_out_id: str | None
) -> tuple[str, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(message, BM25 top 10, base top 10, fine-tuned top 10) for a typed query or a
    held-out one (its relevant passages marked). The fine-tuned column shows each
    passage's move against the base model's ranking."""
    data = held_out_data(database, project)
    relevant: set[str] = set()
    query = (typed or "").strip()
    if held_out_id and not query:
        query = data.queries.get(str(held_out_id), "")
        relevant = {d for d, r in data.qrels.get(str(held_out_id), {}).items() if r > 0}
    empty = pd.DataFrame(columns=RANKING_COLUMNS)
    if not query:
        return "Type a query or pick a held-out one.", empty, empty, empty
    try:
        _, tuned_path = fine_tuned_model(database, project)
    except LookupError:
        tuned_path = None
    report = EvaluationReport(data.name, "held-out", len(data.queries), {}, {}, data, tuned_path)
    rankings = compare_rankings(report, query, relevant, cache_dir=Path(data_dir) / "eval_cache")
    names = external_ids(
        database, project, {item.doc_id for items in rankings.values() for item in items}
    )
    frames = []
    for system in ("BM25", "base", "fine-tuned"):
        rows = []
        for item in rankings.get(system, []):
            if system == "fine-tuned":
                move = (
                    "new"
                    if item.base_rank is None
                    else "="
                    if item.base_rank == item.rank
                    else f"▲{item.base_rank - item.rank}"
                    if item.base_rank > item.rank
                    else f"▼{item.rank - item.base_rank}"
                )
            else:
                move = ""
            text = " ".join(item.text.split())
            rows.append(
                [
                    item.rank,
                    names.get(item.doc_id, item.doc_id),
                    "✓" if item.relevant else "",
                    move,
                    text[:PREVIEW],
                ]
            )
        frames.append(pd.DataFrame(rows, columns=RANKING_COLUMNS))
    found = {s: sum(1 for item in rankings.get(s, []) if item.relevant) for s in rankings}
    message = f"Query: {query}"
    if relevant:
        message += "  |  relevant passages in the top 10: " + ", ".join(
            f"{s} {n}/{len(relevant)}" for s, n in found.items()
        )
    if tuned_path is None:
        message += "  |  no fine-tuned model yet: press Fine-tune first"
    return message, frames[0], frames[1], frames[2]


def build_training_tab(database: Database, project: str, data_dir: Path, guard=None) -> tuple:
    """The Fine-tune page's components and events (call inside ``gr.Tab``); ``guard(request,
    action)``, when given, runs first in the fine-tune and compare handlers and raises to
    refuse the caller (``curator.ui.app.admin_guard``). Returns (the
    Fine-tune click's event, for chaining; a function giving the latest stored run's
    values; the components they go to), for the caller to run on page load."""
    import gradio as gr

    gr.Markdown(
        "Fine-tune the base model (all-MiniLM-L6-v2) on the curated queries; about a fifth "
        "of the judged seed passages are held out (stored split, seed 13) and BM25, the "
        "base model, the fine-tuned model and the hybrid RRF(BM25, fine-tuned) are "
        "compared on them. Defaults finish in minutes on a CPU for a few hundred queries; "
        "on a GPU raise the batch size. The same runs from the command line: "
        "`curator train` and `curator eval`."
    )
    with gr.Row():
        policy = gr.Dropdown(
            ["none", "high_confidence", "all"], value="none", label="Unreviewed queries"
        )
        loss = gr.Dropdown(
            ["mnrl", "cached_mnrl", "gist", "margin_mse"], value="mnrl", label="Loss"
        )
        epochs = gr.Number(2, label="Epochs", minimum=0.1)
        batch = gr.Number(32, label="Batch size", precision=0, minimum=2)
        lr = gr.Number(5e-5, label="Learning rate")
        max_seq = gr.Number(256, label="Max tokens", precision=0, minimum=16)
        negatives = gr.Number(1, label="Hard negatives per row", precision=0, minimum=0)
    start = gr.Button("Fine-tune", variant="primary", elem_id="finetune-button")
    status = gr.Textbox(label="Status", lines=3, elem_id="finetune-status")
    with gr.Row():
        curve = gr.LinePlot(loss_frame([]), x="step", y="loss", title="Training loss")
        bars = gr.BarPlot(
            pd.DataFrame(columns=["system", "nDCG@10"]),
            x="system",
            y="nDCG@10",
            title="nDCG@10 on the held-out queries",
            sort=None,
            y_lim=[0, 1],
        )
    table = gr.Dataframe(
        headers=["system", *METRICS], label="Held-out metrics", elem_id="metrics-table"
    )
    note = gr.Markdown(elem_id="heldout-note")
    gr.Markdown("### Side by side: the top 10 of each system")
    with gr.Row():
        typed = gr.Textbox(label="Type a query", scale=2)
        picked = gr.Dropdown([], label="or pick a held-out query", scale=2)
        compare = gr.Button("Compare", elem_id="compare-button")
    message = gr.Textbox(label="", show_label=False, elem_id="compare-message")
    with gr.Row():
        columns = [
            gr.Dataframe(
                headers=RANKING_COLUMNS,
                label=name,
                wrap=True,
                column_widths=["8%", "17%", "10%", "10%", "55%"],
            )
            for name in ("BM25", "base model", "fine-tuned")
        ]

    def run(
        policy,
        loss,
        epochs,
        batch,
        lr,
        max_seq,
        negatives,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008
    ):
        if guard is not None:
            guard(request, "fine-tuning")
        for event in training_events(
            database, project, data_dir, policy, loss, epochs, batch, lr, max_seq, negatives
        ):
            if "error" in event:
                raise gr.Error(event["error"])
            if "total" in event:
                progress((event["step"], event["total"]), desc="fine-tune", unit="steps")
            if "report" in event:
                metrics, bar_data = metrics_frames(event["report"])
                yield (
                    event["status"],
                    loss_frame(event["curve"]),
                    bar_data,
                    metrics,
                    held_out_note(event["report"].queries),
                    gr.update(choices=held_out_choices(database, project)),
                )
            else:
                yield (
                    event["status"],
                    loss_frame(event["curve"]),
                    *(gr.skip(),) * 4,
                )

    # gradio resolves annotations in this module's globals, where gradio is not imported
    run.__annotations__["request"] = gr.Request
    started = start.click(
        run,
        [policy, loss, epochs, batch, lr, max_seq, negatives],
        [status, curve, bars, table, note, picked],
        api_name="fine_tune",
    )

    def refresh():
        try:
            return gr.update(choices=held_out_choices(database, project))
        except Exception:  # no judged queries yet
            return gr.update(choices=[])

    def show(typed, picked, request: gr.Request):
        if guard is not None:
            guard(request, "the model comparison")
        return side_by_side(database, project, data_dir, typed, picked)

    show.__annotations__["request"] = gr.Request
    compare.click(show, [typed, picked], [message, *columns], api_name="compare")
    picked.focus(refresh, None, picked)
    return started, partial(latest_run_view, database, project), [status, curve, bars, table, note]
