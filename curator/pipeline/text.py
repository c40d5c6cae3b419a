"""Text normalisation and content hashing used for deduplication."""

from __future__ import annotations

import hashlib
import unicodedata


def normalise(text: str) -> str:
    """NFKC, case-folded, with all runs of white space folded to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(title: str, text: str) -> str:
    """Hex digest (32 chars) of the normalised title and text.

    Two passages that differ only in case, Unicode form or white space hash the same.
    """
    payload = normalise(title) + "\x1f" + normalise(text)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()
