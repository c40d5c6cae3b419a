"""Project status: counts per table and per stage, and the latest runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curator.services.projects import require_project
from db import Database
from db.queries import project_counts, recent_runs


@dataclass
class RunSummary:
    id: int
    stage: str
    status: str
    started_at: str
    counts: dict[str, Any]
    error: str | None


@dataclass
class ProjectStatus:
    project: str
    database: str
    counts: dict[str, int]
    runs: list[RunSummary]

    def stage_lines(self) -> list[tuple[str, str]]:
        """(stage, human-readable progress) for the pipeline stages, in order."""
        c = self.counts
        return [
            ("ingest", f"{c['passages']:,} passages from {c['documents']:,} documents"),
            (
                "generate",
                f"{c['queries_ok']:,} queries ({c['queries_parse_failed']:,} parse "
                f"failures, {c['queries_error']:,} errors); flagged {self._share('copy')} "
                f"copies, {self._share('junk')} junk, {self._share('duplicate')} duplicates",
            ),
            (
                "mine",
                f"{c['queries_mined']:,} queries mined, {c['candidates']:,} candidates; "
                f"{self._share('inconsistent', 'queries_mined')} inconsistent (seed not in "
                f"the guide's top k); {c['queries_flagged']:,} queries flagged in all",
            ),
            (
                "rerank",
                f"{c['queries_reranked']:,} queries reranked, {c['llm_scores']:,} LLM scores",
            ),
            ("annotate", f"{c['queries_judged']:,} queries judged, {c['judgments']:,} judgments"),
            ("train", f"{c['training_runs']:,} training runs"),
        ]

    def _share(self, kind: str, of: str = "queries_ok") -> str:
        """``"12 (3.4%)"``: queries flagged ``kind``, and their share of ``of``."""
        flagged, total = self.counts[f"flagged_{kind}"], self.counts[of]
        return f"{flagged:,} ({flagged / total:.1%})" if total else f"{flagged:,}"


def project_status(database: Database, project: str, *, runs: int = 5) -> ProjectStatus:
    project_id = require_project(database, project)
    with database.sessions() as session:
        counts = project_counts(session, project_id)
        latest = [
            RunSummary(
                r.id,
                r.stage,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                dict(r.counts or {}),
                r.error,
            )
            for r in recent_runs(session, project_id, runs)
        ]
    return ProjectStatus(project, _redact(database.url), counts, latest)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
