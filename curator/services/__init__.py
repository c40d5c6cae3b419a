"""Services: one function per user action. Read rows, call a pipeline stage, write rows.

Services own transactions; the CLI and the UI call them and nothing below them.
"""

from db import Database  # the handle the app passes to every service (re-exported for the UI)

__all__ = ["Database"]
