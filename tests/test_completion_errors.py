"""The completion layer's error contract, against a scripted OpenAI-compatible server.

`acomplete` must turn every provider failure into a ProviderError classified by status code
(fatal or transient, with a `kind`), make exactly one HTTP request per call (LiteLLM's and the
OpenAI SDK's retries are off), honour the timeout, and report usage, cost, latency, TTFT and the
provider's request id on success.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import aiohttp
import httpx
import pytest

from tests.fakeserver import FakeOpenAIServer, Reply
from workbench.errors import ProviderError
from workbench.providers.catalog import ModelEntry
from workbench.providers.completion import CompletionResult, acomplete

KEY_ENV = "WB_FAKE_KEY"
MODEL = "openai/fake-model"
STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]

FATAL = [(400, "bad_request"), (401, "auth"), (403, "auth"), (404, "not_found"), (422, "bad_request")]
TRANSIENT = [
    (408, "timeout"),
    (429, "rate_limit"),
    (500, "server"),
    (502, "server"),
    (503, "server"),
    (529, "overloaded"),
]


@pytest.fixture
def entry(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> ModelEntry:
    monkeypatch.setenv(KEY_ENV, "sk-fake-test-key")
    return ModelEntry(
        id=MODEL,
        kind="cloud",
        api_base=fake_server.base_url,
        api_key_env=KEY_ENV,
        input_price_per_million=1.0,
        output_price_per_million=2.0,
    )


def call(
    entry: ModelEntry, key: str, *, stream: bool, timeout: float = 10.0, params: dict | None = None
) -> CompletionResult:
    """One acomplete call whose last message contains `key` (so a script can match it)."""
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"{key}: hi"}]
    return asyncio.run(
        acomplete(
            entry.id, messages, params or {"temperature": 0}, stream=stream, timeout=timeout, entry=entry
        )
    )


def call_error(entry: ModelEntry, key: str, *, stream: bool, timeout: float = 10.0) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call(entry, key, stream=stream, timeout=timeout)
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- success ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
def test_success_reports_text_usage_cost_latency_and_request_id(fake_server, entry, stream):
    fake_server.script("ok", [Reply(text="hello there world", prompt_tokens=12, completion_tokens=3)])
    result = call(entry, "ok", stream=stream)

    assert result.text == "hello there world"
    assert result.finish_reason == "stop"
    assert result.model == MODEL
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    assert result.cost_usd == pytest.approx((12 * 1.0 + 3 * 2.0) / 1e6)
    assert result.latency_ms > 0
    if stream:
        assert result.ttft_ms is not None and 0 < result.ttft_ms <= result.latency_ms
    else:
        assert result.ttft_ms is None
    # The id is the server's x-request-id header (it wins over the JSON "chatcmpl-<n>" id).
    assert result.request_id and re.fullmatch(r"req-\d+", result.request_id)
    assert fake_server.count("ok") == 1
    body = fake_server.requests[-1]
    assert body["model"] == "fake-model"
    assert body["messages"][-1]["content"] == "ok: hi"
    assert body.get("stream", False) is stream
    if stream:
        assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", STREAM)
def test_request_id_is_taken_from_the_provider_header(fake_server, entry, stream):
    fake_server.script("rid", [Reply(headers={"x-request-id": "req-from-provider-42"})])
    result = call(entry, "rid", stream=stream)
    assert result.request_id == "req-from-provider-42"
    assert result.text == "echo: rid: hi"
    assert result.completion_tokens == 3  # words of the default echo text


def test_streaming_ttft_is_before_the_end_when_chunks_are_slow(fake_server, entry):
    fake_server.script("slow", [Reply(text="one two three four", latency=0.2, chunk_delay=0.08)])
    result = call(entry, "slow", stream=True)
    assert result.text == "one two three four"
    assert result.ttft_ms is not None
    assert result.ttft_ms >= 190  # the server waited 200 ms before its first byte
    assert result.latency_ms >= result.ttft_ms + 200  # 3 gaps of 80 ms between content chunks + the last
    assert result.latency_ms >= 450


@pytest.mark.parametrize("stream", STREAM)
def test_finish_reason_length_is_returned(fake_server, entry, stream):
    fake_server.script("long", [Reply(text="cut off mid", finish_reason="length")])
    result = call(entry, "long", stream=stream)
    assert result.finish_reason == "length"
    assert result.text == "cut off mid"


@pytest.mark.parametrize("stream", STREAM)
def test_unknown_price_is_none_not_zero(fake_server, entry, stream):
    unpriced = ModelEntry(id=MODEL, kind="cloud", api_base=fake_server.base_url, api_key_env=KEY_ENV)
    result = call(unpriced, "free?", stream=stream)
    assert result.prompt_tokens == 10 and result.completion_tokens == 3
    assert result.cost_usd is None


# -- HTTP errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("status", "kind"), FATAL)
def test_fatal_statuses(fake_server, entry, status, kind, stream):
    key = f"fatal-{status}"
    fake_server.script(key, [Reply(status=status)])
    exc = call_error(entry, key, stream=stream)
    assert exc.transient is False
    assert exc.kind == kind
    assert exc.status_code == status
    assert exc.request_id and exc.request_id.startswith("req-")
    assert str(exc)
    assert fake_server.count(key) == 1  # no retry by LiteLLM or the OpenAI SDK


@pytest.mark.parametrize("stream", STREAM)
@pytest.mark.parametrize(("status", "kind"), TRANSIENT)
def test_transient_statuses(fake_server, entry, status, kind, stream):
    key = f"transient-{status}"
    fake_server.script(key, [Reply(status=status)])
    exc = call_error(entry, key, stream=stream)
    assert exc.transient is True
    assert exc.kind == kind
    assert exc.status_code == status
    assert exc.retry_after is None
    assert exc.request_id and exc.request_id.startswith("req-")
    assert fake_server.count(key) == 1  # no retry by LiteLLM or the OpenAI SDK


@pytest.mark.parametrize("stream", STREAM)
def test_rate_limit_carries_retry_after(fake_server, entry, stream):
    fake_server.script("slowdown", [Reply(status=429, retry_after=3)])
    exc = call_error(entry, "slowdown", stream=stream)
    assert (exc.kind, exc.transient, exc.status_code) == ("rate_limit", True, 429)
    assert exc.retry_after == 3.0
    assert fake_server.count("slowdown") == 1


def test_error_then_success_script_is_one_request_per_call(fake_server, entry):
    """The engine, not the client, retries: each call sees exactly the next scripted reply."""
    fake_server.script("flaky", [Reply(status=503), Reply(text="recovered")])
    exc = call_error(entry, "flaky", stream=False)
    assert exc.kind == "server" and fake_server.count("flaky") == 1
    assert call(entry, "flaky", stream=False).text == "recovered"
    assert fake_server.count("flaky") == 2


# -- transport failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", STREAM)
def test_hung_request_times_out_without_retry(fake_server, entry, stream):
    fake_server.script("hang", [Reply(hang=True)])
    started = time.perf_counter()
    exc = call_error(entry, "hang", stream=stream, timeout=1)
    elapsed = time.perf_counter() - started
    assert exc.kind == "timeout"
    assert exc.transient is True
    assert elapsed >= 0.9  # it waited for the timeout (a lower bound cannot flake under load)
    assert fake_server.count("hang") == 1  # and did not retry


@pytest.mark.parametrize("stream", STREAM)
def test_connection_refused_is_transient(monkeypatch, stream):
    monkeypatch.setenv(KEY_ENV, "sk-fake-test-key")
    nowhere = ModelEntry(id=MODEL, api_base=f"http://127.0.0.1:{closed_port()}/v1", api_key_env=KEY_ENV)
    exc = call_error(nowhere, "anyone?", stream=stream)
    assert exc.kind == "connection"
    assert exc.transient is True


@pytest.mark.parametrize("stream", STREAM)
def test_malformed_body_is_kind_malformed(fake_server, entry, stream):
    """LiteLLM wraps the JSONDecodeError (status 500 it invents); the cause chain still names it."""
    fake_server.script("garbled", [Reply(malformed=True)])
    exc = call_error(entry, "garbled", stream=stream)
    assert exc.kind == "malformed"
    assert exc.transient is True
    assert fake_server.count("garbled") == 1


def test_truncated_stream_is_an_error_not_a_normal_result(fake_server, entry):
    """A stream cut before finish_reason/[DONE] must not pass for a normal "stop" result.

    Measured with LiteLLM 1.106.2: it raises MidStreamFallbackError (status_code 500, the cause chain
    holds httpx.ReadError <- aiohttp ClientPayloadError), which becomes a transient kind "server".
    """
    fake_server.script("cut", [Reply(text="one two three four five six", truncate_stream=True)])
    exc = call_error(entry, "cut", stream=True)
    assert exc.transient is True
    assert exc.kind == "connection"
    assert fake_server.count("cut") == 1


# -- the fake server itself ------------------------------------------------------------------------


def test_fake_server_scripts_counts_and_reset(fake_server):
    fake_server.script("a", [Reply(status=500), Reply(text="x")])
    url = fake_server.base_url + "/chat/completions"

    def post(content: str) -> httpx.Response:
        body = {"model": "m", "messages": [{"role": "user", "content": content}]}
        return httpx.post(url, json=body, timeout=5)

    first, second, third = post("a1"), post("a2"), post("b")
    assert first.status_code == 500 and first.json()["error"]["type"] == "server_error"
    assert second.json()["choices"][0]["message"]["content"] == "x"
    assert post("a3").json()["choices"][0]["message"]["content"] == "x"  # the last reply repeats
    assert third.json()["choices"][0]["message"]["content"] == "echo: b"
    ids = [r.headers["x-request-id"] for r in (first, second, third)]
    assert len(set(ids)) == 3 and all(i.startswith("req-") for i in ids)
    assert second.json()["id"] == "chatcmpl-" + ids[1].removeprefix("req-")
    assert (fake_server.count(), fake_server.count("a"), fake_server.count("b")) == (4, 3, 1)
    models = httpx.get(fake_server.base_url + "/models", timeout=5).json()
    assert "fake-model" in [m["id"] for m in models["data"]]
    fake_server.reset()
    assert fake_server.count() == 0 and fake_server.requests == []
    assert post("a").status_code == 200


def test_fake_server_stream_format(fake_server):
    fake_server.script("s", [Reply(text="a b", completion_tokens=7)])
    body = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "s"}],
    }
    text = httpx.post(fake_server.base_url + "/chat/completions", json=body, timeout=5).text
    lines = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "a b"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7


def test_fake_server_sustains_concurrency_64(fake_server):
    fake_server.default = Reply(latency=0.2)

    async def burst() -> None:
        body = {"model": "m", "messages": [{"role": "user", "content": "go"}]}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one() -> int:
                async with session.post(fake_server.base_url + "/chat/completions", json=body) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(one() for _ in range(128)))
            assert statuses == [200] * 128

    asyncio.run(burst())
    assert fake_server.count("go") == 128
    # Answered side by side, not one after another (counted by the server, not timed).
    assert fake_server.max_in_flight >= 64
