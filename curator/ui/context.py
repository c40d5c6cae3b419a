"""What every handler of the app needs: the database, the project, the data folder; and
``bind``, which fixes those first arguments of a module-level handler for Gradio; and
``text_table``, the read-only table of text the pages list things in."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from curator.services import Database


@dataclass(frozen=True)
class Context:
    """The app's project: ``database`` and ``project`` name, ``data_dir`` (models, caches,
    uploads, exports), and ``login`` (the app runs behind a login)."""

    database: Database
    project: str
    data_dir: Path
    login: bool = False


def bind(handler: Callable, *values) -> Callable:
    """``handler`` with its first ``len(values)`` arguments fixed, as Gradio needs it.

    Unlike ``functools.partial``, the result keeps the handler's type hints and a
    signature without the fixed arguments, so Gradio still fills ``gr.Request``,
    ``gr.SelectData`` and ``gr.Progress`` parameters."""

    @functools.wraps(handler)
    def bound(*args, **kwargs):
        return handler(*values, *args, **kwargs)

    @functools.wraps(handler)
    def bound_generator(*args, **kwargs):
        yield from handler(*values, *args, **kwargs)

    call = bound_generator if inspect.isgeneratorfunction(handler) else bound
    parameters = list(inspect.signature(handler).parameters.values())[len(values) :]
    call.__signature__ = inspect.Signature(parameters)
    return call


def require_admin(ctx: Context, request, action: str, model: str | None = None) -> str | None:
    """The server-side check at the top of every admin handler (pages and API alike): raises
    ``gr.Error`` (a message, no internals) unless the logged-in caller may run ``action``
    and ``model`` is on the project's allow-list; returns the model to use (None when no
    ``model`` was asked about). Without a login everyone may (one local user); models are
    still checked."""
    import gradio as gr

    from curator.services.access import PermissionDenied, check_model
    from curator.services.access import require_admin as check_admin

    name = getattr(request, "username", None) if request is not None else None
    try:
        check_admin(ctx.database, name, action, login=ctx.login)
        return None if model is None else check_model(ctx.database, ctx.project, model)
    except PermissionDenied as error:
        raise gr.Error(str(error)) from None


def text_table(
    headers: list[str],
    *,
    label: str | None = None,
    widths: list[str] | None = None,
    elem_id: str | None = None,
):
    """A read-only ``gr.Dataframe`` of text cells (one per header) that wraps long cells:
    the shape of every listing table in the app (call inside the caller's Blocks)."""
    import gradio as gr

    return gr.Dataframe(
        headers=headers,
        datatype=["str"] * len(headers),
        interactive=False,
        wrap=True,
        column_widths=widths,
        label=label,
        elem_id=elem_id,
    )


def job_click(button, handler: Callable, ctx: Context, inputs, outputs, api_name: str):
    """Wire ``button`` to ``handler`` (with ``ctx`` bound, see ``bind``), also served as
    the HTTP api ``api_name``; returns the click event. No Gradio concurrency limit: the
    heavy work queues as jobs in ``curator.services.jobs``, not in Gradio."""
    return button.click(
        bind(handler, ctx),
        inputs=inputs,
        outputs=outputs,
        api_name=api_name,
        concurrency_limit=None,
    )
