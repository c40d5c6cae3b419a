"""Build the LLM client a stage uses: local model folder, thread counts, reply cache,
and the API key of a remote provider."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from curator.llm.cache import ResponseCache
from curator.llm.client import LLMClient, LLMSettings


def open_llm(
    data_dir: Path,
    settings: LLMSettings,
    *,
    threads: int | None = None,
    use_cache: bool = True,
) -> LLMClient:
    """An LLMClient whose local models live in ``<data dir>/models`` and whose replies are
    cached in ``<data dir>/cache/llm.sqlite`` (``use_cache=False`` turns the cache off);
    the API key is resolved by :func:`with_api_key`."""
    from curator.llm.local import configure_local, default_threads

    settings = with_api_key(settings)
    n = threads or default_threads()
    configure_local(models_dir=data_dir / "models", n_threads=n, n_threads_batch=n)
    cache = ResponseCache(data_dir / "cache" / "llm.sqlite") if use_cache else None
    return LLMClient(settings, cache)


DEFAULT_MODEL = "local/gemma3-270m"


def rerank_llm_settings(
    model: str | None = None,
    api_base: str | None = None,
    *,
    timeout: float = 120.0,
    api_key: str | None = None,
) -> LLMSettings:
    """The LLM settings of a rerank, the same from the CLI and the app (so one action has
    one reply-cache key): greedy (temperature 0), at most 3 tokens (a yes/no answer; the
    query likelihood reads logits, not text), one request at a time. An empty ``model``
    means the embedded local model; ``timeout`` (seconds per request) and ``api_key`` are
    for remote providers."""
    return LLMSettings(
        model=(model or "").strip() or DEFAULT_MODEL,
        temperature=0.0,
        max_tokens=3,
        concurrency=1,
        timeout=timeout,
        api_base=api_base or None,
        api_key=api_key or None,
    )


#: a placeholder key for a local OpenAI-compatible server that checks none (litellm's
#: OpenAI client refuses to send a request without some key)
NO_KEY = "no-key-needed"


def with_api_key(settings: LLMSettings, environ: dict[str, str] | None = None) -> LLMSettings:
    """``settings`` with the API key to send: the one given (``--api-key``), else
    ``CURATOR_API_KEY``, else, for an ``api_base`` server whose provider's own variable
    (``OPENAI_API_KEY`` for ``openai/...``) is unset, a placeholder: a local server needs
    no key. Otherwise None, and litellm reads the provider's variable itself."""
    env = os.environ if environ is None else environ
    if settings.is_local:
        return settings
    key = settings.api_key or env.get("CURATOR_API_KEY") or None
    if key is None and settings.api_base:
        provider_variable = f"{settings.provider.upper()}_API_KEY"
        if not env.get(provider_variable):
            key = NO_KEY
    return replace(settings, api_key=key) if key != settings.api_key else settings
