"""Where things live: the data folder, the database URL, the default project.

Resolution order for each: command-line option, environment variable, default.

| setting   | option        | environment            | default                      |
|-----------|---------------|------------------------|------------------------------|
| data dir  | --data-dir    | CURATOR_DATA_DIR       | ./data                       |
| database  | --db          | CURATOR_DATABASE_URL   | sqlite:///<data dir>/curator.db |
| project   | --project     | CURATOR_PROJECT        | default                      |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from db.session import sqlite_url

DEFAULT_PROJECT = "default"
DEMO_PROJECT = "demo"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    project: str


def resolve_settings(
    data_dir: str | None = None, database_url: str | None = None, project: str | None = None
) -> Settings:
    folder = Path(data_dir or os.environ.get("CURATOR_DATA_DIR") or "data").expanduser().resolve()
    url = (
        database_url or os.environ.get("CURATOR_DATABASE_URL") or sqlite_url(folder / "curator.db")
    )
    name = project or os.environ.get("CURATOR_PROJECT") or DEFAULT_PROJECT
    return Settings(data_dir=folder, database_url=url, project=name)
