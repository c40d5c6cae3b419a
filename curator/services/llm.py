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
