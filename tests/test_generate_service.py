"""The generation service on a real SQLite file, with a remote provider mocked by litellm."""

from __future__ import annotations

import json
from types import SimpleNamespace

import litellm
import pytest
from conftest import write
from sqlalchemy import func, select

from curator.llm.client import LLMClient, LLMSettings
from curator.pipeline.generate import PROMPT_VERSION
from curator.services.generate import GenerateOptions, GenerationFailed, generate_queries
from curator.services.ingest import ingest_path
from db.models import GeneratedQuery, PipelineRun

GOOD = " Given a claim, retrieve documents that support or refute it.\nQuery: {}"


@pytest.fixture
def corpus(database, tmp_path):
    rows = [
        {"_id": f"d{i}", "title": f"Title {i}", "text": f"Passage text number {i}."}
        for i in range(12)
    ]
    ingest_path(database, "p", write(tmp_path / "c.jsonl", "\n".join(map(json.dumps, rows))))
    return database


def client_replying(replies, **settings) -> LLMClient:
    """A remote client whose litellm.completion returns ``replies`` in turn (mock_response)."""
    client = LLMClient(LLMSettings(model="openai/gpt-4o-mini", **settings), sleep=lambda s: None)
    real = client.litellm.completion
    queue = list(replies)

    def completion(**kwargs):
        reply = queue.pop(0) if queue else GOOD.format("default query about passages")
        return real(**kwargs, mock_response=reply)

    client._litellm = SimpleNamespace(
        completion=completion, completion_cost=litellm.completion_cost
    )
    return client


def rows(database):
    with database.sessions() as session:
        return list(session.scalars(select(GeneratedQuery).order_by(GeneratedQuery.id)))


def test_queries_are_stored_with_model_prompt_version_and_raw_reply(corpus):
    client = client_replying([GOOD.format("is passage three about numbers")], concurrency=1)
    report = generate_queries(corpus, "p", client, GenerateOptions(sample=3, seed=1))
    assert (report.ok, report.parse_failed, report.planned) == (3, 0, 3)
    stored = rows(corpus)
    assert len(stored) == 3
    first = stored[0]
    assert first.query == "is passage three about numbers"
    assert first.task == "Given a claim, retrieve documents that support or refute it."
    assert (first.model, first.prompt_version, first.status) == (
        "openai/gpt-4o-mini",
        PROMPT_VERSION,
        "ok",
    )
    assert first.raw_output == GOOD.format("is passage three about numbers")
    with corpus.sessions() as session:
        run = session.scalar(select(PipelineRun).where(PipelineRun.stage == "generate"))
    assert run.status == "done" and run.usage["requests"] == 3 and run.usage["cost_usd"] > 0
    assert run.counts["ok"] == 3 and "api_key" not in run.settings["llm"]


def test_unparseable_reply_is_stored_raw_flagged_and_retried_on_request(corpus):
    bad = " I think it is true that the brain is growing."
    client = client_replying([bad, GOOD.format("second passage query words")], concurrency=1)
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=2, resample=0))
    assert (report.ok, report.parse_failed) == (1, 1)
    failed = rows(corpus)[0]
    assert (failed.status, failed.raw_output, failed.query) == ("parse_failed", bad, "")
    assert "no 'Query:' line" in failed.error

    # a plain rerun does not ask again for the failed one...
    again = generate_queries(corpus, "p", client_replying([]), GenerateOptions(limit=2))
    assert again.already_done == 2 and again.planned == 2  # two new passages instead
    # ...--retry-failed does, and keeps the earlier raw reply in the note
    fixed = generate_queries(
        corpus,
        "p",
        client_replying([GOOD.format("fixed query text")]),
        GenerateOptions(limit=1, retry_failed=True),
    )
    assert fixed.ok == 1
    retried = rows(corpus)[0]
    assert (retried.status, retried.query) == ("ok", "fixed query text")
    assert json.loads(retried.note)["previous_raw"] == bad


def test_resume_after_an_error_continues_without_duplicates(corpus):
    replies = [GOOD.format(f"query number {i} here") for i in range(4)]
    client = client_replying(replies, concurrency=1, retries=0)
    error = litellm.AuthenticationError(
        message="Incorrect API key", llm_provider="openai", model="gpt-4o-mini"
    )
    real = client.litellm.completion
    calls = {"n": 0}

    def fail_after_four(**kwargs):
        calls["n"] += 1
        if calls["n"] > 4:
            raise error
        return real(**kwargs)

    client.litellm.completion = fail_after_four
    with pytest.raises(GenerationFailed, match=r"authentication .*Incorrect API key") as info:
        generate_queries(corpus, "p", client)
    assert info.value.report.ok == 4 and "run the same command again" in str(info.value)
    assert len(rows(corpus)) == 4
    with corpus.sessions() as session:
        assert (
            session.scalar(select(PipelineRun.status).order_by(PipelineRun.id.desc())) == "failed"
        )

    report = generate_queries(corpus, "p", client_replying([]))
    assert (report.already_done, report.ok) == (4, 8)
    stored = rows(corpus)
    assert len(stored) == 12 and len({r.seed_passage_id for r in stored}) == 12


def test_several_queries_per_passage_and_a_stable_sample(corpus):
    options = GenerateOptions(sample=4, seed=7, queries_per_passage=2)
    report = generate_queries(corpus, "p", client_replying([]), options)
    assert report.ok == 8
    with corpus.sessions() as session:
        per_passage = session.execute(
            select(GeneratedQuery.seed_passage_id, func.count()).group_by(
                GeneratedQuery.seed_passage_id
            )
        ).all()
    assert len(per_passage) == 4 and {n for _, n in per_passage} == {2}
    # the same seed picks the same passages: nothing left to do
    assert generate_queries(corpus, "p", client_replying([]), options).planned == 0


def test_concurrent_remote_requests_store_every_reply(corpus):
    report = generate_queries(corpus, "p", client_replying([], concurrency=4))
    assert report.ok == 12 and len(rows(corpus)) == 12


def test_best_of_needs_query_likelihood(corpus):
    with pytest.raises(GenerationFailed, match="query likelihood needs"):
        generate_queries(corpus, "p", client_replying([]), GenerateOptions(best_of=2, limit=1))


def test_a_passage_too_long_for_the_context_is_flagged_and_the_run_goes_on(corpus):
    client = client_replying([])
    real = client.litellm.completion
    calls = {"n": 0}

    def second_too_long(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise litellm.ContextWindowExceededError(
                message="prompt of 9000 tokens exceeds the context",
                model="gpt-4o-mini",
                llm_provider="openai",
            )
        return real(**kwargs)

    client.litellm.completion = second_too_long
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=3))
    assert (report.ok, report.errors, report.parse_failed) == (2, 1, 0)
    flagged = [r for r in rows(corpus) if r.status == "error"]
    assert len(flagged) == 1 and "too long for the model's context" in flagged[0].error
    retried = generate_queries(
        corpus, "p", client_replying([]), GenerateOptions(limit=1, retry_failed=True)
    )
    assert retried.ok == 1
    assert [r.status for r in rows(corpus) if r.id == flagged[0].id] == ["ok"]


def test_an_unexpected_error_marks_the_run_failed_not_interrupted(corpus, monkeypatch):
    import curator.services.generate as generate_module

    def broken_store(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(generate_module, "_store", broken_store)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_queries(corpus, "p", client_replying([]), GenerateOptions(limit=1))
    with corpus.sessions() as session:
        run = session.scalar(select(PipelineRun).order_by(PipelineRun.id.desc()))
    assert (run.status, run.error) == ("failed", "disk full")
    assert run.finished_at is not None


def test_a_long_passage_is_cut_and_the_cut_is_noted(database, tmp_path):
    long_text = " ".join(f"word{i}" for i in range(500))
    ingest_path(
        database,
        "p",
        write(
            tmp_path / "c.jsonl",
            json.dumps({"_id": "long", "title": "Long", "text": long_text}) + "\n",
        ),
    )
    report = generate_queries(
        database, "p", client_replying([]), GenerateOptions(max_passage_words=100)
    )
    assert report.truncated == 1
    note = json.loads(rows(database)[0].note)
    assert note["truncated"] == "passage cut from 500 to 100 words"


def test_a_copy_of_the_passage_is_resampled_and_a_clean_draw_kept(corpus):
    copy = GOOD.format("Passage text number 0")  # the passage's own words
    client = client_replying([copy, GOOD.format("what does the zeroth item say")], concurrency=1)
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=1))
    assert (report.ok, report.resampled, report.flagged) == (1, 1, {})
    [stored] = rows(corpus)
    assert stored.query == "what does the zeroth item say"
    draws = json.loads(stored.note)["draws"]
    assert "copy" in draws[0]["flags"] and draws[1]["flags"] == {}


def test_a_query_still_flagged_after_resampling_is_stored_with_its_flag(corpus):
    from curator.services.training_set import load_training_set
    from db.models import QueryFlag

    copies = [GOOD.format("Title 0 Passage text number 0")] * 3
    report = generate_queries(
        corpus, "p", client_replying(copies, concurrency=1), GenerateOptions(limit=1)
    )
    assert report.ok == 1 and report.flagged == {"copy": 1} and report.resampled == 2
    with corpus.sessions() as session:
        [flag] = session.scalars(select(QueryFlag)).all()
    assert flag.kind == "copy" and "span of the passage" in flag.reason
    # the label-free policy leaves it out and says why
    assert load_training_set(corpus, "p", "all").dropped == {"flagged_copy": 1}


def test_the_same_query_for_two_passages_is_flagged_duplicate(corpus):
    same = [GOOD.format("what is the number of this item")] * 2
    report = generate_queries(
        corpus, "p", client_replying(same, concurrency=1), GenerateOptions(limit=2)
    )
    assert report.flagged == {"duplicate": 1}


def test_accepted_and_edited_queries_become_the_examples_of_later_runs(corpus):
    from curator.services.annotate import annotator_id, record_judgment

    generate_queries(
        corpus,
        "p",
        client_replying([GOOD.format(f"machine query {i}") for i in range(3)], concurrency=1),
        GenerateOptions(limit=3),
    )
    first = rows(corpus)
    annotator_id(corpus, "ann")
    for row in first:
        record_judgment(
            corpus,
            row.id,
            "ann",
            "override",
            positives=[row.seed_passage_id],
            edited_query=f"curated wording {row.id}",
        )
    prompts = []
    client = client_replying([], concurrency=1)
    completion = client._litellm.completion

    def recording(**kwargs):
        prompts.append(kwargs["messages"][0]["content"])
        return completion(**kwargs)

    client._litellm.completion = recording
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=1))
    assert report.examples.startswith("curated")
    assert "curated wording" in prompts[0] and "great barrier reef" not in prompts[0].lower()
    later = rows(corpus)[-1]
    assert later.examples_version and later.examples_version != first[0].examples_version


def test_a_second_run_that_planned_the_same_passages_stores_nothing_twice(corpus, monkeypatch):
    """Two `curator generate` on one data folder, the second planned before the first
    stored: it used to die with IntegrityError; now the first run's rows stand."""
    import curator.services.generate as generate

    real_plan, plans = generate._plan, []

    def plan(*args):
        if not plans:
            plans.append(real_plan(*args))
        return plans[0]  # the second run sees the plan made before the first stored

    monkeypatch.setattr(generate, "_plan", plan)
    first = generate_queries(corpus, "p", client_replying([]), GenerateOptions(limit=3))
    before = [(r.id, r.query) for r in rows(corpus)]
    second = generate_queries(
        corpus, "p", client_replying([GOOD.format("another query text")]), GenerateOptions(limit=3)
    )
    assert first.ok == 3 and (second.ok, second.already_done) == (0, 3)
    assert [(r.id, r.query) for r in rows(corpus)] == before


def test_a_reply_that_stops_after_its_task_is_asked_for_the_query(corpus):
    task = " Given a claim, retrieve documents that support or refute it."
    client = client_replying([task, " passage zero is about numbers"], concurrency=1)
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=1, resample=0))
    assert (report.ok, report.parse_failed, report.resampled) == (1, 0, 0)
    [stored] = rows(corpus)
    assert (stored.status, stored.task, stored.query) == (
        "ok",
        "Given a claim, retrieve documents that support or refute it.",
        "passage zero is about numbers",
    )
    assert stored.raw_output == f"{task}\nQuery: passage zero is about numbers"
    assert client.usage.requests == 2


def test_a_bad_reply_to_the_query_prompt_is_stored_raw_as_a_parse_failure(corpus):
    task = " Given a claim, retrieve documents that support or refute it."
    client = client_replying([task, ""], concurrency=1)
    report = generate_queries(corpus, "p", client, GenerateOptions(limit=1, resample=0))
    assert (report.ok, report.parse_failed) == (0, 1)
    [stored] = rows(corpus)
    assert stored.status == "parse_failed" and stored.raw_output == f"{task}\nQuery:"
    assert stored.error == "empty query (asked again after the task line)"
