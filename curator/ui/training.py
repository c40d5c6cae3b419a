"""The Fine-tune page: train on the curated set, compare with BM25 and the base model.

Handlers are module-level functions over plain values (testable without a browser);
``build_training_tab`` only creates and wires the components inside the caller's Blocks.
Passage and query text go into Dataframe cells as plain strings (rendered as text).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from curator.services import Database
from curator.services.train import (
    METRICS,
    EvaluationReport,
    PairedComparison,
    compare_rankings,
    external_ids,
    fine_tuned_model,
    held_out_data,
    latest_training_run,
    training_params,
)
from curator.ui.context import Context, bind, job_click, require_admin
from curator.ui.progress_bar import BarProgress

# short headers: three tables share the page's width (rank, passage id, ✓ on a relevant
# passage, the fine-tuned model's move against the base model, the passage's text)
RANKING_COLUMNS = ["#", "id", "rel", "vs base", "passage"]
RANKING_WIDTHS = ["7%", "22%", "10%", "13%", "48%"]
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


def held_out_note(queries: int | None, paired: PairedComparison | None = None) -> str:
    """Markdown: how many held-out queries the metrics come from (a warning under
    ``FEW_HELD_OUT``) and, when a fine-tuned model was evaluated, its per-query
    win/tie/loss count against the base model with the bootstrap interval."""
    if queries is None:
        return ""
    text = f"Metrics from **{queries} held-out queries**."
    if queries < FEW_HELD_OUT:
        text += (
            f" **Warning: fewer than {FEW_HELD_OUT}.** Differences between the systems on so"
            " few queries are mostly noise; judge more queries before trusting them."
        )
    if paired is not None:
        text += "\n\n" + paired_markdown(paired)
    return text


def paired_markdown(paired: PairedComparison) -> str:
    """The fine-tuned vs base comparison as Markdown (numbers only, nothing to escape)."""
    verdict = (
        "the fine-tuned model is better"
        if paired.low > 0
        else "the fine-tuned model is worse"
        if paired.high < 0
        else "no difference shown: the interval includes 0"
    )
    return (
        f"**Fine-tuned vs base, per query (nDCG@10):** **{paired.wins} wins, {paired.ties} "
        f"ties, {paired.losses} losses** of {paired.queries}; mean difference "
        f"{paired.mean_diff:+.3f}, paired bootstrap 95% interval "
        f"[{paired.low:+.3f}, {paired.high:+.3f}]: {verdict}."
    )


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
    note = held_out_note(latest.eval_queries, latest.paired)
    return status, loss_frame(latest.loss_curve), bars, table, note


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


def fine_tune(
    ctx: Context,
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
    """Train and evaluate as a job (admins only), yielding the page's values as it goes:
    status, loss curve, then bars, metrics, held-out note and the held-out picker's
    choices; the progress bar counts training steps with an ETA."""
    require_admin(ctx, request, "fine-tuning")
    bar = BarProgress(progress, "steps")
    from curator.ui.jobs_panel import training_job_events

    # the fine-tune runs as a job in a worker process (curator.worker)
    params = training_params(policy, loss, epochs, batch, lr, max_seq, negatives)
    for event in training_job_events(ctx.database, ctx.project, ctx.data_dir, params):
        if "error" in event:
            raise gr.Error(event["error"])
        if "total" in event:
            bar.update(event["step"], event["total"], "fine-tune")
        if "report" not in event:
            yield (event["status"], loss_frame(event["curve"]), *(gr.skip(),) * 4)
            continue
        report = event["report"]
        metrics, bar_data = metrics_frames(report)
        note = held_out_note(report.queries, report.paired)
        choices = gr.update(choices=held_out_choices(ctx.database, ctx.project))
        yield (event["status"], loss_frame(event["curve"]), bar_data, metrics, note, choices)


def latest(ctx: Context) -> tuple:
    """The latest stored run's values (on page load and after a run)."""
    return latest_run_view(ctx.database, ctx.project)


def picker_choices(ctx: Context):
    """The held-out picker's choices (none before any query is judged)."""
    try:
        return gr.update(choices=held_out_choices(ctx.database, ctx.project))
    except (LookupError, ValueError):
        return gr.update(choices=[])


def compare(ctx: Context, typed: str, picked: str | None, request: gr.Request):
    """The side-by-side view for a typed or picked query (admins only)."""
    require_admin(ctx, request, "the model comparison")
    return side_by_side(ctx.database, ctx.project, ctx.data_dir, typed, picked)


INTRO = (
    "Fine-tune the base model (all-MiniLM-L6-v2) on the curated queries; about a fifth of "
    "the judged seed passages are held out (stored split, seed 13) and BM25, the base "
    "model, the fine-tuned model and the hybrid RRF(BM25, fine-tuned) are compared on "
    "them, with a per-query win/tie/loss count of fine-tuned vs base. Defaults finish in "
    "minutes on a CPU for a few hundred queries; on a GPU raise the batch size. The same "
    "runs from the command line: `curator train` and `curator eval`."
)


def _settings_row() -> list:
    """The training settings' fields, in ``fine_tune``'s order."""
    with gr.Row():
        return [
            gr.Dropdown(
                ["none", "high_confidence", "all"], value="none", label="Unreviewed queries"
            ),
            gr.Dropdown(["mnrl", "cached_mnrl", "gist", "margin_mse"], value="mnrl", label="Loss"),
            gr.Number(2, label="Epochs", minimum=0.1),
            gr.Number(32, label="Batch size", precision=0, minimum=2),
            gr.Number(5e-5, label="Learning rate"),
            gr.Number(256, label="Max tokens", precision=0, minimum=16),
            gr.Number(1, label="Hard negatives per row", precision=0, minimum=0),
        ]


def _results() -> list:
    """Status, loss curve, nDCG@10 bars, metrics table, held-out note."""
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
    return [status, curve, bars, table, note]


def _side_by_side_section(ctx: Context) -> gr.Dropdown:
    """The side-by-side view; returns the held-out picker (a run refreshes its choices)."""
    gr.Markdown("### Side by side: the top 10 of each system")
    with gr.Row():
        typed = gr.Textbox(label="Type a query", scale=2)
        picked = gr.Dropdown([], label="or pick a held-out query", scale=2)
        button = gr.Button("Compare", elem_id="compare-button")
    message = gr.Textbox(label="", show_label=False, elem_id="compare-message")
    with gr.Row():
        columns = [
            gr.Dataframe(
                headers=RANKING_COLUMNS,
                label=name,
                wrap=True,
                column_widths=RANKING_WIDTHS,
            )
            for name in ("BM25", "base model", "fine-tuned")
        ]
    button.click(bind(compare, ctx), [typed, picked], [message, *columns], api_name="compare")
    picked.focus(bind(picker_choices, ctx), None, picked)
    return picked


def build_training_tab(ctx: Context, app: gr.Blocks):
    """The Fine-tune page's components and events (call inside ``gr.Tab``); a reload
    shows the latest stored run. Returns the Fine-tune click's event, for chaining (the
    caller refreshes the stage table after it)."""
    gr.Markdown(INTRO)
    settings = _settings_row()
    start = gr.Button("Fine-tune", variant="primary", elem_id="finetune-button")
    results = _results()
    picked = _side_by_side_section(ctx)
    app.load(bind(latest, ctx), outputs=results)
    return job_click(start, fine_tune, ctx, settings, [*results, picked], "fine_tune")
