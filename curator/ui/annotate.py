"""The Annotate tab: one card per query, the action bar, the queue. ``build_annotate_tab``
creates the components and wires them to the module-level handlers here, which call
``curator.ui.annotation`` (plain values, no gradio) and name the annotator (with a
login, always the logged-in user)."""

from __future__ import annotations

import gradio as gr

from curator.services.annotate import QUEUE_FILTERS, REJECT_REASONS
from curator.ui import annotation
from curator.ui.context import Context, bind
from curator.ui.page import MARKS_JS

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
| **q** | fix the query: its field, text selected (**Enter** saves, **Esc** leaves it) |

Fixing a bad query is the most useful thing done here: on SciFact, 100 fixed queries
alone gave a gain over the base model that 367 unreviewed machine queries did not
(README, *With a person's fixes*).
**edit** on a row makes its text editable in place (for a passage that needs a fix, e.g.
a cut sentence); the corrected text is saved with your next accept or save, for that
passage in this judgment only (training and export use it), and the original stays.
The passage must be marked (pos, neg or false neg) for its edit to be kept.
A false negative is a passage that answers the query but was proposed as a negative.
"""

ACTIONS = ("accept", "override", "reject", "skip", "undo")


# annotation events are short database reads and one append each: many annotators at once
# (the heavy pipeline events run as jobs, one at a time, in curator.services.jobs)
ANNOTATE_CONCURRENCY = 32


#: a control inside a bar of buttons: no frame, its label hidden (kept for screen readers)
INLINE = {"show_label": False, "container": False}


def annotator_name(ctx: Context, typed: str, request: gr.Request | None) -> str:
    """The annotator of an action: with a login, always the logged-in user."""
    if ctx.login and request is not None and request.username:
        return request.username
    return typed


def page_values(page: annotation.AnnotationPage) -> tuple:
    """The tab's component values for ``page``: the card is rebuilt for each query, so no
    mark outlives it."""
    return (
        page.query_id,
        page.header,
        page.position,
        page.query,
        annotation.card_html(page),
        page.message,
    )


def show_card(ctx: Context, annotator: str, queue: str, request: gr.Request):
    """The next card of ``queue`` (on load, on *Load next*, on a queue change)."""
    name = annotator_name(ctx, annotator, request)
    return page_values(annotation.show(ctx.database, ctx.project, name, queue))


def logged_in(ctx: Context, request: gr.Request) -> str:
    """The annotator field's value: the logged-in user's name."""
    return annotator_name(ctx, "annotator", request)


def judge(
    ctx: Context,
    action: str,
    marks: str,
    annotator: str,
    queue: str,
    query_id,
    edited_query: str,
    reason: str,
    request: gr.Request,
):
    """Apply ``action`` with the card's marks (and passage edits) and show the next card."""
    page = annotation.act(
        ctx.database,
        ctx.project,
        annotator_name(ctx, annotator, request),
        queue,
        query_id,
        action,
        edited_query=edited_query,
        marks=marks,
        reject_reason=reason,
    )
    return page_values(page)


def _action_bar() -> dict:
    """The sticky bar: one button per action, the reject reason."""
    with gr.Row(elem_id="annotate-bar"):
        buttons = {
            "accept": gr.Button("Accept (a)", variant="primary", elem_id="accept-button"),
            "override": gr.Button("Save marks (Enter)", elem_id="override-button"),
            "reject": gr.Button("Reject (r)", variant="stop", elem_id="reject-button"),
        }
        reason = gr.Dropdown(
            list(REJECT_REASONS),
            value="unanswerable",
            label="Reason to reject",
            min_width=120,
            elem_id="reject-reason",
            **INLINE,
        )
        buttons["skip"] = gr.Button("Skip (s)", elem_id="skip-button")
        buttons["undo"] = gr.Button("Undo (u)", elem_id="undo-button")
    return {"buttons": buttons, "reason": reason}


def _card_header(ctx: Context) -> dict:
    """Header, queue position, annotator, queue and *Load next*."""
    with gr.Row(elem_id="annotate-top", equal_height=True):
        header = gr.Markdown(elem_id="card-header", scale=3)
        position = gr.Markdown(elem_id="queue-position", scale=2)
        annotator = gr.Textbox(
            label="Annotator",
            value="annotator",
            placeholder="annotator name",
            interactive=not ctx.login,
            min_width=120,
            scale=0,
            elem_id="annotator",
            **INLINE,
        )
        queue = gr.Dropdown(
            list(QUEUE_FILTERS),
            value="not_judged",
            label="Queue",
            min_width=150,
            scale=0,
            elem_id="queue",
            **INLINE,
        )
        load = gr.Button("Load next", size="sm", scale=0, elem_id="load-button")
    return {
        "header": header,
        "position": position,
        "annotator": annotator,
        "queue": queue,
        "load": load,
    }


def build_annotate_tab(ctx: Context, app: gr.Blocks) -> list:
    """The Annotate tab (call inside ``gr.Tab``); returns the judgment events (for the
    caller to refresh the stage table after each)."""
    current = gr.State(None)
    marks = gr.Textbox(visible=False)  # filled from the card by MARKS_JS
    bar = _action_bar()
    top = _card_header(ctx)
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
    outputs = [current, top["header"], top["position"], query_box, card, message]
    if ctx.login:
        app.load(bind(logged_in, ctx), outputs=top["annotator"])
    gr.on(
        triggers=[app.load, top["load"].click, top["queue"].change, top["annotator"].submit],
        fn=bind(show_card, ctx),
        inputs=[top["annotator"], top["queue"]],
        outputs=outputs,
        api_name="show",
        concurrency_limit=ANNOTATE_CONCURRENCY,
    )
    inputs = [marks, top["annotator"], top["queue"], current, query_box, bar["reason"]]
    events = []
    for action in ACTIONS:
        triggers = [bar["buttons"][action].click]
        if action == "override":
            triggers.append(query_box.submit)
        events.append(
            gr.on(
                triggers=triggers,
                fn=bind(judge, ctx, action),
                inputs=inputs,
                outputs=outputs,
                js=MARKS_JS,
                api_name=action,
                trigger_mode="once",
                concurrency_limit=ANNOTATE_CONCURRENCY,
            )
        )
    return events
