"""The one completion function the rest of the workbench calls.

Messages + model + params in; text, tool calls, finish_reason, usage (with cached and reasoning
tokens), cost, latency, TTFT and the provider request id out. A version's response format and
tools travel in the params; a model that cannot honour them fails the call clearly (`features`);
usage is priced by `pricing`. Provider errors become `ProviderError`s classified fatal or
transient by status code (LiteLLM maps a 403 to a generic APIError, so exception classes alone
mislead). LiteLLM's and the OpenAI SDK's own retries are off: the sweep engine alone decides.

LiteLLM caches its HTTP clients per event loop and never closes them, so every loop that calls a
provider leaves its connections open (a process running sweeps one after another ran out of file
descriptors). Code that runs calls on a loop wraps them in `closing_clients()`, which closes the
loop's clients when its last user is done; `complete` does it for one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from workbench import config
from workbench.errors import ProviderError
from workbench.providers import features
from workbench.providers.catalog import ModelEntry, get_model
from workbench.providers.pricing import cost_of, usage_of

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
FATAL_STATUS = {400: "bad_request", 401: "auth", 403: "auth", 404: "not_found", 422: "bad_request"}
TRANSIENT_STATUS = {
    408: "timeout",
    409: "server",
    425: "server",
    429: "rate_limit",
    500: "server",
    502: "server",
    503: "server",
    504: "timeout",
    529: "overloaded",
}

_init_lock = threading.Lock()
_litellm = None


def ensure_litellm() -> Any:
    """Import and configure LiteLLM once per process (offline price table, no retries, `local`)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _init_lock:
        if _litellm is None:
            config.apply_offline_env()
            import litellm

            from workbench.providers.local.provider import LocalProvider

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.num_retries = 0
            litellm.set_verbose = False
            providers = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != "local"]
            litellm.custom_provider_map = [
                *providers,
                {"provider": "local", "custom_handler": LocalProvider()},
            ]
            # custom_provider_map is read when a provider is first routed; make it take effect now.
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
            _litellm = litellm
    return _litellm


@dataclass
class CompletionResult:
    """What one successful call produced."""

    model: str
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None  # None: the model has no known price ("unknown", never a silent 0)
    latency_ms: float
    ttft_ms: float | None
    request_id: str | None
    # The function calls the reply made ({"id", "name", "arguments"}), see providers.features.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cached_tokens: int | None = None  # part of prompt_tokens, when the provider reports it
    reasoning_tokens: int | None = None  # part of completion_tokens, when the provider reports it

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (for JSON output and logs)."""
        return asdict(self)


def classify_exception(exc: BaseException) -> ProviderError:
    """Map a LiteLLM / SDK / transport exception to a ProviderError (fatal or transient)."""
    if isinstance(exc, ProviderError):
        return exc
    status = getattr(exc, "status_code", None)
    try:
        status = int(status) if status is not None else None
    except (TypeError, ValueError):
        status = None
    message = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    name = type(exc).__name__
    lower = message.lower()
    retry_after = _retry_after(exc)
    request_id = _request_id_of_error(exc)
    chain = list(_exception_chain(exc))
    if "contextwindowexceeded" in name.lower() or (
        status in (400, 413)
        and ("context length" in lower or "context window" in lower or "maximum context" in lower)
    ):
        return ProviderError(
            _short(message), kind="context_length", transient=False, status_code=status, request_id=request_id
        )
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or name == "Timeout":
        return ProviderError(
            f"Timed out: {_short(message)}",
            kind="timeout",
            transient=True,
            status_code=status or 408,
            request_id=request_id,
        )
    dropped = {"ReadError", "RemoteProtocolError", "ClientPayloadError", "ServerDisconnectedError"}
    if any(type(e).__name__ in dropped for e in chain):
        return ProviderError(
            f"The connection dropped in the middle of the response: {_short(message)}",
            kind="connection",
            transient=True,
            status_code=status,
            request_id=request_id,
        )
    if "APIConnectionError" in name or "connection error" in lower or "connecterror" in lower:
        return ProviderError(
            f"Could not connect to the provider: {_short(message)}",
            kind="connection",
            transient=True,
            status_code=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    if any(isinstance(e, json.JSONDecodeError) for e in chain) or ("json" in lower and "decode" in lower):
        return ProviderError(
            f"Malformed response from the provider: {_short(message)}",
            kind="malformed",
            transient=True,
            status_code=status,
            request_id=request_id,
        )
    if status in FATAL_STATUS:
        return ProviderError(
            _fatal_message(status, message),
            kind=FATAL_STATUS[status],
            transient=False,
            status_code=status,
            request_id=request_id,
        )
    if status in TRANSIENT_STATUS:
        return ProviderError(
            _short(message),
            kind=TRANSIENT_STATUS[status],
            transient=True,
            status_code=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status is not None and 400 <= status < 500:
        return ProviderError(
            _short(message), kind="bad_request", transient=False, status_code=status, request_id=request_id
        )
    if status is not None and status >= 500:
        return ProviderError(
            _short(message),
            kind="server",
            transient=True,
            status_code=status,
            retry_after=retry_after,
            request_id=request_id,
        )
    return ProviderError(
        f"{name}: {_short(message)}",
        kind="unknown",
        transient=False,
        status_code=status,
        request_id=request_id,
    )


def _exception_chain(exc: BaseException | None):
    # LiteLLM wraps provider errors without `raise ... from`, so the root cause (a JSON decode
    # error of a malformed body, a dropped connection) is only reachable through __context__.
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _fatal_message(status: int, message: str) -> str:
    hints = {
        401: "The provider refused the API key: check the key's value in its environment variable.",
        403: "The key is not allowed to use this model: check the account's access.",
        404: "The provider does not know this model: check the model id against the model list.",
    }
    hint = hints.get(status)
    return f"{hint} ({_short(message)})" if hint else _short(message)


def _short(message: str, limit: int = 500) -> str:
    from workbench.providers.redact import scrub

    # Provider errors can echo a key (some put it in the URL); it must not reach the database.
    message = scrub(" ".join(message.split()))
    for prefix in ("litellm.",):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _headers_of(exc: BaseException) -> dict[str, str]:
    headers: dict[str, str] = {}
    for source in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
    ):
        if source:
            try:
                headers.update({str(k).lower(): str(v) for k, v in dict(source).items()})
            except (TypeError, ValueError):
                continue
    return headers


def _retry_after(exc: BaseException) -> float | None:
    headers = _headers_of(exc)
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _request_id_of_error(exc: BaseException) -> str | None:
    headers = _headers_of(exc)
    return headers.get("x-request-id") or headers.get("request-id")


def call_kwargs(entry: ModelEntry, params: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """The keyword arguments for litellm.acompletion: params, api base, key (from env), no retries."""
    kwargs: dict[str, Any] = {k: v for k, v in params.items() if v is not None and k != "model"}
    kwargs.update({k: v for k, v in entry.extra.items() if k not in kwargs})
    if entry.api_base:
        kwargs["api_base"] = entry.api_base
    if entry.api_key_env and os.environ.get(entry.api_key_env):
        kwargs["api_key"] = os.environ[entry.api_key_env]
    if entry.kind != "local":
        kwargs["max_retries"] = 0  # the OpenAI SDK's own retries: the workbench alone decides
        kwargs["timeout"] = timeout or DEFAULT_TIMEOUT_S
    kwargs["num_retries"] = 0
    if kwargs.get("tools"):
        # LiteLLM 1.106 imports its MCP gateway (the optional `mcp` package) for any call with
        # tools; a version's tools are plain functions (`prompts.structured`): skip that look.
        kwargs["_skip_mcp_handler"] = True
    return kwargs


async def acomplete(
    model: str,
    messages: list[dict[str, str]],
    params: dict[str, Any] | None = None,
    *,
    stream: bool = True,
    timeout: float | None = None,
    entry: ModelEntry | None = None,
) -> CompletionResult:
    """Call `model` once (no retries). Raises ProviderError on failure."""
    litellm = ensure_litellm()
    entry = entry or get_model(model)
    params = dict(params or {})
    features.check_support(entry, params)
    kwargs = call_kwargs(entry, params, timeout)
    started = time.perf_counter()
    ttft = None
    tool_calls: list[dict[str, Any]] = []
    try:
        if stream:
            response = await litellm.acompletion(
                model=entry.id,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **kwargs,
            )
            parts: list[str] = []
            calls = features.ToolCallParts()
            finish_reason = None
            usage = None
            request_id = None
            async for chunk in response:
                request_id = request_id or getattr(chunk, "id", None)
                if chunk.choices:
                    choice = chunk.choices[0]
                    piece = getattr(choice.delta, "content", None)
                    called = calls.add(getattr(choice.delta, "tool_calls", None))
                    if (piece or called) and ttft is None:
                        ttft = (time.perf_counter() - started) * 1000
                    if piece:
                        parts.append(piece)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
            text = "".join(parts)
            tool_calls = calls.calls()
            headers = getattr(response, "_hidden_params", {}).get("additional_headers") or {}
        else:
            response = await litellm.acompletion(model=entry.id, messages=messages, **kwargs)
            choice = response.choices[0]
            text = choice.message.content or ""
            tool_calls = features.tool_calls_of(choice.message)
            finish_reason = choice.finish_reason
            usage = getattr(response, "usage", None)
            request_id = getattr(response, "id", None)
            headers = getattr(response, "_hidden_params", {}).get("additional_headers") or {}
    except ProviderError:
        raise
    except Exception as exc:
        raise features.unsupported_error(entry, params, classify_exception(exc)) from exc
    latency = (time.perf_counter() - started) * 1000
    header_id = None
    if isinstance(headers, dict):
        header_id = headers.get("llm_provider-x-request-id") or headers.get("x-request-id")
    counts = usage_of(usage)
    return CompletionResult(
        model=entry.id,
        text=text,
        finish_reason=finish_reason,
        prompt_tokens=counts.prompt_tokens,
        completion_tokens=counts.completion_tokens,
        # What the provider bills for this usage: cached prompt tokens at their cache price (see
        # providers.pricing), so the cost is the real one, not one that assumes a cache hit.
        cost_usd=cost_of(
            entry,
            counts.prompt_tokens,
            counts.completion_tokens,
            cached_tokens=counts.cached_tokens,
            cache_write_tokens=counts.cache_write_tokens,
        ),
        latency_ms=latency,
        ttft_ms=ttft if stream else None,
        request_id=header_id or request_id,
        tool_calls=tool_calls,
        cached_tokens=counts.cached_tokens,
        reasoning_tokens=counts.reasoning_tokens,
    )


def complete(
    model: str, messages: list[dict[str, str]], params: dict[str, Any] | None = None, **kwargs: Any
) -> CompletionResult:
    """Synchronous `acomplete` for the CLI and scripts (not for code inside an event loop)."""

    async def call() -> CompletionResult:
        async with closing_clients():
            return await acomplete(model, messages, params, **kwargs)

    return asyncio.run(call())


# -- the HTTP clients LiteLLM keeps per event loop ---------------------------------------------------

_loop_users: dict[int, int] = {}  # id(loop) -> `closing_clients` scopes open on it


@contextlib.asynccontextmanager
async def closing_clients():
    """Close the running loop's cached provider clients when the last scope open on it ends
    (executors sharing a loop each hold one, so none closes a client another still uses)."""
    key = id(asyncio.get_running_loop())
    _loop_users[key] = _loop_users.get(key, 0) + 1
    try:
        yield
    finally:
        _loop_users[key] -= 1
        if not _loop_users[key]:
            del _loop_users[key]
            await close_loop_clients()


async def close_loop_clients() -> int:
    """Close and forget the clients LiteLLM cached for the running loop (keyed `...-<id(loop)>`;
    removed, not only closed: a later loop may get the same id); returns how many."""
    if _litellm is None:
        return 0
    cache = getattr(_litellm, "in_memory_llm_clients_cache", None)
    entries = getattr(cache, "cache_dict", {})
    from litellm.caching.in_memory_cache import InMemoryCache

    suffix = f"-{id(asyncio.get_running_loop())}"
    closed = 0
    for key in [k for k in list(entries) if isinstance(k, str) and k.endswith(suffix)]:
        client = entries.get(key)
        # The base class's removal: LiteLLM's own would queue the client for a deferred close.
        InMemoryCache._remove_key(cache, key)
        if client is not None and await _close_client(client):
            closed += 1
    return closed


async def _close_client(client: Any) -> bool:
    close = getattr(client, "aclose", None) or getattr(client, "close", None)
    if not callable(close):
        return False
    try:
        outcome = close()
        if inspect.isawaitable(outcome):
            await outcome
    except Exception as exc:  # noqa: BLE001 - a client that fails to close must not fail the caller
        log.debug("closing %s failed: %r", type(client).__name__, exc)
        return False
    return True
