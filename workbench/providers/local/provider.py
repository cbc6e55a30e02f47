"""LiteLLM custom provider `local/...` backed by `workbench.providers.local.gguf` (llama.cpp in-process).

Registered by `workbench.providers.completion.ensure_litellm()`. Generation runs on the llama.cpp
thread (`gguf.llama_thread`); the async paths await it, and streaming hands each chunk straight from
that thread to the event loop, so the loop never blocks on llama.cpp and no other thread sits between.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from typing import Any

from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError
from litellm.types.utils import GenericStreamingChunk, ModelResponse

from workbench.errors import ModelUnavailableError
from workbench.providers.local.gguf import (
    ContextLengthExceeded,
    Emit,
    Generation,
    UnsupportedSchema,
    get_local_model,
)

SUPPORTED = ("max_tokens", "temperature", "top_p", "stop", "seed", "response_format")
TOOLS_UNSUPPORTED = (
    "The embedded local models cannot call tools (they follow a JSON response format, not function "
    "definitions): use a model that supports tool calls for a version with tools."
)


def _gen_kwargs(optional_params: dict[str, Any]) -> dict[str, Any]:
    if optional_params.get("tools") and optional_params.get("tool_choice") != "none":
        raise CustomLLMError(status_code=400, message=TOOLS_UNSUPPORTED)
    kwargs = {k: optional_params.get(k) for k in SUPPORTED if optional_params.get(k) is not None}
    if "max_tokens" not in kwargs and optional_params.get("max_completion_tokens"):
        kwargs["max_tokens"] = optional_params["max_completion_tokens"]  # DSPy's native spelling
    return kwargs


@contextlib.contextmanager
def _provider_errors() -> Iterator[None]:
    # LiteLLM turns a CustomLLMError's status code into its exception class; the workbench then
    # classifies that like any provider's (context_length, not_found).
    try:
        yield
    except ContextLengthExceeded as exc:
        raise CustomLLMError(status_code=400, message=f"context length exceeded: {exc}") from None
    except ModelUnavailableError as exc:
        raise CustomLLMError(status_code=404, message=str(exc)) from None
    except UnsupportedSchema as exc:
        raise CustomLLMError(status_code=400, message=str(exc)) from None


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Plain role + text messages: a conversation's tool calls and tool results become text (the
    embedded models' chat templates know no tools)."""
    out = []
    for m in messages:
        role, text = m["role"], _text(m.get("content"))
        calls = [c.get("function") or {} for c in m.get("tool_calls") or []]
        if calls:
            lines = [f"Tool call: {fn.get('name')}({fn.get('arguments') or ''})" for fn in calls]
            text = "\n".join([text, *lines] if text else lines)
        if role == "tool":
            role, text = "user", f"Tool result: {text}"
        out.append({"role": role, "content": text})
    return out


def _iterate(
    model: str, messages: list[dict[str, Any]], optional_params: dict[str, Any]
) -> Iterator[tuple[str, Generation]]:
    with _provider_errors():
        local = get_local_model(model)
        yield from local.stream(_messages(messages), **_gen_kwargs(optional_params))


def _start(
    model: str,
    messages: list[dict[str, Any]],
    optional_params: dict[str, Any],
    emit: Emit | None = None,
    cancel: threading.Event | None = None,
) -> Future[Generation]:
    with _provider_errors():
        local = get_local_model(model)
    return local.generate(_messages(messages), emit=emit, cancel=cancel, **_gen_kwargs(optional_params))


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
        with _provider_errors():
            gen = _start(model, messages, optional_params).result()
        return _respond(model_response, model, gen)

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

    async def acompletion(
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
        """`completion` awaited from the llama.cpp thread; a cancelled call stops generating."""
        cancel = threading.Event()
        try:
            with _provider_errors():
                gen = await asyncio.wrap_future(_start(model, messages, optional_params, cancel=cancel))
        finally:
            cancel.set()
        return _respond(model_response, model, gen)

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
        """`streaming`, each chunk posted from the llama.cpp thread to the loop; leaving early stops it."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        done = object()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(chunks.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                cancel.set()

        def emit(piece: str, gen: Generation) -> None:
            if piece:
                post(_chunk(piece, gen, False))

        future = _start(model, messages, optional_params, emit, cancel)
        future.add_done_callback(lambda _f: post(done))  # after every chunk: both go through the loop
        try:
            while (item := await chunks.get()) is not done:
                yield item
            with _provider_errors():
                gen = future.result()
            yield _chunk("", gen, True)
        finally:
            cancel.set()  # the consumer left early (timeout, cancel): stop generating
            if not future.done():
                with contextlib.suppress(Exception):  # its outcome no longer has a reader
                    await asyncio.shield(asyncio.wrap_future(future))


def _respond(model_response: ModelResponse, model: str, gen: Generation) -> ModelResponse:
    from litellm.types.utils import Usage

    model_response.choices[0].message.content = gen.text  # type: ignore[union-attr]
    model_response.choices[0].finish_reason = gen.finish_reason or "stop"
    model_response.id = f"local-{uuid.uuid4().hex[:16]}"
    model_response.created = int(time.time())
    model_response.model = f"local/{model}"
    model_response.usage = Usage(**_usage(gen))  # type: ignore[attr-defined]
    return model_response
