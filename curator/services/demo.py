"""The demo project: the embedded Python-reference corpus, ingested on first use."""

from __future__ import annotations

from curator.demo import DEMO_CHUNKING, DEMO_SOURCE, demo_records
from curator.services.ingest import IngestReport, ingest_records
from curator.services.projects import ensure_project
from db import Database
from db.queries import project_counts


def ensure_demo_project(database: Database, project: str) -> IngestReport | None:
    """Ingest the demo corpus into ``project`` unless it already has passages.

    Returns the ingest report, or None when there was nothing to do.
    """
    project_id = ensure_project(
        database,
        project,
        description="Demo: the Python language reference (pydoc_data.topics, PSF licence), "
        "chunked into ~100-word passages.",
    )
    with database.sessions() as session:
        if project_counts(session, project_id)["passages"] > 0:
            return None
    return ingest_records(
        database,
        project,
        demo_records(),
        source=DEMO_SOURCE,
        chunking=DEMO_CHUNKING,
        settings={"source": DEMO_SOURCE, "chunking": vars(DEMO_CHUNKING)},
    )
