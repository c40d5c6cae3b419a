"""Query likelihood with the model behind an LLM setting.

Local GGUF models compute it from their logits (see ``curator.llm.local``). Remote
providers need prompt log-probabilities, which chat APIs (OpenAI, Anthropic) do not
return; those calls raise an LLMError that says so.
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
            "local/<file>.gguf) for QL scoring",
            retryable=False,
        )


def log_likelihood(settings: LLMSettings, prefix: str, continuation: str) -> tuple[float, int]:
    """(sum of log-probabilities of ``continuation``'s tokens after ``prefix``, token count)."""
    if not settings.is_local:
        raise QueryLikelihoodUnsupported(settings.model)
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
