"""LiteLLM custom provider `local/...` backed by `workbench.providers.local.gguf` (llama.cpp in-process).

Registered by `workbench.providers.completion.ensure_litellm()`. Generation runs in a worker thread; the
async paths hand chunks to the event loop through a queue so the loop never blocks on llama.cpp.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import GenericStreamingChunk, ModelResponse

from workbench.errors import ModelUnavailableError
from workbench.providers.local.gguf import ContextLengthExceeded, Generation, get_local_model

SUPPORTED = ("max_tokens", "temperature", "top_p", "stop", "seed")


def _gen_kwargs(optional_params: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: optional_params.get(k) for k in SUPPORTED if optional_params.get(k) is not None}
    if "max_tokens" not in kwargs and optional_params.get("max_completion_tokens"):
        kwargs["max_tokens"] = optional_params["max_completion_tokens"]  # DSPy's native spelling
    return kwargs


def _iterate(
    model: str,
    messages: list[dict[str, Any]],
    optional_params: dict[str, Any],
    cancel: threading.Event | None = None,
) -> Iterator[tuple[str, Generation]]:
    try:
        local = get_local_model(model)
        msgs = [{"role": m["role"], "content": _text(m.get("content"))} for m in messages]
        yield from local.stream(msgs, cancel=cancel, **_gen_kwargs(optional_params))
    except ContextLengthExceeded as exc:
        raise CustomLLMError(status_code=400, message=f"context length exceeded: {exc}") from None
    except ModelUnavailableError as exc:
        raise CustomLLMError(status_code=404, message=str(exc)) from None


def _text(content: Any) -> str:
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _usage(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def _chunk(text: str, gen: Generation | None, finished: bool) -> GenericStreamingChunk:
    return GenericStreamingChunk(
        text=text,
        tool_use=None,
        is_finished=finished,
        finish_reason=(gen.finish_reason or "stop") if finished and gen else "",
        usage=_usage(gen) if finished and gen else None,
        index=0,
    )


class LocalProvider(CustomLLM):
    """The `local` LiteLLM provider."""

    def completion(
        self,
        model: str,
        messages: list,
        api_base: str,
        custom_prompt_dict: dict,
        model_response: ModelResponse,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict,
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> ModelResponse:
        """Generate the whole reply, then answer with usage."""
        gen = Generation()
        for _piece, latest in _iterate(model, messages, optional_params):
            gen = latest
        model_response.choices[0].message.content = gen.text  # type: ignore[union-attr]
        model_response.choices[0].finish_reason = gen.finish_reason or "stop"
        model_response.id = f"local-{uuid.uuid4().hex[:16]}"
        model_response.created = int(time.time())
        model_response.model = f"local/{model}"
        from litellm.types.utils import Usage

        model_response.usage = Usage(**_usage(gen))  # type: ignore[attr-defined]
        return model_response

    def streaming(
        self,
        model: str,
        messages: list,
        api_base: str,
        custom_prompt_dict: dict,
        model_response: ModelResponse,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict,
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> Iterator[GenericStreamingChunk]:
        """Yield the reply as it is generated; the last chunk carries finish_reason and usage."""
        gen = None
        for piece, gen in _iterate(model, messages, optional_params):
            if piece:
                yield _chunk(piece, gen, False)
        yield _chunk("", gen, True)

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """`completion` in a worker thread, so the event loop never blocks on llama.cpp."""
        return await asyncio.to_thread(self.completion, *args, **kwargs)

    async def astreaming(
        self,
        model: str,
        messages: list,
        api_base: str,
        custom_prompt_dict: dict,
        model_response: ModelResponse,
        print_verbose: Any,
        encoding: Any,
        api_key: Any,
        logging_obj: Any,
        optional_params: dict,
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> AsyncIterator[GenericStreamingChunk]:
        """`streaming` from a worker thread through a queue; leaving early stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        done = object()

        def produce() -> None:
            gen = None
            try:
                for piece, gen in _iterate(model, messages, optional_params, cancel):
                    if piece:
                        loop.call_soon_threadsafe(queue.put_nowait, _chunk(piece, gen, False))
                loop.call_soon_threadsafe(queue.put_nowait, _chunk("", gen, True))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        worker = loop.run_in_executor(None, produce)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # the consumer left early (timeout, cancel): stop generating
            await asyncio.shield(worker)
