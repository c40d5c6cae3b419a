"""Shared fixtures: a real database per test (SQLite, and PostgreSQL where a server is given),
paths to the shared BEIR datasets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

# before any test module imports litellm: use its bundled price map, fetch nothing
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
from postgres import URL_VARIABLE as POSTGRES_URL_VARIABLE

from db import Database, open_database
from db.session import sqlite_url

SHARED = Path(os.environ.get("CURATOR_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
SCIFACT = SHARED / "datasets" / "scifact"


# A tiny corpus for the tests that mine, judge, train and export: (id, title, text).
TOY_DOCS = [
    ("tea", "Tea", "Tea is made by pouring hot water over cured tea leaves."),
    ("greentea", "Green tea", "Green tea leaves are steamed, not oxidised, then dried."),
    ("coffee", "Coffee", "Coffee is brewed from roasted coffee beans."),
    ("mars", "Mars", "Mars is the fourth planet from the Sun."),
    ("venus", "Venus", "Venus is the second planet from the Sun and the hottest."),
    ("rust", "Rust", "Rust is a systems programming language focused on memory safety."),
    ("python", "Python", "Python is a dynamically typed programming language."),
    ("bread", "Bread", "Bread is baked from a dough of flour and water."),
    ("rice", "Rice", "Rice is the seed of a grass, boiled or steamed to eat."),
    ("violin", "Violin", "The violin is a string instrument played with a bow."),
]
# one query per passage of TOY_DOCS[:8]: (query, seed id)
TOY_QUERIES = [
    ("drink made from tea leaves", "tea"),
    ("steamed tea", "greentea"),
    ("roasted beans drink", "coffee"),
    ("the red planet", "mars"),
    ("hottest planet", "venus"),
    ("memory safe language", "rust"),
    ("dynamic typing language", "python"),
    ("baked flour dough", "bread"),
]


def toy_docs(*ids: str) -> list[tuple[str, str, str]]:
    """The TOY_DOCS with these ids, in TOY_DOCS order."""
    return [doc for doc in TOY_DOCS if doc[0] in ids]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "curator.db"


def _required() -> bool:
    return os.environ.get("CURATOR_REQUIRE_ALL", "") not in ("", "0")


# The database tests run on SQLite and, where a PostgreSQL server is given (``make
# test-postgres``, CI), on PostgreSQL too: one suite, parametrised. Under
# CURATOR_REQUIRE_ALL a missing server fails the PostgreSQL half instead of leaving it out.
BACKENDS = (
    ("sqlite", "postgresql")
    if os.environ.get(POSTGRES_URL_VARIABLE) or _required()
    else ("sqlite",)
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """SQLAlchemy URL of the test PostgreSQL server's maintenance database."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        skip_unless_required(
            f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE} (make test-postgres does)"
        )
    return url


def fresh_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database on the server at ``server_url``; returns its URL and a
    function that drops it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"curator_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


@pytest.fixture(params=BACKENDS)
def database_url(request, db_path: Path) -> str:
    """URL of an empty database: a SQLite file at ``db_path``, or a fresh PostgreSQL
    database (dropped after the test)."""
    if request.param == "sqlite":
        yield sqlite_url(db_path)
        return
    url, drop = fresh_postgres_database(request.getfixturevalue("postgres_server"))
    yield url
    drop()


@pytest.fixture
def backend(database_url: str) -> str:
    """``sqlite`` or ``postgresql``: the database this test runs on."""
    return database_url.split(":", 1)[0].split("+", 1)[0]


@pytest.fixture
def database(database_url: str) -> Database:
    """A migrated database: a real SQLite file, or a real PostgreSQL database."""
    database = open_database(database_url)
    yield database
    database.dispose()


def skip_unless_required(reason: str) -> None:
    """Skip the test for a missing outside resource (a ../shared dataset, Chromium, a
    PostgreSQL server); with ``CURATOR_REQUIRE_ALL=1`` (set by ``.ci/run``) fail instead, so
    a green CI run cannot hide tests that never ran."""
    if _required():
        pytest.fail(f"{reason} (CURATOR_REQUIRE_ALL is set: a missing resource fails)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def scifact_dir() -> Path:
    if not (SCIFACT / "corpus.jsonl").exists():
        skip_unless_required(f"SciFact not found at {SCIFACT} (set CURATOR_SHARED_DIR)")
    return SCIFACT


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path`` (bytes as is, text as UTF-8) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory):
    """LLM settings for the embedded Gemma 3 270M, assembled once per test session."""
    from curator.llm.client import LLMSettings
    from curator.llm.local import configure_local

    configure_local(models_dir=tmp_path_factory.mktemp("models"), n_threads=2, n_threads_batch=2)
    return LLMSettings(model="local/gemma3-270m")


def scifact_subset(scifact_dir: Path, target: Path, n: int, skip: int = 0) -> Path:
    """Write lines ``skip``..``skip+n`` of SciFact's corpus.jsonl to ``target``."""
    with (scifact_dir / "corpus.jsonl").open(encoding="utf-8") as source:
        lines = [line for i, line in enumerate(source) if skip <= i < skip + n]
    return write(target, "".join(lines))


@pytest.fixture(scope="session")
def guide_model(tmp_path_factory):
    """The packaged all-MiniLM-L6-v2, loaded once per test session (backend auto)."""
    from curator.retrieval.guide import GuideModel, GuideSettings

    return GuideModel(GuideSettings(), work_dir=tmp_path_factory.mktemp("guide"))


def add_queries(database, project: str, rows: list[tuple[str, str]]) -> list[int]:
    """Store (query text, seed passage external id) pairs as generated queries (status ok),
    standing in for LLM output; returns their ids."""
    from sqlalchemy import select

    from db.models import GeneratedQuery, Passage, Project

    with database.sessions() as session, session.begin():
        project_id = session.scalar(select(Project.id).where(Project.name == project))
        by_external = dict(
            session.execute(
                select(Passage.external_id, Passage.id).where(Passage.project_id == project_id)
            ).all()
        )
        queries = [
            GeneratedQuery(
                project_id=project_id,
                seed_passage_id=by_external[seed],
                sample_index=i,
                task="Given a claim, retrieve evidence.",
                query=text,
                model="test/qrels",
                prompt_version="qrels",
                raw_output=text,
            )
            for i, (text, seed) in enumerate(rows)
        ]
        session.add_all(queries)
        session.flush()
        return [q.id for q in queries]


class FakeCompletionsServer:
    """An OpenAI-compatible ``/v1/completions`` endpoint on 127.0.0.1 that echoes the prompt
    with per-word log-probabilities, like vLLM with ``echo=True, logprobs=1``: the first
    word gets None, each later word ``-0.1 * its length`` (so longer words cost more).
    With ``logprobs=False`` it answers without log-probabilities, like servers that
    ignore ``echo``."""

    def __init__(self, logprobs: bool = True) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                prompt = body["prompt"] if isinstance(body["prompt"], str) else body["prompt"][0]
                tokens, offsets, position = [], [], 0
                for i, word in enumerate(prompt.split(" ")):
                    token = word if i == 0 else " " + word
                    tokens.append(token)
                    offsets.append(position)
                    position += len(token)
                values = [None] + [-0.1 * len(t.strip()) for t in tokens[1:]]
                choice = {
                    "index": 0,
                    "text": prompt + " x",
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": values,
                        "text_offset": offsets,
                        "top_logprobs": None,
                    }
                    if logprobs
                    else None,
                }
                data = json.dumps(
                    {
                        "id": "cmpl-1",
                        "object": "text_completion",
                        "created": 1,
                        "model": body["model"],
                        "choices": [choice],
                        "usage": {
                            "prompt_tokens": len(tokens),
                            "completion_tokens": 1,
                            "total_tokens": len(tokens) + 1,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.requests: list[dict] = []
        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def completions_server():
    server = FakeCompletionsServer()
    yield server
    server.close()


def mine_small_project(
    database,
    tmp_path: Path,
    guide,
    docs: list[tuple[str, str, str]],
    queries: list[tuple[str, str]],
    *,
    top_n: int,
    rerank_by_guide: bool = False,
) -> list[int]:
    """Project ``p``: ingest (id, title, text) ``docs``, store (query, seed id) ``queries``
    as generated queries, mine them with ``guide``, and optionally rerank them by the guide
    alone (fusion without any LLM call). Returns the query ids."""
    import json

    from curator.services.ingest import ingest_path
    from curator.services.mine import MineOptions, mine_candidates

    rows = [{"_id": i, "title": t, "text": x} for i, t, x in docs]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    ids = add_queries(database, "p", queries)
    mine_candidates(database, "p", tmp_path / "data", MineOptions(top_n=top_n), guide=guide)
    if rerank_by_guide:
        from curator.llm.client import LLMClient, LLMSettings
        from curator.services.rerank import RerankOptions, rerank_queries

        client = LLMClient(LLMSettings(model="openai/no-calls"))
        client._litellm = object()  # any LLM call would fail loudly
        rerank_queries(database, "p", client, RerankOptions(methods=("guide",), negative_rank=3))
    return ids
