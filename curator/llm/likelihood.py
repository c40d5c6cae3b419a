"""Query likelihood with the model behind an LLM setting.

- Local GGUF models compute it from their logits (see ``curator.llm.local``).
- An OpenAI-compatible server given by ``api_base`` (vLLM, for one) is asked for the
  prompt's token log-probabilities (``/v1/completions`` with ``echo=True, logprobs=1``);
  the tokens that start inside the continuation are summed. A token straddling the
  boundary between prefix and continuation is left out.
- Chat APIs (OpenAI, Anthropic...) return no prompt log-probabilities: an LLMError says so.
"""

from __future__ import annotations

from curator.llm.client import LLMError, LLMSettings


class QueryLikelihoodUnsupported(LLMError):
    def __init__(self, model: str) -> None:
        super().__init__(
            "unsupported",
            model,
            "query likelihood needs the log-probabilities of prompt tokens, which this "
            "provider does not return; use a local model (local/gemma3-270m or "
            "local/<file>.gguf) or an OpenAI-compatible server that echoes prompt "
            "log-probabilities (vLLM: --model openai/<name> --api-base http://host:8000/v1) "
            "for QL scoring",
            retryable=False,
        )


def supports_query_likelihood(settings: LLMSettings) -> bool:
    """Local models do; an OpenAI-compatible ``api_base`` may (it is asked); others do not."""
    return settings.is_local or bool(settings.api_base)


def log_likelihood(settings: LLMSettings, prefix: str, continuation: str) -> tuple[float, int]:
    """(sum of log-probabilities of ``continuation``'s tokens after ``prefix``, token count)."""
    if not settings.is_local:
        if not settings.api_base:
            raise QueryLikelihoodUnsupported(settings.model)
        return _server_log_likelihood(settings, prefix, continuation)
    from curator.llm.local import get_local_model

    return get_local_model(settings.model.removeprefix("local/")).log_likelihood(
        prefix, continuation
    )


def yes_no_log_odds(settings: LLMSettings, prefix: str) -> float:
    """``log P(" yes") - log P(" no")`` as the next word after ``prefix`` (local models)."""
    from curator.pipeline.rerank import NO, YES

    yes, _ = log_likelihood(settings, prefix, YES)
    no, _ = log_likelihood(settings, prefix, NO)
    return yes - no


def _server_log_likelihood(
    settings: LLMSettings, prefix: str, continuation: str
) -> tuple[float, int]:
    from curator.llm.client import _import_litellm, classify_error

    litellm = _import_litellm()
    try:
        response = litellm.text_completion(
            model=settings.model,
            api_base=settings.api_base,
            api_key=settings.api_key or "none",
            prompt=prefix + continuation,
            echo=True,
            logprobs=1,
            max_tokens=1,
            temperature=0,
            timeout=settings.timeout,
        )
    except Exception as exc:
        raise classify_error(exc, settings.model) from exc
    logprobs = getattr(response.choices[0], "logprobs", None)
    offsets = getattr(logprobs, "text_offset", None) or []
    values = getattr(logprobs, "token_logprobs", None) or []
    start, end = len(prefix), len(prefix) + len(continuation)
    scored = [
        v
        for offset, v in zip(offsets, values, strict=False)
        if start <= offset < end and v is not None
    ]
    if not scored:
        raise QueryLikelihoodUnsupported(settings.model)
    return float(sum(scored)), len(scored)
