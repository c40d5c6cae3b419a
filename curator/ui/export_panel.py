"""The app's Export tab: plain functions over plain values (no gradio).

``run_export`` writes the export into ``<data dir>/exports/<project>-<format>-<time>/``
(the same service as ``curator export``) and zips that folder into a temporary file for
the browser to download.
"""

from __future__ import annotations

import html
import re
import tempfile
import zipfile
from pathlib import Path

from curator.pipeline.export import FORMATS, atomic_write
from curator.services.export import ExportOptions, export_dataset
from db import Database
from db.models import utcnow
from trainer.dataset import POLICIES

EXPORT_FORMATS = list(FORMATS)
EXPORT_POLICIES = list(POLICIES)

EXPORT_HELP = """\
Export the curated set with the trainer's rules: the latest human judgment overrides the
proposal, rejected queries are left out, and *Policy* decides about unreviewed queries
(`none`: only judged ones; `high_confidence`; `all`). The held-out split is written apart
(`test`) from `train`, with a `manifest.json` (counts, policy, seed, models). The folder is
kept under the data folder's `exports/` and offered here as a zip. Formats and how to load
them: `docs/export.md`; the same from a terminal: `curator export --format ... --out ...`.
"""


def run_export(
    database: Database,
    project: str,
    data_dir: Path | str,
    fmt: str,
    policy: str,
    negatives: float | int | None = 3,
) -> tuple[str, str | None]:
    """Export ``project`` as ``fmt`` under ``policy``; returns (Markdown summary, path of
    a zip of the export folder), or (the error as Markdown, None)."""
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", project)[:60] or "project"
    folder = Path(data_dir) / "exports" / f"{safe}-{fmt}-{stamp}"
    options = ExportOptions(fmt=fmt, policy=policy, negatives=int(negatives or 3), force=True)
    try:
        report = export_dataset(database, project, folder, options)
    except (LookupError, ValueError, OSError) as exc:
        return f"**Export failed:** {html.escape(str(exc))}", None
    archive = Path(tempfile.mkdtemp(prefix="curator-export-")) / f"{folder.name}.zip"
    with (
        atomic_write(archive, "wb", encoding=None) as stream,
        zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED) as zipped,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zipped.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    counts = report.manifest["counts"]
    rows = ", ".join(f"{html.escape(str(k))}: {v:,}" for k, v in report.manifest["rows"].items())
    score = report.manifest.get("score_source")
    return (
        f"{html.escape(report.summary())}\n\n"
        f"**{counts['examples']:,}** queries ({counts['train']:,} train, "
        f"{counts['eval']:,} test); rows {rows}"
        + (
            f"; teacher scores: {html.escape(str(score))} (for margin and FlagEmbedding)"
            if score
            else ""
        )
        + f"\n\nSaved on the server in `{html.escape(str(folder))}`.",
        str(archive),
    )
