"""What every handler of the app needs: the database, the project, the data folder; and
``bind``, which fixes those first arguments of a module-level handler for Gradio."""

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
