"""Handlers of the Pipeline tab (ingest, generate, mine, rerank, the guard's histogram):
module-level functions over plain values, testable without a browser.

Text from the corpus goes into Dataframe cells and Textboxes, which render it as text,
never as HTML. Values that go into Markdown are escaped.
"""

from __future__ import annotations

import html

from curator.services import Database, app_stages
from curator.services.errors import StageRefused
from curator.services.passages import latest_generated_queries
from curator.ui.results import refusal_markdown, result_markdown, stage_markdown

QUERY_COLUMNS = ["passage", "task", "query", "status", "model"]
QUERY_WIDTHS = ["16%", "26%", "38%", "8%", "12%"]
DEMO_SAMPLE = 40
DEMO_RERANK_TOP_K = 10


def run_generation(
    database: Database,
    project: str,
    data_dir,
    model: str,
    sample: float | None,
    queries_per_passage: float,
    best_of: float,
    progress=None,
) -> str:
    """Generate queries from the app's values; returns a Markdown summary (or the
    refusal, escaped). ``sample`` empty or 0 means every passage of the project."""
    return stage_markdown(
        "generate",
        app_stages.generate,
        database,
        project,
        data_dir,
        model=model,
        sample=sample,
        queries_per_passage=queries_per_passage,
        best_of=best_of,
        progress=progress,
    )


def generated_queries_table(database: Database, project: str, limit: int = 100) -> list[list]:
    """The latest generated queries with their seed passage's title (newest first)."""
    return [
        [
            f"{r.passage} · {r.title}" if r.title else r.passage,
            r.task,
            r.query or f"({r.error})",
            r.status,
            r.model,
        ]
        for r in latest_generated_queries(database, project, limit)
    ]


def run_mining(
    database: Database,
    project: str,
    data_dir,
    top_n: float,
    negatives: float,
    relative_margin: float,
    progress=None,
    guide=None,
    margin: float | None = None,
) -> str:
    """Mine candidates from the app's values; returns a Markdown summary with the guard's
    effect. ``relative_margin`` and ``margin`` (absolute) 0 or empty turn that rule off."""
    return stage_markdown(
        "mine",
        app_stages.mine,
        database,
        project,
        data_dir,
        top_n=top_n,
        negatives=negatives,
        relative_margin=relative_margin,
        margin=margin,
        progress=progress,
        guide=guide,
    )


def run_reranking(
    database: Database,
    project: str,
    data_dir,
    model: str,
    methods: list[str],
    top_k: float,
    k: float,
    progress=None,
) -> str:
    """Rerank mined queries from the app's values; returns a Markdown summary (or the
    refusal)."""
    return stage_markdown(
        "rerank",
        app_stages.rerank,
        database,
        project,
        data_dir,
        model=model,
        methods=methods,
        top_k=top_k,
        k=k,
        progress=progress,
    )


HISTOGRAM_BINS = 40
GUARD_AXES = ("score / positive", "score - positive")
KEPT_COLOR, DISCARDED_COLOR = "#4c78a8", "#e45756"


def guard_diagnostics(
    database: Database,
    project: str,
    relative_margin: float | None,
    margin: float | None = None,
    axis: str = GUARD_AXES[0],
    bins: int = HISTOGRAM_BINS,
) -> tuple[dict | None, str]:
    """What the false-negative guard would discard, for tuning it by looking.

    Returns a Vega-Lite histogram (a plain dict; the app hands it to ``gr.Plot``) of the
    mined candidates' guide scores relative to their seed passage's (``axis``: the ratio,
    which the relative margin cuts at ``relative_margin``, or the difference, which the
    absolute margin cuts at ``-margin``), with that cut drawn as a vertical line and bars
    past it in red; and a Markdown summary with the number of candidates the whole guard
    (every rule together, as ``curator diagnose`` counts them) discards. ``relative_margin``
    or ``margin`` 0 or empty turns that rule off. ``(None, message)`` when nothing is mined.
    """
    from curator.pipeline.negatives import NegativeFilter
    from curator.services.mine import mining_diagnostics

    try:
        flt = NegativeFilter(
            relative_margin=float(relative_margin) if relative_margin else None,
            margin=float(margin) if margin else None,
        )
        diagnostics = mining_diagnostics(database, project, flt)
    except (ValueError, LookupError) as exc:
        return None, f"**Cannot diagnose:** {html.escape(str(exc))}"
    if not diagnostics.queries:
        return None, "No mined queries yet: generate and mine first."
    ratio = axis != GUARD_AXES[1]
    if ratio:
        values = diagnostics.relative_scores
        cut = flt.relative_margin if flt.relative_margin is not None else 1.0
        rule = f"relative margin {cut:.2f}" if flt.relative_margin is not None else "GISTEmbed rule"
    else:
        values = diagnostics.score_gaps
        cut = -flt.margin if flt.margin is not None else 0.0
        rule = f"margin {flt.margin:.2f}" if flt.margin is not None else "GISTEmbed rule"
    discarded, judged = diagnostics.discarded, diagnostics.in_window
    share = f" ({discarded / judged:.0%})" if judged else ""
    reasons = ", ".join(f"{n} by {r}" for r, n in sorted(diagnostics.dropped.items()))
    title = f"The guard discards {discarded:,} of {judged:,} candidates{share}"
    summary = (
        f"**{html.escape(title)}** over {diagnostics.queries:,} mined queries "
        f"(dropped: {html.escape(reasons or 'none')}); "
        f"{diagnostics.queries_without_negative:,} queries are left without an admissible "
        f"negative. The line is the {html.escape(rule)}; candidates right of it (red) are "
        "discarded by that rule."
    )
    if ratio and diagnostics.queries_with_weak_positive:
        summary += (
            f" {diagnostics.queries_with_weak_positive:,} queries whose seed the guide scores "
            "<= 0 (suspect queries) have no ratio and are not in the histogram."
        )
    spec = _histogram_spec(
        values,
        cut,
        bins,
        title=title,
        subtitle=f"line: {rule}",
        x_title="candidate guide score / seed passage's score"
        if ratio
        else "candidate guide score - seed passage's score",
    )
    return spec, summary


def _histogram_spec(
    values: list[float], cut: float, bins: int, *, title: str, subtitle: str, x_title: str
) -> dict:
    """A Vega-Lite layered chart: ``values`` in ``bins`` bins, one edge exactly at ``cut``
    (so each bar is wholly on one side of it), bars past ``cut`` red, a rule at ``cut``."""
    from curator.services.mine import guard_histogram

    rows = [
        {
            "start": b.start,
            "end": b.end,
            "count": b.count,
            "side": "discarded" if b.discarded else "kept",
        }
        for b in guard_histogram(values, cut, bins)
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": title, "subtitle": subtitle},
        "width": 640,
        "height": 240,
        "layer": [
            {
                "data": {"values": rows},
                "mark": {"type": "bar", "tooltip": True},
                "encoding": {
                    "x": {
                        "field": "start",
                        "type": "quantitative",
                        "bin": {"binned": True},
                        "title": x_title,
                    },
                    "x2": {"field": "end"},
                    "y": {"field": "count", "type": "quantitative", "title": "candidates"},
                    "color": {
                        "field": "side",
                        "type": "nominal",
                        "title": "",
                        "scale": {
                            "domain": ["kept", "discarded"],
                            "range": [KEPT_COLOR, DISCARDED_COLOR],
                        },
                    },
                },
            },
            {
                "data": {"values": [{"cut": cut}]},
                "mark": {"type": "rule", "color": "black", "strokeWidth": 2, "strokeDash": [6, 3]},
                "encoding": {"x": {"field": "cut", "type": "quantitative"}},
            },
        ],
    }


INGEST_FORMATS = ("auto", "beir", "jsonl", "csv", "tsv", "parquet", "folder")
INGEST_ERROR_COLUMNS = ["file", "line", "field", "error"]


def run_ingest(
    database: Database,
    project: str,
    data_dir,
    upload,
    server_path: str,
    *,
    allow_server_path: bool = True,
    progress=None,
    **options,
) -> tuple[str, list[list]]:
    """Ingest an uploaded file (kept under ``<data dir>/uploads/``) or a path on the server,
    with the options of ``curator ingest`` (``options``: those of
    :func:`curator.services.app_stages.ingest` by name, e.g. ``fmt``, ``on_error``);
    returns (a Markdown summary, escaped; the errors as [file, line, field, error] rows,
    which Dataframe cells show as text).

    ``allow_server_path=False`` (the app behind a login) refuses server paths, so an
    annotator cannot read the server's files into the corpus.
    """
    from curator.ui.jobs_panel import ingest_params

    params, refusal = ingest_params(
        data_dir, upload, server_path, allow_server_path=allow_server_path, **options
    )
    if params is None:
        return refusal, []
    try:
        result = app_stages.ingest(database, project, data_dir, progress=progress, **params)
    except StageRefused as refused:
        return refusal_markdown(refused.title, refused.reason), refused.detail.get("errors", [])
    return result_markdown("ingest", result), result["errors"]
