"""One LLM client over litellm: any provider by model string, retries, cache, usage.

``LLMSettings.model`` picks the provider: ``local/gemma3-270m`` (embedded, default),
``openai/gpt-4o-mini``, ``anthropic/claude-...``, ``ollama/llama3``, or any
OpenAI-compatible server (vLLM...) with ``openai/<name>`` and ``api_base``.

litellm is imported lazily (it takes seconds) with ``LITELLM_LOCAL_MODEL_COST_MAP=True``
set first, so importing it makes no network call.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from curator.llm.cache import ResponseCache, request_key

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
#: the longest model name stored (``model`` columns are 300 characters; the same as
#: ``db.limits.MAX_MODEL_CHARS``, which this layer may not import)
MAX_MODEL_CHARS = 300


@dataclass(frozen=True)
class LLMSettings:
    """How to call the LLM. ``concurrency`` applies to remote providers only."""

    model: str = "local/gemma3-270m"
    temperature: float = 0.3
    top_p: float = 0.95
    max_tokens: int = 64
    timeout: float = 120.0
    retries: int = 3
    backoff: float = 2.0
    concurrency: int = 4
    api_base: str | None = None
    api_key: str | None = None
    # extra keyword arguments for every litellm.completion call (e.g. mock_response in tests)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        model = self.model.strip() if isinstance(self.model, str) else ""
        if not model:
            raise ValueError("a model name is required (e.g. local/gemma3-270m, openai/...)")
        if len(self.model) > MAX_MODEL_CHARS:
            raise ValueError(
                f"the model name is {len(self.model):,} characters long; "
                f"at most {MAX_MODEL_CHARS} are allowed"
            )
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")

    @property
    def is_local(self) -> bool:
        return self.model.startswith("local/")

    @property
    def provider(self) -> str:
        """The litellm provider prefix (``openai`` for ``openai/x``), or "" without one."""
        return self.model.split("/", 1)[0] if "/" in self.model else ""

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for run records."""
        values = asdict(self)
        values.pop("api_key")
        return values


@dataclass(kw_only=True)
class TokenCost:
    """Tokens sent and received, and what they cost in US dollars (0 when unknown)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


@dataclass
class Completion(TokenCost):
    """One reply: its text and what it cost."""

    text: str
    model: str
    cached: bool = False


@dataclass
class Usage(TokenCost):
    """Running totals for a run, safe to update from several threads."""

    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, completion: Completion) -> None:
        with self._lock:
            self.requests += 1
            if completion.cached:
                self.cache_hits += 1
                return
            self.prompt_tokens += completion.prompt_tokens
            self.completion_tokens += completion.completion_tokens
            self.cost += completion.cost

    def as_dict(self) -> dict[str, Any]:
        counted = ("requests", "cache_hits", "prompt_tokens", "completion_tokens")
        return {
            **{name: getattr(self, name) for name in counted},
            "cost_usd": round(self.cost, 6),
            "retries": self.retries,
        }


class LLMError(RuntimeError):
    """A provider error, classified. ``retryable`` errors were retried before this was raised."""

    def __init__(self, kind: str, model: str, message: str, retryable: bool) -> None:
        self.kind = kind
        self.model = model
        self.provider_message = message
        self.retryable = retryable
        hint = _HINTS.get(kind, "")
        super().__init__(f"{kind} from {model}: {message}{hint}")


_HINTS = {
    "authentication": " (check the provider's API key environment variable, e.g. OPENAI_API_KEY)",
    "not_found": " (check the model name; local models are local/gemma3-270m or local/<file>.gguf)",
    "rate_limit": " (retried with backoff; lower --concurrency or try later)",
    "timeout": " (retried; raise --timeout for slow providers)",
}


def classify_error(exc: BaseException, model: str) -> LLMError:
    """Map litellm/openai exceptions to an LLMError kind."""
    import litellm

    kinds: list[tuple[type[BaseException], str, bool]] = [
        (litellm.AuthenticationError, "authentication", False),
        (litellm.PermissionDeniedError, "authentication", False),
        (litellm.NotFoundError, "not_found", False),
        (litellm.RateLimitError, "rate_limit", True),
        (litellm.Timeout, "timeout", True),
        (litellm.ContextWindowExceededError, "context_window", False),
        (litellm.BadRequestError, "bad_request", False),
        (litellm.APIConnectionError, "connection", True),
        (litellm.ServiceUnavailableError, "unavailable", True),
        (litellm.InternalServerError, "server_error", True),
    ]
    full = getattr(exc, "message", None) or str(exc)
    message = one_line(full)
    if message != full:  # litellm appends tracebacks and bug-report links: log, never show
        log.debug("%s from %s, in full: %s", type(exc).__name__, model, full)
    for exc_type, kind, retryable in kinds:
        if isinstance(exc, exc_type):
            if kind == "bad_request" and "LLM Provider NOT provided" in message:
                return LLMError("not_found", model, message, False)
            return LLMError(kind, model, message, retryable)
    return LLMError("error", model, f"{type(exc).__name__}: {message}", False)


MAX_MESSAGE_CHARS = 500


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The first non-empty line of ``text`` (a provider's message), at most ``limit``
    characters: what a user is shown; the rest (tracebacks) goes to the log."""
    first = next((line.strip() for line in str(text).splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _import_litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LLMClient:
    """Calls the model in ``settings``; replies are cached by request hash when a cache is given."""

    def __init__(
        self,
        settings: LLMSettings,
        cache: ResponseCache | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.usage = Usage()
        self._sleep = sleep
        self._litellm = None

    @property
    def litellm(self):
        if self._litellm is None:
            self._litellm = _import_litellm()
            if self.settings.is_local:
                from curator.llm.provider import register_local_provider

                register_local_provider()
        return self._litellm

    def complete(
        self,
        messages: Messages,
        *,
        seed: int | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
        refresh: bool = False,
        **extra: Any,
    ) -> Completion:
        """One reply to ``messages``; raises LLMError after retries are exhausted.
        ``refresh=True`` asks the model even when the cache holds a reply (and caches
        the new one): a retry of a failed reply must not get the same reply back."""
        s = self.settings
        params: dict[str, Any] = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": max_tokens or s.max_tokens,
        }
        if seed is not None:
            params["seed"] = seed
        if stop:
            params["stop"] = stop
        params.update(s.extra)
        params.update(extra)
        key = request_key(
            {"model": s.model, "api_base": s.api_base, "messages": messages, **params}
        )
        if self.cache is not None and not refresh:
            hit = self.cache.get(key)
            if hit is not None:
                completion = Completion(**{**hit, "cached": True})
                self.usage.add(completion)
                return completion
        completion = self._call_with_retries(messages, params)
        if self.cache is not None:
            self.cache.put(key, {k: v for k, v in asdict(completion).items() if k != "cached"})
        self.usage.add(completion)
        return completion

    def _call_with_retries(self, messages: Messages, params: dict[str, Any]) -> Completion:
        s = self.settings
        litellm = self.litellm
        attempt = 0
        while True:
            try:
                response = litellm.completion(
                    model=s.model,
                    messages=messages,
                    timeout=s.timeout,
                    api_base=s.api_base,
                    api_key=s.api_key,
                    num_retries=0,
                    **params,
                )
                return self._to_completion(response)
            except Exception as exc:
                error = classify_error(exc, s.model)
                if not error.retryable or attempt >= s.retries:
                    raise error from exc
                delay = s.backoff * (2**attempt) * (0.5 + random.random() / 2)
                log.warning("%s; retry %d/%d in %.1f s", error, attempt + 1, s.retries, delay)
                with self.usage._lock:
                    self.usage.retries += 1
                self._sleep(delay)
                attempt += 1

    def _to_completion(self, response) -> Completion:
        usage = getattr(response, "usage", None)
        cost = 0.0
        if not self.settings.is_local:
            try:
                cost = float(self.litellm.completion_cost(completion_response=response) or 0.0)
            except Exception:  # unknown price: cost stays 0 and is said to be unknown
                cost = 0.0
        return Completion(
            text=response.choices[0].message.content or "",
            model=getattr(response, "model", None) or self.settings.model,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost=cost,
        )

    def map(
        self, function: Callable[[Any], Any], items: Iterable[Any]
    ) -> Iterator[tuple[Any, Any]]:
        """Yield (item, function(item)) as they finish: one at a time for the local model,
        up to ``concurrency`` at once for remote providers. An exception ends the iteration."""
        workers = 1 if self.settings.is_local else max(1, self.settings.concurrency)
        if workers == 1:
            for item in items:
                yield item, function(item)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending: dict[Any, Any] = {}
            iterator = iter(items)
            try:
                for item in iterator:
                    pending[pool.submit(function, item)] = item
                    if len(pending) >= workers * 2:
                        break
                while pending:
                    done = next(iter(_as_completed(pending)))
                    item = pending.pop(done)
                    yield item, done.result()
                    for nxt in iterator:
                        pending[pool.submit(function, nxt)] = nxt
                        break
            finally:
                for future in pending:
                    future.cancel()


def _as_completed(futures):
    from concurrent.futures import FIRST_COMPLETED, wait

    done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
    return done
