"""The Agreement tab: Krippendorff's alpha, Cohen's kappa per pair of annotators, and how
often each annotator kept the LLM's proposed positive."""

from __future__ import annotations

import gradio as gr

from curator.services.annotate import agreement_report
from curator.ui.context import Context, bind

PEOPLE_COLUMNS = ["annotator", "queries judged", "of them reranked", "LLM positive kept"]
PAIR_COLUMNS = ["annotator", "annotator", "Cohen's kappa", "shared queries"]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def agreement_tables(ctx: Context) -> tuple[str, list[list], list[list]]:
    """(summary Markdown, per-annotator rows, annotator-pair rows) for the Agreement tab.
    With fewer than two annotators the summary says a second one is needed."""
    report = agreement_report(ctx.database, ctx.project)
    summary = (
        f"Krippendorff's alpha (nominal; a judgment = reject or its set of positives): "
        f"**{_number(report.alpha)}** over {report.queries_with_several} queries judged by "
        f"several annotators. The LLM's proposed positive was kept in "
        f"**{_number(report.llm_accepted)}** of the judgments on reranked queries."
    )
    if len(report.annotators) < 2:
        who = "nobody has" if not report.annotators else "one annotator has"
        summary = (
            f"**Agreement needs a second annotator:** so far {who} judged queries. Ask "
            "another person to judge some of the same queries (queue *fewer_than_n* or "
            "*all* on the Annotate tab, under their own name); alpha and kappa appear "
            "here once two people have judged a query.\n\n" + summary
        )
    elif report.queries_with_several == 0:
        summary = (
            "**No query has been judged by two annotators yet:** agreement is measured on "
            "shared queries (queue *fewer_than_n* shows them).\n\n" + summary
        )
    # Dataframe cells render as text, so names go in as they are (no HTML escaping)
    people = [
        [name, judged, with_llm, _number(rate)]
        for name, judged, with_llm, rate in report.annotators
    ]
    pairs = [[a, b, _number(kappa), shared] for a, b, kappa, shared in report.pairs]
    return summary, people, pairs


def build_agreement_tab(ctx: Context, app: gr.Blocks) -> None:
    """The Agreement tab's components and events (call inside ``gr.Tab``)."""
    summary = gr.Markdown(elem_id="agreement-summary")
    people = gr.Dataframe(
        headers=PEOPLE_COLUMNS,
        datatype=["str", "number", "number", "str"],
        interactive=False,
        label="Per annotator",
    )
    pairs = gr.Dataframe(
        headers=PAIR_COLUMNS,
        datatype=["str", "str", "str", "number"],
        interactive=False,
        label="Per pair of annotators",
    )
    refresh = gr.Button("Refresh")
    gr.on(
        triggers=[app.load, refresh.click],
        fn=bind(agreement_tables, ctx),
        outputs=[summary, people, pairs],
    )
