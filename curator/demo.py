"""The embedded demo corpus: the Python language reference topics shipped with CPython.

``pydoc_data.topics`` is part of every CPython install (79 topics, ~465k characters on
3.11) under the PSF licence, which allows redistribution; see ``assets/DEMO_CORPUS.md``.
"""

from __future__ import annotations

from collections.abc import Iterator

from curator.pipeline.chunking import ChunkingConfig
from curator.pipeline.readers import SourceRecord

DEMO_SOURCE = "pydoc_data.topics"
DEMO_CHUNKING = ChunkingConfig(words=100, overlap=20)


def demo_records() -> Iterator[SourceRecord]:
    """One record per topic: the first line (the section heading) is the title."""
    from pydoc_data.topics import topics

    for line, (key, body) in enumerate(sorted(topics.items()), start=1):
        heading, _, rest = body.strip().partition("\n")
        text = rest.lstrip().lstrip("*=-").strip() if rest.lstrip()[:1] in "*=-" else rest.strip()
        yield SourceRecord(
            doc_id=key,
            title=heading.strip(),
            text=text or heading,
            source_file=DEMO_SOURCE,
            line=line,
        )
