"""The web app: ``build_ui`` wires components to the handlers in ``curator.ui.handlers``."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import gradio as gr
from gradio.components.plot import PlotData

from curator.progress import CallbackProgress
from curator.services.access import PermissionDenied, check_model, is_admin, require_admin
from curator.services.annotate import QUEUE_FILTERS, REJECT_REASONS
from curator.services.projects import require_project
from curator.ui import annotation, export_panel
from curator.ui.handlers import (
    DEMO_RERANK_TOP_K,
    DEMO_SAMPLE,
    GUARD_AXES,
    INGEST_ERROR_COLUMNS,
    INGEST_FORMATS,
    PASSAGE_COLUMNS,
    QUERY_COLUMNS,
    generated_queries_table,
    guard_diagnostics,
    overview_markdown,
    passage_for_row,
    passages_table,
    run_generation,
    run_ingest,
    run_mining,
    run_reranking,
)
from curator.ui.training import build_training_tab
from db import Database

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


ANNOTATE_HELP = """\
**The card.** Row 1 is the seed passage (the passage the query was written from), then
the passages the pipeline proposes (positive, negatives), then the other candidates by
fused rank. The marks are pre-filled with the proposal; change them and save to override.
Click a row's text to read it whole; click its mark to cycle pos, neg, false neg, none.

**Keys** (only on this tab, never while typing in a field; not with Ctrl, Alt or Cmd):

| key | does |
|---|---|
| **a** | accept the proposal as shown (plus rows marked false negative) |
| **1**-**9**, **0** | mark row 1-10 positive (again: unmark) |
| **Shift** + digit | mark that row negative |
| **f**, then a digit | mark that row a false negative (answers the query, was proposed negative) |
| **Enter** | save the marks (an override; marks equal to the proposal are stored as an accept) |
| **r** | reject with the reason chosen beside the button |
| **s** or **n** | skip to the next query |
| **u** | undo your last judgment (its query comes back) |

Fix the query text in its field before deciding; Enter there saves the marks too.
A false negative is a passage that answers the query but was proposed as a negative.
"""

SHORTCUTS = """
<script>
(() => {
  const LABELS = {positive: "pos", negative: "neg", false_negative: "false neg", "": "\u00b7"};
  const CYCLE = ["", "positive", "negative", "false_negative"];
  const BUTTONS = {a: "accept-button", r: "reject-button", s: "skip-button",
                   n: "skip-button", u: "undo-button"};
  let falseNegativeKey = 0;
  const card = () => document.querySelector("#annotate-card .cc-card");
  const shown = (el) => !!el && el.getClientRects().length > 0;
  const press = (id) => {
    const button = document.getElementById(id);
    if (shown(button)) button.click();
  };
  const setMark = (row, mark) => {
    row.dataset.mark = mark;
    const chip = row.querySelector(".cc-mark");
    if (chip) chip.textContent = LABELS[mark] || LABELS[""];
  };
  // the marks on the card, as the JSON the Override handler reads (curator.ui.annotation)
  window.curatorMarks = () => {
    const c = card();
    if (!c || !c.dataset.query) return "";
    const out = {query: Number(c.dataset.query), positive: [], negative: [], false_negative: []};
    c.querySelectorAll("tr[data-pid]").forEach((row) => {
      if (out[row.dataset.mark]) out[row.dataset.mark].push(row.dataset.pid);
    });
    return JSON.stringify(out);
  };
  document.addEventListener("click", (event) => {
    const chip = event.target.closest && event.target.closest(".cc-mark");
    if (chip) {
      const row = chip.closest("tr[data-pid]");
      const next = CYCLE[(CYCLE.indexOf(row.dataset.mark || "") + 1) % CYCLE.length];
      setMark(row, next);
      return;
    }
    const text = event.target.closest && event.target.closest(".cc-text");
    if (text) text.classList.toggle("cc-open");
  });
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(target && target.tagName);
    if (typing || (target && target.isContentEditable)) return;
    const c = card();
    if (!shown(c) && !shown(document.getElementById("accept-button"))) return;  // other tab
    const digit = /^(?:Digit|Numpad)(\\d)$/.exec(event.code || "");
    if (digit && c) {
      const row = c.querySelector(`tr[data-key="${digit[1]}"]`);
      event.preventDefault();
      if (!row) return;
      const fresh = Date.now() - falseNegativeKey < 3000;
      const mark = fresh ? "false_negative" : event.shiftKey ? "negative" : "positive";
      falseNegativeKey = 0;
      c.classList.remove("cc-fn-pending");
      setMark(row, row.dataset.mark === mark ? "" : mark);
      return;
    }
    if (event.key === "Enter") {
      event.preventDefault();
      press("override-button");
      return;
    }
    if (event.shiftKey) return;
    const key = (event.key || "").toLowerCase();
    if (key === "f" && c) {
      falseNegativeKey = Date.now();
      c.classList.add("cc-fn-pending");
      event.preventDefault();
      return;
    }
    if (BUTTONS[key]) {
      event.preventDefault();
      press(BUTTONS[key]);
    }
  }, true);
})();
</script>
"""

# the marks go to the handler from the card (the page's script reads them), never from
# components that outlive the card
MARKS_JS = (
    "(...args) => { args[0] = window.curatorMarks ? window.curatorMarks() : ''; return args; }"
)

CSS = """
#annotate-bar { position: sticky; top: 0; z-index: 20; background: var(--background-fill-primary);
  padding: 4px 0; }
#annotate-bar button { min-width: 0; }
#queue-position { text-align: right; }
#annotate-bar button { padding: 6px 10px; }
#annotate-message p, #card-header p { margin: 0; }
#annotate-card .cc-task { margin: 0 0 4px; }
#annotate-card .cc-scroll { max-height: calc(100vh - 330px); min-height: 300px; overflow-y: auto;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
#annotate-card table.cc-rows { width: 100%; border-collapse: collapse; table-layout: fixed;
  font-size: 14px; }
#annotate-card tr[data-pid] { border-bottom: 1px solid var(--border-color-primary); }
#annotate-card td { vertical-align: top; padding: 5px 6px; border: none; }
#annotate-card td.cc-key { width: 28px; font-weight: 700; text-align: center; color: #666; }
#annotate-card td.cc-markcell { width: 82px; }
#annotate-card .cc-mark { width: 76px; padding: 2px 0; border-radius: 4px; font-weight: 600;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-secondary);
  cursor: pointer; }
#annotate-card tr[data-mark="positive"] { background: rgba(46, 160, 67, 0.13); }
#annotate-card tr[data-mark="positive"] .cc-mark { background: #2ea043; color: white; }
#annotate-card tr[data-mark="negative"] { background: rgba(218, 54, 51, 0.09); }
#annotate-card tr[data-mark="negative"] .cc-mark { background: #da3633; color: white; }
#annotate-card tr[data-mark="false_negative"] { background: rgba(210, 153, 34, 0.15); }
#annotate-card tr[data-mark="false_negative"] .cc-mark { background: #bf8700; color: white; }
#annotate-card .cc-fn-pending .cc-key { color: #bf8700; }
#annotate-card .cc-meta { font-size: 12px; margin-bottom: 2px; }
#annotate-card .cc-pid { font-family: var(--font-mono); font-weight: 600; }
#annotate-card .cc-badge { border-radius: 3px; padding: 0 4px; font-size: 11px; }
#annotate-card .cc-seed { background: #0969da; color: white; }
#annotate-card .cc-proposed { background: #8250df; color: white; }
#annotate-card .cc-scores { color: var(--body-text-color-subdued); font-family: var(--font-mono); }
#annotate-card .cc-text { overflow-wrap: anywhere; display: -webkit-box; line-height: 1.35;
  -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden; cursor: pointer; }
#annotate-card .cc-text.cc-open { -webkit-line-clamp: unset; display: block;
  white-space: pre-wrap; }
.job-result { min-height: 64px; }
"""


FAILED_LOGIN_DELAY_S = 0.5
# annotation events are short database reads and one append each: many annotators at once
# (the heavy pipeline events keep Gradio's default of one at a time)
ANNOTATE_CONCURRENCY = 32


def _annotation_outputs(page: annotation.AnnotationPage) -> tuple:
    """The Annotate tab's component values for ``page``: the card is rebuilt for each
    query, so no mark outlives it."""
    return (
        page.query_id,
        page.header,
        page.position,
        page.query,
        annotation.card_html(page),
        page.message,
    )


def admin_guard(database: Database, project: str, *, login: bool):
    """The server-side check at the top of every admin handler: ``guard(request, action,
    model=None)`` raises ``gr.Error`` (a message, no internals) unless the logged-in caller
    may run ``action`` and ``model`` is on the project's allow-list. Without ``login``
    everyone may (one local user), models are still checked."""

    def guard(request: gr.Request | None, action: str, model: str | None = None) -> str | None:
        name = getattr(request, "username", None) if request is not None else None
        try:
            require_admin(database, name, action, login=login)
            return None if model is None else check_model(database, project, model)
        except PermissionDenied as error:
            raise gr.Error(str(error)) from None

    return guard


def build_ui(
    database: Database, project: str, data_dir: Path | str = "data", *, login: bool = False
) -> gr.Blocks:
    """The app's Blocks: overview and passages; the pipeline page (generation)."""
    data_dir = Path(data_dir)
    guard = admin_guard(database, project, login=login)
    overview = partial(overview_markdown, database, project)
    table = partial(passages_table, database, project)
    queries = partial(generated_queries_table, database, project)

    def select(rows, event: gr.SelectData) -> str:
        # Gradio fills ``event`` from the annotation, which a partial would hide
        return passage_for_row(database, project, rows, event.index)

    def generate(model, sample, per_passage, best_of, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        model = guard(request, "generation", model)

        def report(done, total, desc):
            progress((done, total) if total else None, desc=desc, unit="passages")

        return run_generation(
            database,
            project,
            data_dir,
            model,
            sample,
            per_passage,
            best_of,
            progress=CallbackProgress(report),
        )

    def mine(
        top_n,
        negatives,
        relative_margin,
        margin,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008
    ):
        guard(request, "mining")

        def report(done, total, desc):
            progress((done, total) if total else None, desc=desc)

        return run_mining(
            database,
            project,
            data_dir,
            top_n,
            negatives,
            relative_margin,
            progress=CallbackProgress(report),
            margin=margin,
        )

    def diagnostics(relative_margin, margin, axis):
        spec, text = guard_diagnostics(database, project, relative_margin, margin, axis)
        plot = None if spec is None else PlotData(type="altair", plot=json.dumps(spec))
        return plot, text

    def ingest(
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
        guard(request, "ingest")

        def report(done, total, desc):
            progress((done, total) if total else None, desc=desc)

        return run_ingest(
            database,
            project,
            data_dir,
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
            allow_server_path=not login,
            progress=CallbackProgress(report),
        )

    def rerank(model, methods, top_k, k, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        model = guard(request, "reranking", model)

        def report(done, total, desc):
            progress((done, total) if total else None, desc=desc, unit="pairs")

        return run_reranking(
            database, project, data_dir, model, methods, top_k, k, progress=CallbackProgress(report)
        )

    def who(annotator: str, request: gr.Request | None) -> str:
        # with login, judgments are always stored under the logged-in user
        if login and request is not None and request.username:
            return request.username
        return annotator

    def show(annotator, queue, request: gr.Request):
        name = who(annotator, request)
        return _annotation_outputs(annotation.show(database, project, name, queue))

    def logged_in(request: gr.Request):
        return who("annotator", request)

    def act(action):
        def handler(marks, annotator, queue, query_id, edited, reason, request: gr.Request):
            page = annotation.act(
                database,
                project,
                who(annotator, request),
                queue,
                query_id,
                action,
                edited_query=edited,
                marks=marks,
                reject_reason=reason,
            )
            return _annotation_outputs(page)

        return handler

    with gr.Blocks(title="curator") as app:
        gr.Markdown("### curator · embedding-data workbench")
        with gr.Accordion("Project status (counts per stage)", open=False):
            summary = gr.Markdown(elem_id="project-status")
        with gr.Tab("Passages"):
            with gr.Row():
                search = gr.Textbox(label="Search passages (id, title or text)", scale=4)
                page = gr.Number(label="Page", value=1, precision=0, minimum=1, scale=1)
            caption = gr.Markdown()
            passages = gr.Dataframe(
                headers=PASSAGE_COLUMNS,
                datatype=["str"] * 4,
                interactive=False,
                wrap=True,
                label="Passages (click a row to read it whole)",
            )
            detail = gr.Textbox(label="Passage", lines=12, interactive=False)
            refresh = gr.Button("Refresh")
        with gr.Tab("Annotate", elem_id="annotate-tab"):
            current = gr.State(None)
            marks = gr.Textbox(visible=False)  # filled from the card by MARKS_JS
            with gr.Row(elem_id="annotate-bar"):
                accept = gr.Button("Accept (a)", variant="primary", elem_id="accept-button")
                override = gr.Button("Save marks (Enter)", elem_id="override-button")
                reject = gr.Button("Reject (r)", variant="stop", elem_id="reject-button")
                reason = gr.Dropdown(
                    list(REJECT_REASONS),
                    value="unanswerable",
                    label="Reason to reject",
                    show_label=False,
                    container=False,
                    min_width=120,
                    elem_id="reject-reason",
                )
                skip = gr.Button("Skip (s)", elem_id="skip-button")
                undo = gr.Button("Undo (u)", elem_id="undo-button")
            with gr.Row(elem_id="annotate-top", equal_height=True):
                header = gr.Markdown(elem_id="card-header", scale=3)
                position = gr.Markdown(elem_id="queue-position", scale=2)
                annotator = gr.Textbox(
                    label="Annotator",
                    value="annotator",
                    show_label=False,
                    container=False,
                    placeholder="annotator name",
                    interactive=not login,
                    min_width=120,
                    scale=0,
                    elem_id="annotator",
                )
                queue = gr.Dropdown(
                    list(QUEUE_FILTERS),
                    value="not_judged",
                    label="Queue",
                    show_label=False,
                    container=False,
                    min_width=150,
                    scale=0,
                    elem_id="queue",
                )
                load = gr.Button("Load next", size="sm", scale=0, elem_id="load-button")
            message = gr.Markdown(elem_id="annotate-message")
            query_box = gr.Textbox(
                label="Query (edit to fix it; Enter here saves the marks)",
                interactive=True,
                container=False,
                elem_id="query-box",
            )
            card = gr.HTML(elem_id="annotate-card")
            with gr.Accordion("Keys and labels", open=False):
                gr.Markdown(ANNOTATE_HELP)
        with gr.Tab("Agreement"):
            agreement_summary = gr.Markdown()
            agreement_people = gr.Dataframe(
                headers=["annotator", "queries judged", "of them reranked", "LLM positive kept"],
                datatype=["str", "number", "number", "str"],
                interactive=False,
                label="Per annotator",
            )
            agreement_pairs = gr.Dataframe(
                headers=["annotator", "annotator", "Cohen's kappa", "shared queries"],
                datatype=["str", "str", "str", "number"],
                interactive=False,
                label="Per pair of annotators",
            )
            agreement_refresh = gr.Button("Refresh")
        with gr.Tab("Pipeline", visible=not login) as pipeline_tab:
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
                        placeholder="off with --login" if login else "/path/to/corpus.jsonl",
                        interactive=not login,
                    )
                    ingest_format = gr.Dropdown(list(INGEST_FORMATS), value="auto", label="Format")
            with gr.Row():
                id_field = gr.Textbox(label="Id field (empty: _id, else id)", value="")
                title_field = gr.Textbox(label="Title field (empty: none)", value="title")
                text_field = gr.Textbox(label="Text field", value="text")
            with gr.Row():
                chunk = gr.Checkbox(label="Chunk into passages", value=False)
                chunk_words = gr.Number(label="Words per passage", value=100, precision=0)
                chunk_overlap = gr.Number(label="Overlap (words)", value=20, precision=0)
                on_error = gr.Radio(["abort", "skip"], value="abort", label="On a bad record")
            ingest_button = gr.Button("Ingest", variant="primary")
            ingest_result = gr.Markdown(elem_id="ingest-result", elem_classes=["job-result"])
            ingest_errors = gr.Dataframe(
                headers=INGEST_ERROR_COLUMNS,
                datatype=["str"] * 4,
                interactive=False,
                wrap=True,
                label="Errors (file, line, field)",
            )
            gr.Markdown("### 1 · Generate queries")
            gr.Markdown(GENERATE_HELP)
            with gr.Row():
                model = gr.Textbox(
                    label="LLM (litellm model string)", value="local/gemma3-270m", scale=3
                )
                sample = gr.Number(
                    label="Sample (passages; 0 = all)", value=DEMO_SAMPLE, precision=0, minimum=0
                )
                per_passage = gr.Number(
                    label="Queries per passage", value=1, precision=0, minimum=1
                )
                best_of = gr.Number(label="Best of (QL choice)", value=1, precision=0, minimum=1)
            generate_button = gr.Button("Generate", variant="primary")
            generate_result = gr.Markdown(elem_id="generate-result", elem_classes=["job-result"])
            generated = gr.Dataframe(
                headers=QUERY_COLUMNS,
                datatype=["str"] * 5,
                interactive=False,
                wrap=True,
                label="Latest generated queries",
            )
            gr.Markdown("### 2 · Mine candidates")
            gr.Markdown(MINE_HELP)
            with gr.Row():
                top_n = gr.Number(
                    label="Candidates per query (top N)", value=30, precision=0, minimum=1
                )
                negatives = gr.Number(
                    label="Hard negatives per query", value=1, precision=0, minimum=0
                )
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
            mine_button = gr.Button("Mine", variant="primary")
            mine_result = gr.Markdown(elem_id="mine-result", elem_classes=["job-result"])
            gr.Markdown("#### False-negative guard")
            gr.Markdown(GUARD_HELP)
            guard_axis = gr.Radio(list(GUARD_AXES), value=GUARD_AXES[0], label="Histogram of")
            guard_plot = gr.Plot(label="Mined candidates", elem_id="guard-plot")
            guard_summary = gr.Markdown(elem_id="guard-summary")
            gr.Markdown("### 3 · Rerank with the LLM")
            gr.Markdown(RERANK_HELP)
            with gr.Row():
                rerank_model = gr.Textbox(
                    label="LLM (litellm model string)", value="local/gemma3-270m", scale=2
                )
                methods = gr.CheckboxGroup(
                    ["ql", "rc", "guide"], value=["ql", "guide"], label="Methods to fuse"
                )
                rerank_top_k = gr.Number(
                    label="Candidates per query to score",
                    value=DEMO_RERANK_TOP_K,
                    precision=0,
                    minimum=1,
                )
                rrf_k = gr.Number(label="RRF k", value=0, minimum=0)
            rerank_button = gr.Button("Rerank", variant="primary")
            rerank_result = gr.Markdown(elem_id="rerank-result", elem_classes=["job-result"])
        with gr.Tab("Fine-tune", visible=not login) as training_tab:
            fine_tuned, latest_run, latest_outputs = build_training_tab(
                database, project, data_dir, guard=guard
            )
        with gr.Tab("Export", visible=not login) as export_tab:
            gr.Markdown(export_panel.EXPORT_HELP)
            with gr.Row():
                export_format = gr.Dropdown(
                    export_panel.EXPORT_FORMATS, value="st-triplets", label="Format"
                )
                export_policy = gr.Dropdown(
                    export_panel.EXPORT_POLICIES, value="none", label="Policy"
                )
                export_negatives = gr.Number(
                    label="Negatives (n-tuples, MarginMSE)", value=3, precision=0, minimum=1
                )
            export_button = gr.Button("Export", variant="primary")
            export_result = gr.Markdown(elem_id="export-result", elem_classes=["job-result"])
            export_file = gr.File(label="Download (zip)", interactive=False)

        def export(fmt, policy, negatives, request: gr.Request):
            guard(request, "export")
            return export_panel.run_export(database, project, data_dir, fmt, policy, negatives)

        export_button.click(
            export,
            inputs=[export_format, export_policy, export_negatives],
            outputs=[export_result, export_file],
            api_name="export",
        )

        admin_tabs = [pipeline_tab, training_tab, export_tab]

        def tabs_for(request: gr.Request):
            # annotators see Passages, Annotate and Agreement; the handlers check again
            name = getattr(request, "username", None)
            shown = is_admin(database, name, login=login)
            return [gr.update(visible=shown) for _ in admin_tabs]

        if login:
            app.load(tabs_for, outputs=admin_tabs)
        app.load(overview, outputs=summary)
        app.load(latest_run, outputs=latest_outputs)  # a reload shows the last run
        fine_tuned.then(overview, outputs=summary)
        gr.on(
            triggers=[app.load, search.submit, page.submit, refresh.click],
            fn=table,
            inputs=[search, page],
            outputs=[passages, caption, page],
        )
        refresh.click(overview, outputs=summary)
        passages.select(select, inputs=passages, outputs=detail)
        app.load(queries, outputs=generated)
        generate_button.click(
            generate,
            inputs=[model, sample, per_passage, best_of],
            outputs=generate_result,
            api_name="generate",
        ).then(queries, outputs=generated).then(overview, outputs=summary)
        page_outputs = [current, header, position, query_box, card, message]
        agreement = partial(annotation.agreement_tables, database, project)
        gr.on(
            triggers=[app.load, agreement_refresh.click],
            fn=agreement,
            outputs=[agreement_summary, agreement_people, agreement_pairs],
        )
        if login:
            app.load(logged_in, outputs=annotator)
        gr.on(
            triggers=[app.load, load.click, queue.change, annotator.submit],
            fn=show,
            inputs=[annotator, queue],
            outputs=page_outputs,
            api_name="show",
            concurrency_limit=ANNOTATE_CONCURRENCY,
        )
        action_inputs = [marks, annotator, queue, current, query_box, reason]
        for triggers, action in (
            ([accept.click], "accept"),
            ([override.click, query_box.submit], "override"),
            ([reject.click], "reject"),
            ([skip.click], "skip"),
            ([undo.click], "undo"),
        ):
            gr.on(
                triggers=triggers,
                fn=act(action),
                inputs=action_inputs,
                outputs=page_outputs,
                js=MARKS_JS,
                api_name=action,
                trigger_mode="once",
                concurrency_limit=ANNOTATE_CONCURRENCY,
            ).then(overview, outputs=summary, concurrency_limit=ANNOTATE_CONCURRENCY)
        rerank_button.click(
            rerank,
            inputs=[rerank_model, methods, rerank_top_k, rrf_k],
            outputs=rerank_result,
            api_name="rerank",
        ).then(overview, outputs=summary)
        guard_inputs = [relative_margin, margin, guard_axis]
        mine_button.click(
            mine,
            inputs=[top_n, negatives, *guard_inputs[:2]],
            outputs=mine_result,
            api_name="mine",
        ).then(overview, outputs=summary).then(
            diagnostics, inputs=guard_inputs, outputs=[guard_plot, guard_summary]
        )
        gr.on(
            triggers=[app.load, relative_margin.change, margin.change, guard_axis.change],
            fn=diagnostics,
            inputs=guard_inputs,
            outputs=[guard_plot, guard_summary],
            trigger_mode="always_last",
            show_progress="minimal",
        )
        ingest_button.click(
            ingest,
            inputs=[
                upload,
                server_path,
                ingest_format,
                id_field,
                title_field,
                text_field,
                chunk,
                chunk_words,
                chunk_overlap,
                on_error,
            ],
            outputs=[ingest_result, ingest_errors],
            api_name="ingest",
        ).then(overview, outputs=summary).then(
            table, inputs=[search, page], outputs=[passages, caption, page]
        )
    return app


def launch(
    database: Database,
    project: str,
    *,
    data_dir: Path | str = "data",
    host: str = "127.0.0.1",
    port: int = 7860,
    login: bool = False,
) -> None:
    """Build the app for ``project`` and serve it until interrupted; with ``login``, only
    annotators with a password (``curator annotator add``) get in."""
    require_project(database, project)
    app = build_ui(database, project, data_dir, login=login)
    queued(app).launch(
        server_name=host,
        server_port=port,
        # exception text (paths, SQL) stays in the server log; gr.Error messages still show
        show_error=False,
        head=SHORTCUTS,
        css=CSS,
        auth=authenticator(database) if login else None,
        auth_message="curator: log in with your annotator account",
    )


def queued(app: gr.Blocks) -> gr.Blocks:
    """The app with Gradio's queue as ``curator serve`` runs it."""
    return app.queue()


def authenticator(database: Database, throttle=None):
    """Gradio's ``auth`` callable for ``--login``: an async function, so the scrypt check
    runs in a worker thread instead of blocking the server's event loop; unknown names
    cost the same check (a dummy hash); a name that failed repeatedly is locked out for a
    while (``LoginThrottle``), and every failure waits half a second before answering."""
    import asyncio

    from curator.services.auth import LoginThrottle, throttled_login

    throttle = throttle or LoginThrottle()

    async def authenticate(username: str, password: str) -> bool:
        ok = await asyncio.to_thread(throttled_login, database, throttle, username, password)
        if not ok:
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
        return ok

    return authenticate
