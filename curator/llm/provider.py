"""litellm custom provider ``local/...`` backed by the embedded llama.cpp model.

Registered by *appending* to ``litellm.custom_provider_map`` (assigning the list would
drop other users' providers). Messages are joined into one plain-text prompt: the
packaged model is a base model without a chat template.
"""

from __future__ import annotations

from typing import Any

PROVIDER = "local"
_registered = False


def messages_to_prompt(messages: list[dict[str, Any]]) -> str:
    """The plain-text prompt for a base model: message contents joined by blank lines."""
    return "\n\n".join(str(m.get("content") or "") for m in messages if m.get("content"))


def register_local_provider() -> None:
    """Make ``local/<model>`` available to ``litellm.completion`` (idempotent)."""
    global _registered
    if _registered:
        return
    import litellm
    from litellm import CustomLLM
    from litellm.types.utils import Choices, Message, Usage

    from curator.llm.local import LocalModelError, get_local_model

    class LocalLlamaProvider(CustomLLM):
        def completion(self, model: str, messages: list, *args, **kwargs):
            params = kwargs.get("optional_params") or {}
            response = kwargs["model_response"]
            local = get_local_model(model)
            stop = params.get("stop")
            try:
                result = local.complete(
                    messages_to_prompt(messages),
                    max_tokens=int(params.get("max_tokens") or 64),
                    temperature=float(params.get("temperature", 0.3)),
                    top_p=float(params.get("top_p", 0.95)),
                    stop=[stop] if isinstance(stop, str) else list(stop or []),
                    seed=params.get("seed"),
                )
            except LocalModelError as exc:
                error_type = (
                    litellm.NotFoundError
                    if exc.not_found
                    else litellm.ContextWindowExceededError
                    if exc.context
                    else litellm.BadRequestError
                )
                raise error_type(
                    message=str(exc), model=f"{PROVIDER}/{model}", llm_provider=PROVIDER
                ) from exc
            response.choices = [
                Choices(
                    index=0,
                    finish_reason=result.finish_reason,
                    message=Message(role="assistant", content=result.text),
                )
            ]
            response.model = f"{PROVIDER}/{model}"
            response.usage = Usage(
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
            )
            return response

        async def acompletion(self, model: str, messages: list, *args, **kwargs):
            import asyncio

            return await asyncio.to_thread(self.completion, model, messages, *args, **kwargs)

    if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map.append(
            {"provider": PROVIDER, "custom_handler": LocalLlamaProvider()}
        )
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    _registered = True
