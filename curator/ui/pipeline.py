"""The Pipeline tab: ingest, generate, mine (with the false-negative guard's histogram)
and rerank. ``build_pipeline_tab`` creates the components and wires them to the
module-level handlers here, which adapt ``curator.ui.handlers`` to Gradio (progress bar
with an ETA, the guard plot)."""

from __future__ import annotations

import json

import gradio as gr
from gradio.components.plot import PlotData

from curator.services.rerank import RerankOptions
from curator.ui.context import Context, bind, job_click, require_admin, text_table
from curator.ui.handlers import (
    DEMO_RERANK_TOP_K,
    DEMO_SAMPLE,
    GUARD_AXES,
    INGEST_ERROR_COLUMNS,
    INGEST_FORMATS,
    QUERY_COLUMNS,
    QUERY_WIDTHS,
    generated_queries_table,
    guard_diagnostics,
)
from curator.ui.jobs_panel import ingest_params, run_as_job
from curator.ui.progress_bar import BarProgress

INGEST_HELP = """\
Upload a corpus file (BEIR `corpus.jsonl`, JSONL, CSV, TSV or Parquet; uploads are kept
under the data folder's `uploads/`) or give a file or folder on the server, as with
`curator ingest`. Re-ingesting adds nothing. With *abort* a bad record stores nothing from
the file; with *skip* the good records are stored and the bad ones listed below (file,
line, field).
"""

GUARD_HELP = """\
How the false-negative guard treats the mined candidates: each candidate's guide score
relative to its seed passage's. Move the margins to see what they would discard; *Mine*
uses the same settings for the queries it mines next.
"""


GENERATE_HELP = f"""\
The LLM writes a retrieval task and a query for each passage (FRet step 1). The embedded
model needs about 1 s per passage on 2 cores, so the app starts with a sample of
{DEMO_SAMPLE} passages. For the whole corpus, clear *Sample* (or set it to 0), or run
`curator generate --all` in a terminal, which shows a progress bar with an ETA. Runs resume:
passages already done are skipped.
"""


MINE_HELP = """\
The guide model (the packaged all-MiniLM-L6-v2) retrieves the top-N passages for each
generated query, BM25 scores them alongside, the seed passage becomes the provisional
positive and the hardest candidates that pass the false-negative guard become proposed
negatives. The first run encodes the corpus (about a minute for 1,000 passages on 2 cores);
later runs reuse the cached embeddings. `curator diagnose` prints the guard's histogram.
"""


RERANK_HELP = f"""\
The LLM scores each mined query's top candidates by query likelihood (ql: how likely the
query is given the passage) and relevance classification (rc: yes or no), and the
rankings are fused with the guide's by Reciprocal Rank Fusion. The top fused passage
becomes the proposed positive, often not the seed. The embedded model needs roughly
0.2-0.4 s per candidate on 2 cores, so the app scores the top {DEMO_RERANK_TOP_K}; use
`curator rerank --top-k 20` for Gecko's setting on the whole set.
"""


def as_job(ctx: Context, kind: str, params: dict, progress, unit: str = "steps"):
    """Run ``kind`` as a job in a worker process (``curator.worker``) and wait for it; the
    bar shows the waiting position, then the job's progress with an ETA. Returns (the
    finished job or None when refused, its Markdown)."""
    bar = BarProgress(progress, unit)

    def report(done, total, desc):
        bar.update(done or 0, total, desc)

    return run_as_job(ctx.database, ctx.project, ctx.data_dir, kind, params, report)


def generate(
    ctx: Context,
    model,
    sample,
    per_passage,
    best_of,
    request: gr.Request,
    progress=gr.Progress(),  # noqa: B008
):
    """Generate queries as a job (admins only); the bar counts passages with an ETA."""
    model = require_admin(ctx, request, "generation", model)
    params = {"model": model, "sample": sample, "queries_per_passage": per_passage}
    params["best_of"] = best_of
    return as_job(ctx, "generate", params, progress, "passages")[1]


def queries(ctx: Context) -> list[list]:
    """The "Latest generated queries" table."""
    return generated_queries_table(ctx.database, ctx.project)


def mine(
    ctx: Context,
    top_n,
    negatives,
    relative_margin,
    margin,
    request: gr.Request,
    progress=gr.Progress(),  # noqa: B008
):
    """Mine candidates as a job (admins only); the bar counts what the service reports."""
    require_admin(ctx, request, "mining")
    params = {"top_n": top_n, "negatives": negatives, "relative_margin": relative_margin}
    params["margin"] = margin
    return as_job(ctx, "mine", params, progress, "queries")[1]


def diagnostics(ctx: Context, relative_margin, margin, axis):
    """(the guard's histogram for ``gr.Plot``, its summary)."""
    spec, text = guard_diagnostics(ctx.database, ctx.project, relative_margin, margin, axis)
    plot = None if spec is None else PlotData(type="altair", plot=json.dumps(spec))
    return plot, text


def rerank(ctx: Context, model, methods, top_k, k, request: gr.Request, progress=gr.Progress()):  # noqa: B008
    """Rerank as a job (admins only), with the LLM settings the CLI uses; the bar counts
    pairs."""
    model = require_admin(ctx, request, "reranking", model)
    # no method ticked: the service's default methods
    methods = list(methods or []) or list(RerankOptions().methods)
    params = {"model": model, "methods": methods, "top_k": top_k, "k": k}
    return as_job(ctx, "rerank", params, progress, "pairs")[1]


def ingest(
    ctx: Context,
    upload,
    path,
    fmt,
    id_field,
    title_field,
    text_field,
    chunk,
    words,
    overlap,
    on_error,
    request: gr.Request,
    progress=gr.Progress(),  # noqa: B008
):
    """Ingest an upload or a server path (refused behind a login) as a job; the bar counts
    records. Admins only. Returns (Markdown, the bad records' rows)."""
    require_admin(ctx, request, "ingest")
    params, refusal = ingest_params(
        ctx.data_dir,
        upload,
        path,
        allow_server_path=not ctx.login,
        fmt=fmt,
        id_field=id_field,
        title_field=title_field,
        text_field=text_field,
        chunk=chunk,
        chunk_words=words,
        chunk_overlap=overlap,
        on_error=on_error,
    )
    if params is None:
        return refusal, []
    job, text = as_job(ctx, "ingest", params, progress, "records")
    return text, (job.result.get("errors", []) if job is not None else [])


def _ingest_section(ctx: Context) -> dict:
    """Step 0's components."""
    gr.Markdown("### 0 · Ingest a corpus")
    gr.Markdown(INGEST_HELP)
    with gr.Row():
        upload = gr.File(
            label="Corpus file",
            elem_id="corpus-upload",
            file_types=[".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet"],
            type="filepath",
            scale=2,
        )
        with gr.Column(scale=2):
            server_path = gr.Textbox(
                label="...or a file or folder on the server",
                placeholder="off with --login" if ctx.login else "/path/to/corpus.jsonl",
                interactive=not ctx.login,
            )
            fmt = gr.Dropdown(list(INGEST_FORMATS), value="auto", label="Format")
    with gr.Row():
        id_field = gr.Textbox(label="Id field (empty: _id, else id)", value="")
        title_field = gr.Textbox(label="Title field (empty: none)", value="title")
        text_field = gr.Textbox(label="Text field", value="text")
    with gr.Row():
        chunk = gr.Checkbox(label="Chunk into passages", value=False)
        words = gr.Number(label="Words per passage", value=100, precision=0)
        overlap = gr.Number(label="Overlap (words)", value=20, precision=0)
        on_error = gr.Radio(["abort", "skip"], value="abort", label="On a bad record")
    button = gr.Button("Ingest", variant="primary")
    result = gr.Markdown(elem_id="ingest-result", elem_classes=["job-result"])
    errors = text_table(INGEST_ERROR_COLUMNS, label="Errors (file, line, field)")
    inputs = [upload, server_path, fmt, id_field, title_field, text_field, chunk, words]
    event = job_click(button, ingest, ctx, [*inputs, overlap, on_error], [result, errors], "ingest")
    return {"ingested": event}


def _generate_section(ctx: Context, app: gr.Blocks) -> dict:
    """Step 1's components."""
    gr.Markdown("### 1 · Generate queries")
    gr.Markdown(GENERATE_HELP)
    with gr.Row():
        model = gr.Textbox(label="LLM (litellm model string)", value="local/gemma3-270m", scale=3)
        sample = gr.Number(
            label="Sample (passages; 0 = all)", value=DEMO_SAMPLE, precision=0, minimum=0
        )
        per_passage = gr.Number(label="Queries per passage", value=1, precision=0, minimum=1)
        best_of = gr.Number(label="Best of (QL choice)", value=1, precision=0, minimum=1)
    button = gr.Button("Generate", variant="primary")
    result = gr.Markdown(elem_id="generate-result", elem_classes=["job-result"])
    generated = text_table(
        QUERY_COLUMNS,
        widths=QUERY_WIDTHS,
        label="Latest generated queries",
        elem_id="queries-table",
    )
    app.load(bind(queries, ctx), outputs=generated)
    inputs = [model, sample, per_passage, best_of]
    event = job_click(button, generate, ctx, inputs, result, "generate")
    event = event.then(bind(queries, ctx), outputs=generated)
    return {"generated": event}


def _mine_section(ctx: Context, app: gr.Blocks) -> dict:
    """Step 2's components and the guard's histogram."""
    gr.Markdown("### 2 · Mine candidates")
    gr.Markdown(MINE_HELP)
    with gr.Row():
        top_n = gr.Number(label="Candidates per query (top N)", value=30, precision=0, minimum=1)
        negatives = gr.Number(label="Hard negatives per query", value=1, precision=0, minimum=0)
    with gr.Row():
        relative_margin = gr.Slider(
            0,
            1,
            value=0.95,
            step=0.01,
            label="Relative margin (negative score <= margin x positive; 0 = off)",
            elem_id="relative-margin",
        )
        margin = gr.Slider(
            0,
            0.5,
            value=0,
            step=0.01,
            label="Absolute margin (negative score <= positive - margin; 0 = off)",
        )
    button = gr.Button("Mine", variant="primary")
    result = gr.Markdown(elem_id="mine-result", elem_classes=["job-result"])
    gr.Markdown("#### False-negative guard")
    gr.Markdown(GUARD_HELP)
    axis = gr.Radio(list(GUARD_AXES), value=GUARD_AXES[0], label="Histogram of")
    plot = gr.Plot(label="Mined candidates", elem_id="guard-plot")
    summary = gr.Markdown(elem_id="guard-summary")
    guard = [relative_margin, margin, axis]
    event = job_click(
        button, mine, ctx, [top_n, negatives, relative_margin, margin], result, "mine"
    )
    event.then(bind(diagnostics, ctx), inputs=guard, outputs=[plot, summary])
    gr.on(
        triggers=[app.load, relative_margin.change, margin.change, axis.change],
        fn=bind(diagnostics, ctx),
        inputs=guard,
        outputs=[plot, summary],
        trigger_mode="always_last",
        show_progress="minimal",
    )
    return {"mined": event}


def _rerank_section(ctx: Context) -> dict:
    """Step 3's components."""
    gr.Markdown("### 3 · Rerank with the LLM")
    gr.Markdown(RERANK_HELP)
    with gr.Row():
        model = gr.Textbox(label="LLM (litellm model string)", value="local/gemma3-270m", scale=2)
        methods = gr.CheckboxGroup(
            ["ql", "rc", "guide"], value=["ql", "guide"], label="Methods to fuse"
        )
        top_k = gr.Number(
            label="Candidates per query to score", value=DEMO_RERANK_TOP_K, precision=0, minimum=1
        )
        rrf_k = gr.Number(label="RRF k", value=0, minimum=0)
    button = gr.Button("Rerank", variant="primary")
    result = gr.Markdown(elem_id="rerank-result", elem_classes=["job-result"])
    event = job_click(button, rerank, ctx, [model, methods, top_k, rrf_k], result, "rerank")
    return {"reranked": event}


def build_pipeline_tab(ctx: Context, app: gr.Blocks) -> dict:
    """The Pipeline tab (call inside ``gr.Tab``); returns its jobs' events by name
    (``ingested``, ``generated``, ``mined``, ``reranked``) for the caller to chain."""
    return {
        **_ingest_section(ctx),
        **_generate_section(ctx, app),
        **_mine_section(ctx, app),
        **_rerank_section(ctx),
    }
