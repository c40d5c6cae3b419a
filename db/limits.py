"""Size limits on the text the app and the services store, checked before a write.

Corpus passages have their own rules (``curator.pipeline.readers``); these cover what a
person types or a setting names: edited queries and passages, notes, names, model names,
and the passage search.
"""

from __future__ import annotations

MAX_QUERY_CHARS = 2_000  # an edited query
MAX_NOTE_CHARS = 10_000  # a judgment's note or reason
MAX_PASSAGE_EDIT_CHARS = 50_000  # a passage text corrected on the annotation card
MAX_NAME_CHARS = 200  # annotator and project names (their columns hold 200)
MAX_SEARCH_CHARS = 500  # the passage browser's search box
MAX_MODEL_CHARS = 300  # a model name or path (the model columns hold 300)


class TextTooLong(ValueError):
    """A text over its size limit; the message names the field, its length and the limit."""

    def __init__(self, what: str, length: int, limit: int) -> None:
        self.what, self.length, self.limit = what, length, limit
        super().__init__(f"{what} is {length:,} characters long; at most {limit:,} are allowed")


def check_length(what: str, value: str | None, limit: int) -> None:
    """Raise :class:`TextTooLong` when ``value`` holds more than ``limit`` characters."""
    if value is not None and len(value) > limit:
        raise TextTooLong(what, len(value), limit)
