"""The litellm client on the remote-provider path, through litellm's mock_response."""

from __future__ import annotations

import litellm
import pytest

from curator.llm.cache import ResponseCache
from curator.llm.client import LLMClient, LLMError, LLMSettings
from curator.llm.likelihood import QueryLikelihoodUnsupported, log_likelihood

MESSAGES = [{"role": "user", "content": "Passage: x\nTask:"}]


def remote(reply="Task: t\nQuery: q", **kwargs) -> LLMSettings:
    return LLMSettings(model="openai/gpt-4o-mini", extra={"mock_response": reply}, **kwargs)


def test_remote_reply_usage_and_cost():
    client = LLMClient(remote(" A task.\nQuery: a query"))
    completion = client.complete(MESSAGES)
    assert completion.text == " A task.\nQuery: a query"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    assert completion.cost > 0  # priced from litellm's bundled cost map, no network
    usage = client.usage.as_dict()
    assert usage["requests"] == 1 and usage["cost_usd"] > 0


def test_cache_makes_a_rerun_free(tmp_path):
    cache = ResponseCache(tmp_path / "llm.sqlite")
    first = LLMClient(remote(), cache)
    first.complete(MESSAGES, seed=1)
    again = LLMClient(remote(), ResponseCache(tmp_path / "llm.sqlite"))  # a new process
    completion = again.complete(MESSAGES, seed=1)
    assert completion.cached and completion.text == "Task: t\nQuery: q"
    assert again.usage.as_dict()["cost_usd"] == 0 and again.usage.cache_hits == 1
    again.complete(MESSAGES, seed=2)  # another seed is another request
    assert again.usage.cache_hits == 1 and len(cache) == 2


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            litellm.AuthenticationError(
                message="Incorrect API key provided", llm_provider="openai", model="gpt-4o-mini"
            ),
            "authentication",
        ),
        (
            litellm.NotFoundError(
                message="The model does not exist", llm_provider="openai", model="gpt-4o-mini"
            ),
            "not_found",
        ),
    ],
)
def test_permanent_errors_are_reported_with_the_provider_message(error, kind):
    client = LLMClient(remote(error), sleep=lambda s: pytest.fail("must not retry"))
    with pytest.raises(LLMError) as info:
        client.complete(MESSAGES)
    assert info.value.kind == kind and not info.value.retryable
    assert error.message in str(info.value)


def test_unknown_provider_is_not_found():
    with pytest.raises(LLMError) as info:
        LLMClient(LLMSettings(model="nosuchprovider/model")).complete(MESSAGES)
    assert info.value.kind == "not_found"


def test_rate_limits_and_timeouts_are_retried_with_backoff(monkeypatch):
    client = LLMClient(remote(retries=3, backoff=1.0), sleep=(delays := []).append)
    real = client.litellm.completion
    failures = [
        litellm.RateLimitError(message="slow down", llm_provider="openai", model="gpt-4o-mini"),
        litellm.Timeout(message="timed out", llm_provider="openai", model="gpt-4o-mini"),
    ]

    def flaky(**kwargs):
        if failures:
            raise failures.pop(0)
        return real(**kwargs)

    monkeypatch.setattr(client.litellm, "completion", flaky)
    assert client.complete(MESSAGES).text == "Task: t\nQuery: q"
    assert len(delays) == 2 and delays[1] > delays[0] * 0.9  # exponential, with jitter
    assert client.usage.retries == 2


def test_retries_give_up_with_a_clear_error(monkeypatch):
    client = LLMClient(remote(retries=2, backoff=0.01), sleep=lambda s: None)

    def always(**kwargs):
        raise litellm.RateLimitError(
            message="quota exceeded", llm_provider="openai", model="gpt-4o-mini"
        )

    monkeypatch.setattr(client.litellm, "completion", always)
    with pytest.raises(LLMError, match=r"rate_limit .*quota exceeded"):
        client.complete(MESSAGES)
    assert client.usage.retries == 2


def test_map_runs_remote_calls_concurrently_and_returns_every_item():
    client = LLMClient(remote(concurrency=4))
    results = dict(client.map(lambda n: n * n, range(25)))
    assert results == {n: n * n for n in range(25)}


def test_query_likelihood_needs_a_local_model():
    with pytest.raises(QueryLikelihoodUnsupported, match="log-probabilities of prompt tokens"):
        log_likelihood(remote(), "Passage: x\nQuery:", " q")


def test_importing_the_client_does_not_import_litellm():
    import subprocess
    import sys

    probe = (
        "import sys, curator.llm.client, curator.services.generate;print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_query_likelihood_from_an_openai_compatible_server(completions_server):
    from conftest import FakeCompletionsServer

    settings = LLMSettings(model="openai/served-model", api_base=completions_server.url)
    total, tokens = log_likelihood(settings, "Passage: tea leaves\nQuery:", " green tea")
    assert tokens == 2 and total == pytest.approx(-0.1 * (5 + 3))  # " green", " tea"
    request = completions_server.requests[-1]
    assert request["echo"] is True and request["logprobs"] == 1
    assert request["prompt"] == "Passage: tea leaves\nQuery: green tea"

    silent = FakeCompletionsServer(logprobs=False)
    try:
        with pytest.raises(QueryLikelihoodUnsupported, match="vLLM"):
            log_likelihood(LLMSettings(model="openai/m", api_base=silent.url), "a b", " c")
    finally:
        silent.close()
