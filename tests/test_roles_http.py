"""Roles and login through the real HTTP app (gradio_client, plain HTTP): an annotator's
pipeline, training, export and ingest calls are refused and change nothing; model strings
come from the project's allow-list; logins are throttled; errors carry no internals."""

from __future__ import annotations

import json
import time

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, mine_small_project
from http_app import client, serving_app
from sqlalchemy import func, select

from curator.services.access import set_allowed_models
from curator.services.auth import set_password
from db.models import Base

ANN, BOSS = ("ann", "ann-password"), ("boss", "boss-password")


def table_counts(database) -> dict[str, int]:
    with database.sessions() as session:
        return {
            name: session.scalar(select(func.count()).select_from(table))
            for name, table in Base.metadata.tables.items()
        }


@pytest.fixture
def team(database, tmp_path, guide_model):
    """Project ``p``: the toy corpus and queries, mined and reranked (by the guide), an
    annotator and an admin, served with ``--login``; yields (url, database, data dir,
    corpus file)."""
    mine_small_project(
        database, tmp_path, guide_model, TOY_DOCS, TOY_QUERIES, top_n=5, rerank_by_guide=True
    )
    set_password(database, *ANN)
    set_password(database, *BOSS, role="admin")
    data_dir = tmp_path / "data"
    with serving_app(database, "p", data_dir, login=True) as url:
        yield url, database, data_dir, tmp_path / "c.jsonl"


def refused(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        call()
    return str(caught.value)


def test_an_annotators_pipeline_training_export_and_ingest_calls_are_refused(team):
    from gradio_client import handle_file

    url, database, data_dir, corpus = team
    before = table_counts(database)
    before_files = sorted(p.name for p in data_dir.iterdir())
    annotator = client(url, auth=ANN)
    calls = {
        "ingest": lambda: annotator.predict(handle_file(str(corpus)), "", api_name="/ingest"),
        "generation": lambda: annotator.predict("local/gemma3-270m", 2, 1, 1, api_name="/generate"),
        "mining": lambda: annotator.predict(5, 1, 0.95, 0, api_name="/mine"),
        "reranking": lambda: annotator.predict(
            "local/gemma3-270m", ["guide"], 3, 0, api_name="/rerank"
        ),
        "fine-tuning": lambda: annotator.predict(
            "all", "mnrl", 1, 4, 5e-5, 32, 0, api_name="/fine_tune"
        ),
        "export": lambda: annotator.predict("beir", "all", 3, api_name="/export"),
        "the model comparison": lambda: annotator.predict("tea", None, api_name="/compare"),
        "cancelling a job": lambda: annotator.predict(1, api_name="/cancel_job"),
    }
    for action, call in calls.items():
        assert f"{action} is for admins" in refused(call)
    assert table_counts(database) == before
    assert not (data_dir / "exports").exists() and not (data_dir / "uploads").exists()
    assert sorted(p.name for p in data_dir.iterdir()) == before_files

    # the annotator still annotates: the Annotate page's calls work
    header = annotator.predict("ignored", "not_judged", api_name="/show")[0]
    assert header.startswith("Query #")
    message = annotator.predict(
        "", "ignored", "not_judged", "", "unanswerable", api_name="/reject"
    )[-1]
    assert "Saved judgment" in message
    with database.sessions() as session:
        from db.models import Annotator, Judgment

        names = session.scalars(select(Annotator.username).join(Judgment)).all()
    assert names == ["ann"]  # stored under the logged-in name, not the one sent


def test_an_admin_runs_what_an_annotator_may_not(team):
    url, _, data_dir, _ = team
    admin = client(url, auth=BOSS)
    message, path = admin.predict("beir", "all", 3, api_name="/export")
    assert "exported beir" in message and path
    assert (data_dir / "exports").is_dir()
    # the Jobs panel's Cancel button knows the admin (the export job has ended by now)
    shown = admin.predict(1, api_name="/cancel_job")[0]
    assert "Not cancelled: job #1 export already ended (done)" in shown


def test_models_come_from_the_allow_list(team):
    url, database, _, _ = team
    admin = client(url, auth=BOSS)
    before = table_counts(database)
    for model in ("local//etc/passwd.gguf", "openai/gpt-4o", "local/other.gguf"):
        error = refused(lambda m=model: admin.predict(m, 1, 1, 1, api_name="/generate"))
        assert f"model {model!r} is not allowed" in error and "local/gemma3-270m" in error
    assert table_counts(database) == before
    set_allowed_models(database, "p", ["openai/gpt-4o"])
    # now allowed: the call gets past the check (and fails later without an API key)
    message = admin.predict("openai/gpt-4o", 1, 1, 1, api_name="/generate")
    assert "not allowed" not in message and "openai/gpt-4o" in message


def test_tabs_for_the_role(team):
    url, *_ = team
    config = client(url, auth=ANN).config
    tabs = {
        c["props"].get("label"): c["props"].get("visible")
        for c in config["components"]
        if c.get("type") in ("tabitem", "tab")
    }
    assert tabs["Pipeline"] is False and tabs["Export"] is False and tabs["Fine-tune"] is False
    assert tabs["Annotate"] is not False and tabs["Agreement"] is not False

    def shown(auth) -> list:
        import httpx

        with httpx.Client(base_url=url) as http:
            assert http.post("login", data={"username": auth[0], "password": auth[1]}).is_success
            event = http.post("gradio_api/call/tabs_for", json={"data": []}).json()["event_id"]
            stream = http.get(f"gradio_api/call/tabs_for/{event}").text
        data = json.loads(stream.split("data:", 1)[1].split("\n", 1)[0])
        return [update.get("visible") for update in data]

    # Pipeline, Fine-tune, Export and the Jobs panel's Cancel row
    assert shown(ANN) == [False, False, False, False]
    assert shown(BOSS) == [True, True, True, True]


def _login(url: str, name: str, password: str) -> tuple[bool, float]:
    import httpx

    start = time.perf_counter()
    response = httpx.post(url + "login", data={"username": name, "password": password})
    return response.status_code == 200, time.perf_counter() - start


def test_repeated_failures_lock_a_name_and_unknown_names_cost_the_same(team):
    url, *_ = team
    assert _login(url, *BOSS)[0]
    for _ in range(3):
        ok, took = _login(url, "boss", "wrong-password")
        assert not ok and took >= 0.5  # each failure waits before answering
    assert not _login(url, *BOSS)[0]  # locked: even the right password is refused
    time.sleep(1.1)
    assert _login(url, *BOSS)[0]  # the lock runs out; a success clears the count
    for name in ("ann", "nobody-by-this-name"):
        for _ in range(3):
            assert not _login(url, name, "wrong-password")[0]
        assert not _login(url, name, "wrong-password")[0]  # locked alike, known or not


def test_unknown_names_are_checked_against_a_dummy_hash(database):
    from curator.services.auth import check_login

    set_password(database, *ANN)

    def timed(name: str) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            assert not check_login(database, name, "wrong-password")
            best = min(best, time.perf_counter() - start)
        return best

    known, unknown = timed("ann"), timed("nobody-by-this-name")
    assert unknown > 0.5 * known  # one scrypt each, not a skipped hash


def test_internal_errors_reach_the_browser_without_details(team):
    url, *_ = team
    admin = client(url, auth=BOSS)
    # a value the handler cannot take: the server raises inside Gradio's preprocessing
    error = refused(lambda: admin.predict("", "/no/such/path", api_name="/ingest"))
    assert "Traceback" not in error and "pydantic" not in error and "/no/such" not in error
