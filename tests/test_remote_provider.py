"""Remote providers through a real local OpenAI-compatible HTTP server (stdlib
``http.server`` in a thread): litellm sends real requests to it. No key is needed for a
local ``--api-base``; ``--api-key`` / ``CURATOR_API_KEY`` are sent when given;
``--retry-failed`` asks the server again instead of replaying the cached failure; the
timeout is the one set."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import write
from sqlalchemy import select

from curator.cli import build_parser, main
from curator.llm.client import LLMClient, LLMError, LLMSettings
from curator.services.llm import NO_KEY, with_api_key
from db import open_database
from db.models import GeneratedQuery
from db.session import sqlite_url


class Server:
    """An OpenAI-compatible server answering /v1/chat/completions with ``reply(n)`` for
    the n-th request (0-based), after ``delay`` seconds; it records each request."""

    def __init__(self, reply, delay: float = 0.0) -> None:
        self.reply, self.delay = reply, delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    n = len(outer.requests)
                    outer.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                    )
                time.sleep(outer.delay)
                text = outer.reply(n)
                payload = {
                    "id": f"cmpl-{n}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "x"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def no_keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "CURATOR_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def corpus(tmp_path, n=3):
    rows = [
        {"_id": f"d{i}", "title": f"Doc {i}", "text": f"Passage number {i} about planet {i}."}
        for i in range(n)
    ]
    return write(tmp_path / "c.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def stored_queries(data_dir):
    database = open_database(sqlite_url(data_dir / "curator.db"))
    try:
        with database.sessions() as session:
            return [
                (q.model, q.status, q.query)
                for q in session.scalars(select(GeneratedQuery).order_by(GeneratedQuery.id))
            ]
    finally:
        database.dispose()


def generate(data_dir, url, *extra):
    command = ["generate", "--model", "openai/x", "--api-base", url, "--all"]
    return main(
        ["--data-dir", str(data_dir), *command, "--concurrency", "1", "--resample", "0", *extra]
    )


def test_generate_against_a_local_server_needs_no_key(tmp_path, no_keys, capsys):
    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "ingest", str(corpus(tmp_path))]) == 0
    with Server(lambda n: f"Task: Find facts\nQuery: which planet is number {n}") as server:
        assert generate(data, server.url) == 0
    assert capsys.readouterr().err.count("error") == 0
    assert sorted(stored_queries(data)) == [
        ("openai/x", "ok", f"which planet is number {n}") for n in range(3)
    ]
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 3
    assert {r["model"] for r in server.requests} == {"x"}
    assert {r["auth"] for r in server.requests} == {f"Bearer {NO_KEY}"}


def test_api_key_option_and_environment_are_sent(tmp_path, no_keys, monkeypatch):
    data = tmp_path / "data"
    main(["--data-dir", str(data), "ingest", str(corpus(tmp_path, 1))])
    with Server(lambda n: f"Task: t\nQuery: question {n}") as server:
        assert generate(data, server.url, "--api-key", "sk-given", "--no-cache") == 0
        monkeypatch.setenv("CURATOR_API_KEY", "sk-env")
        assert generate(data, server.url, "--retry-failed", "-n", "2", "--no-cache") == 0
    assert [r["auth"] for r in server.requests] == ["Bearer sk-given", "Bearer sk-env"]


def test_retry_failed_asks_the_server_again_despite_the_cache(tmp_path, no_keys):
    data = tmp_path / "data"
    main(["--data-dir", str(data), "ingest", str(corpus(tmp_path, 2))])
    replies = ["no query here", "still nothing"] + [f"Task: t\nQuery: fixed {n}" for n in range(9)]
    with Server(lambda n: replies[n]) as server:
        assert generate(data, server.url) == 0
        assert [s for _m, s, _q in stored_queries(data)] == ["parse_failed"] * 2
        assert generate(data, server.url) == 0  # no retry: nothing asked
        assert len(server.requests) == 2
        assert generate(data, server.url, "--retry-failed") == 0
    assert len(server.requests) == 4
    assert sorted(stored_queries(data)) == [("openai/x", "ok", f"fixed {n}") for n in range(2)]


def test_the_timeout_set_is_the_one_used(no_keys):
    settings = LLMSettings(model="openai/x", timeout=0.5, retries=0, api_base="")
    with Server(lambda n: "Task: t\nQuery: q", delay=3.0) as server:
        client = LLMClient(with_api_key(LLMSettings(**{**vars(settings), "api_base": server.url})))
        started = time.monotonic()
        with pytest.raises(LLMError) as error:
            client.complete([{"role": "user", "content": "hi"}])
    assert error.value.kind in ("timeout", "connection")
    assert time.monotonic() - started < 2.5
    assert build_parser().parse_args(["rerank", "--timeout", "300"]).timeout == 300
    args = build_parser().parse_args(["rerank", "--api-key", "k", "--api-base", "http://h/v1"])
    assert (args.api_key, args.api_base) == ("k", "http://h/v1")


def test_key_resolution_rules():
    base = LLMSettings(model="openai/x", api_base="http://127.0.0.1:1/v1")
    assert with_api_key(base, {}).api_key == NO_KEY
    assert with_api_key(base, {"OPENAI_API_KEY": "sk-o"}).api_key is None  # litellm reads it
    assert with_api_key(base, {"CURATOR_API_KEY": "sk-c"}).api_key == "sk-c"
    given = LLMSettings(model="openai/x", api_key="sk-g")
    assert with_api_key(given, {"CURATOR_API_KEY": "sk-c"}).api_key == "sk-g"
    assert with_api_key(LLMSettings(model="openai/gpt-4o-mini"), {}).api_key is None
    assert with_api_key(LLMSettings(), {"CURATOR_API_KEY": "k"}).api_key is None  # local


def test_a_model_name_has_a_size_limit():
    with pytest.raises(ValueError, match="100,000 characters long"):
        LLMSettings(model="openai/" + "x" * 99_993)
    with pytest.raises(ValueError, match="model name is required"):
        LLMSettings(model="  ")
