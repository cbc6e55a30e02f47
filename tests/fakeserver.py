"""A scriptable OpenAI-compatible chat-completions server for tests and benchmarks.

It runs aiohttp on its own event loop in a daemon thread, so it answers many concurrent requests
while the code under test runs its own loop (or none) in the main thread.

    server = FakeOpenAIServer().start()
    server.script("boom", [Reply(status=503), Reply(text="ok")])   # 503 once, then "ok" forever
    ...  # call server.base_url ("http://127.0.0.1:PORT/v1") with any OpenAI client
    server.count("boom")  # requests whose last message contained "boom"
    server.max_in_flight_of("fake-model")  # most requests for that model answered at once
    server.stop()

Structured replies: `Reply(json={"city": "Paris"})` answers that JSON as the text;
`Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])` answers function calls
(finish_reason "tool_calls"; streamed as OpenAI does, the arguments in pieces); `cached_tokens` and
`reasoning_tokens` add `prompt_tokens_details` / `completion_tokens_details` to the usage;
`error_message` replaces an error's message (e.g. a provider's "tools are not supported").

Endpoints: POST /v1/chat/completions (JSON or SSE streaming, `stream_options.include_usage`
honoured like OpenAI) and GET /v1/models. Every response carries `x-request-id: req-<n>`, and its
JSON (success chunks and error bodies) the id `chatcmpl-<n>`, where n grows for the server's whole
life (it is not reset by `reset()`, so ids stay unique across tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

DEFAULT_MODELS = ("fake-model", "fake-model-large", "fake-model-small")

# OpenAI-style error (type, code) per status.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
    529: ("overloaded_error", "overloaded"),
}
_REASONS = {
    400: "Bad request",
    401: "Incorrect API key provided",
    403: "You are not allowed to use this model",
    404: "The model does not exist or you do not have access to it",
    408: "Request timed out",
    422: "Unprocessable entity",
    429: "Rate limit reached for requests",
    500: "The server had an error while processing your request",
    502: "Bad gateway",
    503: "The server is overloaded or not ready yet",
    529: "Overloaded",
}


@dataclass
class Reply:
    """What the server answers to one request."""

    text: str | None = None  # None -> "echo: " + last message content (first 200 chars)
    status: int = 200  # non-200 -> an OpenAI-style error JSON body {"error": {...}}
    latency: float = 0.0  # seconds to wait before answering (before the first byte)
    retry_after: float | str | None = None  # sent as a Retry-After header
    finish_reason: str = "stop"  # e.g. "length"
    prompt_tokens: int = 10
    completion_tokens: int | None = None  # None -> number of whitespace-separated words of text
    malformed: bool = False  # status 200 but the body is not valid JSON (streaming: a broken data: line)
    truncate_stream: bool = False  # streaming: some content chunks, then close without finish/[DONE]
    hang: bool = False  # never answer (wait until the client gives up or the server stops)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    chunk_delay: float = 0.0  # streaming: sleep between content chunks
    json: Any = None  # answer this value as JSON text (instead of `text`)
    tool_calls: list[dict[str, Any]] | None = None  # [{"name", "arguments": dict | str, "id"?}]
    cached_tokens: int | None = None  # usage.prompt_tokens_details.cached_tokens
    reasoning_tokens: int | None = None  # usage.completion_tokens_details.reasoning_tokens
    error_message: str | None = None  # the message of an error reply (status != 200)


def _openai_tool_calls(reply: Reply, n: int) -> list[dict[str, Any]]:
    """A reply's tool calls in OpenAI's response shape (arguments as JSON text)."""
    out = []
    for i, call in enumerate(reply.tool_calls or []):
        args = call.get("arguments", {})
        out.append(
            {
                "id": call.get("id") or f"call_{n}_{i}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
        )
    return out


def _usage(reply: Reply, completion_tokens: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": reply.prompt_tokens + completion_tokens,
    }
    if reply.cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens, "audio_tokens": 0}
    if reply.reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0}
    return usage


def last_content(body: Any) -> str:
    """The text of the last message of a chat request body ('' when there is none)."""
    try:
        content = body["messages"][-1].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _format_retry_after(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class FakeOpenAIServer:
    """An OpenAI-compatible server on a random free port, answering from scripted `Reply`s."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.default = Reply()
        self.requests: list[dict] = []
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        # Per model (the request's "model", without a provider prefix): how many are being
        # answered now, and the most at once, so tests can check concurrency limits hold.
        self.in_flight_by_model: dict[str, int] = {}
        self.max_in_flight_by_model: dict[str, int] = {}
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._positions: dict[str, int] = {}
        self._seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="fake-openai-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake OpenAI server did not start within 15 s")
        if self._error is not None:
            raise RuntimeError(f"fake OpenAI server failed to start: {self._error!r}") from self._error
        return self

    def stop(self) -> None:
        """Stop serving (hung requests are released) and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        app.router.add_get("/stats", self._stats)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        self._runner = runner
        sockets = runner.addresses
        self.port = int(sockets[0][1])

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- scripting -------------------------------------------------------------------------------

    def script(self, key: str, replies: list[Reply]) -> None:
        """Requests whose last message contains `key` get `replies` in order; the last one repeats."""
        if not replies:
            raise ValueError("script() needs at least one Reply")
        with self._lock:
            self._scripts[key] = list(replies)
            self._positions[key] = 0

    def arrival_times(self, key: str) -> list[float]:
        """time.monotonic() at which each request whose last message contains `key` arrived."""
        with self._lock:
            return [
                t for body, t in zip(self.requests, self.arrivals, strict=True) if key in last_content(body)
            ]

    def count(self, key: str | None = None) -> int:
        """Requests received so far (those whose last message contains `key`, when given)."""
        with self._lock:
            if key is None:
                return len(self.requests)
            return sum(1 for body in self.requests if key in last_content(body))

    def reset(self) -> None:
        """Forget scripts and received requests; the default reply becomes `Reply()` again."""
        with self._lock:
            self._scripts.clear()
            self._positions.clear()
            self.requests.clear()
            self.arrivals.clear()
            self.max_in_flight = 0
            self.max_in_flight_by_model.clear()
            self.default = Reply()

    def max_in_flight_of(self, model: str) -> int:
        """The most requests for `model` (as the client sent it) answered at once since `reset()`."""
        return self.max_in_flight_by_model.get(model, 0)

    def _arrive(self, body: dict) -> tuple[int, Reply]:
        """Record one request (on arrival) and pick its reply."""
        content = last_content(body)
        with self._lock:
            self._seq += 1
            self.requests.append(body)
            self.arrivals.append(time.monotonic())
            for key, replies in self._scripts.items():
                if key in content:
                    pos = self._positions[key]
                    self._positions[key] = pos + 1
                    return self._seq, replies[min(pos, len(replies) - 1)]
            return self._seq, self.default

    # -- handlers --------------------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.count(),
                "max_in_flight": self.max_in_flight,
                "max_in_flight_by_model": dict(self.max_in_flight_by_model),
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in DEFAULT_MODELS
        ]
        return web.json_response({"object": "list", "data": data})

    async def _wait_for_disconnect(self, request: web.Request) -> None:
        """Sleep until the client closes the connection or the server stops."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 0.05)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        model = str(body.get("model") or "")
        # Requests being answered at once (the loop is single-threaded: no lock needed).
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        now = self.in_flight_by_model.get(model, 0) + 1
        self.in_flight_by_model[model] = now
        self.max_in_flight_by_model[model] = max(self.max_in_flight_by_model.get(model, 0), now)
        try:
            return await self._answer(request, body)
        finally:
            self.in_flight -= 1
            self.in_flight_by_model[model] -= 1

    async def _answer(self, request: web.Request, body: dict) -> web.StreamResponse:
        n, reply = self._arrive(body)
        headers = {"x-request-id": f"req-{n}", **reply.headers}
        if reply.retry_after is not None:
            headers["Retry-After"] = _format_retry_after(reply.retry_after)

        if reply.hang:
            await self._wait_for_disconnect(request)
            # The client is gone (nothing reaches it) or the server is stopping.
            return self._error_response(503, n, headers, "hung request released")
        if reply.latency > 0:
            await asyncio.sleep(reply.latency)

        if "_raw" in body:
            return self._error_response(400, n, headers, "Request body is not valid JSON")
        if reply.status != 200:
            return self._error_response(reply.status, n, headers, reply.error_message)

        if reply.json is not None:
            text = json.dumps(reply.json)
        elif reply.tool_calls and reply.text is None:
            text = ""
        else:
            text = reply.text if reply.text is not None else "echo: " + last_content(body)[:200]
        calls = _openai_tool_calls(reply, n)
        completion_tokens = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else len(text.split()) + sum(len(c["function"]["arguments"].split()) for c in calls)
        )
        usage = _usage(reply, completion_tokens)
        finish_reason = "tool_calls" if calls and reply.finish_reason == "stop" else reply.finish_reason
        model = str(body.get("model") or DEFAULT_MODELS[0])
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(
                request, n, reply, headers, model, text, usage, include_usage, calls, finish_reason
            )

        if reply.malformed:
            broken = f'{{"id": "chatcmpl-{n}", "object": "chat.completion", "choices": [{{"index": 0, '
            return web.Response(status=200, text=broken, content_type="application/json", headers=headers)
        payload = {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text if (text or not calls) else None,
                        "refusal": None,
                        **({"tool_calls": calls} if calls else {}),
                    },
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
        }
        return web.json_response(payload, headers=headers)

    def _error_response(
        self, status: int, n: int, headers: dict[str, str], message: str | None = None
    ) -> web.Response:
        err_type, code = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        message = message or f"{_REASONS.get(status, 'Error')} (fake server, status {status})"
        payload = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
        payload["id"] = f"chatcmpl-{n}"
        return web.json_response(payload, status=status, headers=headers)

    async def _stream(
        self,
        request: web.Request,
        n: int,
        reply: Reply,
        headers: dict[str, str],
        model: str,
        text: str,
        usage: dict[str, Any],
        include_usage: bool,
        calls: list[dict[str, Any]],
        finish_reason: str,
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **headers},
        )
        await resp.prepare(request)
        created = int(time.time())

        def chunk(delta: dict, finish: str | None = None, *, with_usage: bool = False) -> bytes:
            data: dict[str, Any] = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                data["usage"] = None
            return f"data: {json.dumps(data)}\n\n".encode()

        pieces = re.findall(r"\s*\S+", text) or ([text] if text else [])
        await resp.write(chunk({"role": "assistant", "content": "", "refusal": None}))
        if reply.malformed:
            await resp.write(
                f'data: {{"id": "chatcmpl-{n}", "choices": [{{"delta": {{"content": \n\n'.encode()
            )
        if reply.truncate_stream:
            pieces = pieces[: max(1, len(pieces) // 2)] if pieces else []
        for i, piece in enumerate(pieces):
            if i and reply.chunk_delay > 0:
                await asyncio.sleep(reply.chunk_delay)
            await resp.write(chunk({"content": piece}))
        if reply.truncate_stream:
            # Close the connection mid-body: no finish_reason, no [DONE], no terminating chunk.
            await asyncio.sleep(0.01)
            if request.transport is not None:
                request.transport.abort()
            return resp
        for i, call in enumerate(calls):
            # As OpenAI streams a call: id and name first, then the arguments text in pieces.
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            await resp.write(chunk({"tool_calls": [head]}))
            args = call["function"]["arguments"]
            for start in range(0, len(args), 8):
                part = {"index": i, "function": {"arguments": args[start : start + 8]}}
                await resp.write(chunk({"tool_calls": [part]}))
        if reply.chunk_delay > 0 and pieces:
            await asyncio.sleep(reply.chunk_delay)
        await resp.write(chunk({}, finish_reason))
        if include_usage:
            final = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": usage,
            }
            await resp.write(f"data: {json.dumps(final)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


@pytest.fixture(scope="session")
def fake_server_session() -> Iterator[FakeOpenAIServer]:
    """One fake OpenAI server for the whole test session."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_server(fake_server_session: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The session's fake server, reset (no scripts, no requests, default Reply) for this test."""
    fake_server_session.reset()
    yield fake_server_session
    fake_server_session.reset()


def main() -> None:
    """`python -m tests.fakeserver --latency 0.2`: serve until killed (benchmarks run it in its own process).

    Prints the base URL on the first line of stdout. GET /stats answers the number of requests
    received so far, so a benchmark can count provider calls made by other processes.
    """
    import argparse
    import signal

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="Port (0 = any free one).")
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds before each answer.")
    args = parser.parse_args()
    server = FakeOpenAIServer(port=args.port)
    server.default = Reply(latency=args.latency)
    server.start()
    print(server.base_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
