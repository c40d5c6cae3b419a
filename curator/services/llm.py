"""Build the LLM client a stage uses: local model folder, thread counts, reply cache."""

from __future__ import annotations

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
    cached in ``<data dir>/cache/llm.sqlite`` (``use_cache=False`` turns the cache off)."""
    from curator.llm.local import configure_local, default_threads

    n = threads or default_threads()
    configure_local(models_dir=data_dir / "models", n_threads=n, n_threads_batch=n)
    cache = ResponseCache(data_dir / "cache" / "llm.sqlite") if use_cache else None
    return LLMClient(settings, cache)


DEFAULT_MODEL = "local/gemma3-270m"


def rerank_llm_settings(model: str | None = None, api_base: str | None = None) -> LLMSettings:
    """The LLM settings of a rerank, the same from the CLI and the app (so one action has
    one reply-cache key): greedy (temperature 0), at most 3 tokens (a yes/no answer; the
    query likelihood reads logits, not text), one request at a time. An empty ``model``
    means the embedded local model."""
    return LLMSettings(
        model=(model or "").strip() or DEFAULT_MODEL,
        temperature=0.0,
        max_tokens=3,
        concurrency=1,
        api_base=api_base or None,
    )
