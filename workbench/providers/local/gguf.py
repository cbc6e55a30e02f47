"""The embedded models, loaded and run in-process by llama.cpp (which models exist: `specs`).

`provider` exposes them to LiteLLM as `local/...`, so sweeps, DSPy and the CLI call them like any
other model. Each model loads lazily (llama.cpp is imported on the first generation, never at
import time), once per process, and runs one generation at a time (a lock): llama.cpp contexts
are not thread-safe and two generations on 2 cores would only slow each other down.

Every load and generation runs on one thread, `llama_thread()`, whoever asks for it. llama.cpp
(built with OpenMP) gives each thread that calls it its own team of worker threads, and once the
teams of a process together outnumber the cores, OpenMP stops spinning at its barriers and sleeps
instead, hundreds of times per token: generations from executor threads (LiteLLM's async path)
ran at a third of the speed of the same generation on one thread. One thread keeps one team.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from workbench.errors import ModelUnavailableError
from workbench.providers.local.specs import LocalModelSpec, local_spec

T = TypeVar("T")
Emit = Callable[[str, "Generation"], None]  # called on the llama.cpp thread with each text piece
DEFAULT_MAX_TOKENS = 256
BASE_MODEL_STOP = ["\nUser:"]  # a base model otherwise writes the next turn itself


def base_prompt(messages: list[dict[str, str]]) -> str:
    """Render chat messages into a plain transcript for a base completion model."""
    parts: list[str] = []
    for msg in messages:
        if msg["role"] == "system":
            parts.append(msg["content"].strip() + "\n")
        elif msg["role"] == "user":
            parts.append(f"User: {msg['content'].strip()}")
        else:
            parts.append(f"Assistant: {msg['content'].strip()}")
    return "\n".join(parts) + "\nAssistant:"


@dataclass
class Generation:
    """The outcome of one local generation, filled in as it streams."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LocalModel:
    """One loaded GGUF model with its lock."""

    def __init__(self, spec: LocalModelSpec):
        self.spec = spec
        self._llm = None
        self._formatter = None
        self._load_lock = threading.Lock()
        self.lock = threading.Lock()  # one generation at a time
        self.load_seconds: float | None = None

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        return on_llama_thread(self._load_here)

    def _load_here(self) -> Any:
        with self._load_lock:
            if self._llm is not None:
                return self._llm
            path = self.spec.path()
            from llama_cpp import Llama

            _silence_llama_logs()
            threads = thread_counts()
            started = time.perf_counter()
            try:
                llm = Llama(
                    model_path=str(path),
                    n_ctx=self.spec.n_ctx,
                    verbose=False,
                    logits_all=False,
                    **threads,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelUnavailableError(
                    f"llama.cpp could not load {path} ({exc}). The file may be corrupt: reinstall "
                    f"the package {self.spec.package} ({self.spec.repair})."
                ) from None
            if self.spec.chat:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                template = llm.metadata.get("tokenizer.chat_template")
                if not template:
                    raise ModelUnavailableError(f"{path} has no chat template in its metadata.")
                eos, bos = llm.token_eos(), llm.token_bos()
                self._formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                    bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
                )
            self.load_seconds = time.perf_counter() - started
            self._llm = llm
            return llm

    def prompt_for(self, messages: list[dict[str, str]]) -> tuple[str, list[str]]:
        """The prompt text the model sees and the stop strings its format needs."""
        self._load()
        if self.spec.chat:
            result = self._formatter(messages=messages)
            stop = result.stop if isinstance(result.stop, list) else ([result.stop] if result.stop else [])
            return result.prompt, stop
        return base_prompt(messages), list(BASE_MODEL_STOP)

    def generate(
        self,
        messages: list[dict[str, str]],
        *,
        emit: Emit | None = None,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Future[Generation]:
        """Start a generation on the llama.cpp thread; `emit(piece, gen)` runs there for each text piece.

        `params`: max_tokens, temperature, top_p, stop, seed, response_format (a JSON Schema or
        JSON mode, honoured by grammar-constrained sampling: see `grammar_for`). The future ends with
        the finished Generation, or with ContextLengthExceeded / ModelUnavailableError. Setting
        `cancel` stops the generation after the current token.
        """
        stopped = cancel.is_set if cancel is not None else _never
        return llama_thread().submit(self._generate, messages, emit, stopped, params)

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        cancel: threading.Event | None = None,
        **params: Any,
    ) -> Iterator[tuple[str, Generation]]:
        """Generate, yielding (text piece, running Generation); the last item has finish_reason.

        Leaving the loop early stops the generation after the current token.
        """
        left = threading.Event()
        items: queue.SimpleQueue = queue.SimpleQueue()
        done = object()

        def stopped() -> bool:
            return left.is_set() or (cancel is not None and cancel.is_set())

        future = llama_thread().submit(
            self._generate, messages, lambda piece, gen: items.put((piece, gen)), stopped, params
        )
        future.add_done_callback(lambda _f: items.put(done))
        try:
            while (item := items.get()) is not done:
                yield item
            yield "", future.result()
        finally:
            left.set()

    def _generate(
        self,
        messages: list[dict[str, str]],
        emit: Emit | None,
        stopped: Callable[[], bool],
        params: dict[str, Any],
    ) -> Generation:
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        llm = self._load()
        prompt, format_stop = self.prompt_for(messages)
        stop = params.get("stop")
        stops = list(format_stop) + ([stop] if isinstance(stop, str) else list(stop or []))
        gen = Generation()
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        gen.prompt_tokens = len(prompt_ids)
        max_tokens = int(params.get("max_tokens") or DEFAULT_MAX_TOKENS)
        temperature, top_p = params.get("temperature"), params.get("top_p")
        grammar = grammar_for(params.get("response_format"))
        n_ctx = self.spec.n_ctx
        if gen.prompt_tokens + 1 > n_ctx:
            raise ContextLengthExceeded(
                f"The prompt is {gen.prompt_tokens} tokens; {self.spec.id} has a context window "
                f"of {n_ctx} tokens. Shorten the prompt or the variables."
            )

        # Counting logits-processor calls gives the exact number of sampled tokens, which
        # llama-cpp-python does not report when streaming.
        def count_tokens(_ids: Any, scores: Any) -> Any:
            gen.completion_tokens += 1
            return scores

        def should_stop(_ids: Any, _logits: Any) -> bool:
            return stopped()

        with self.lock:
            chunks = llm.create_completion(
                prompt=prompt_ids,
                max_tokens=min(max_tokens, n_ctx - gen.prompt_tokens),
                temperature=0.8 if temperature is None else float(temperature),
                top_p=0.95 if top_p is None else float(top_p),
                stop=stops or None,
                seed=params.get("seed"),
                grammar=grammar,
                stream=True,
                logits_processor=LogitsProcessorList([count_tokens]),
                stopping_criteria=StoppingCriteriaList([should_stop]),
            )
            for chunk in chunks:
                choice = chunk["choices"][0]
                piece = choice.get("text") or ""
                gen.text += piece
                if choice.get("finish_reason"):
                    gen.finish_reason = choice["finish_reason"]
                if emit is not None:
                    emit(piece, gen)
        if gen.finish_reason is None:
            gen.finish_reason = "stop"
        return gen


def _never() -> bool:
    return False


def grammar_for(response_format: dict[str, Any] | None) -> Any:
    """The llama.cpp grammar that makes sampling follow a response_format, or None for plain text.

    A JSON Schema (`json_schema`) becomes llama.cpp's grammar for that schema, JSON mode
    (`json_object`) its grammar for any JSON object: every token the model may pick keeps the
    output valid, so even a 135M model's reply parses and validates (while max_tokens lets it end).
    """
    if not response_format or response_format.get("type") not in ("json_schema", "json_object"):
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return _grammar(json.dumps(schema, sort_keys=True) if schema is not None else None)


@functools.lru_cache(maxsize=32)
def _grammar(schema_json: str | None) -> Any:
    """A compiled grammar per schema (the same schema serves every row of a sweep)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        if schema_json is None:
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
        return LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        raise UnsupportedSchema(f"llama.cpp cannot turn this JSON Schema into a grammar: {exc}") from None


class UnsupportedSchema(ValueError):
    """A JSON Schema the local models' grammar converter cannot express."""


_llama_executor: ThreadPoolExecutor | None = None
_llama_thread_id: int | None = None
_executor_lock = threading.Lock()


def llama_thread() -> ThreadPoolExecutor:
    """The process's one llama.cpp thread (see the module docstring): loads and generations queue on it."""
    global _llama_executor
    with _executor_lock:
        if _llama_executor is None:
            _llama_executor = ThreadPoolExecutor(1, "llama.cpp", initializer=_remember_llama_thread)
        return _llama_executor


def _remember_llama_thread() -> None:
    global _llama_thread_id
    _llama_thread_id = threading.get_ident()


def on_llama_thread(fn: Callable[[], T]) -> T:
    """Run `fn` on the llama.cpp thread and wait for it (directly when already there)."""
    if threading.get_ident() == _llama_thread_id:
        return fn()
    return llama_thread().submit(fn).result()


def _forget_llama_thread() -> None:
    # A forked child has the executor object but not its thread: work queued there would wait forever.
    global _llama_executor, _llama_thread_id, _executor_lock
    _llama_executor, _llama_thread_id, _executor_lock = None, None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_llama_thread)


_log_callback = None


def _silence_llama_logs() -> None:
    """Route llama.cpp's C-level log lines to nowhere (verbose=False leaves some on stderr)."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _ignore(_level, _text, _user_data):
        return None

    _log_callback = _ignore  # keep a reference: ctypes callbacks must outlive their use
    llama_cpp.llama_log_set(_log_callback, None)


def thread_counts() -> dict[str, int]:
    """llama.cpp's thread counts: `WORKBENCH_LOCAL_THREADS` for both, else half the cores to generate."""
    override = (os.environ.get("WORKBENCH_LOCAL_THREADS") or "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ModelUnavailableError(
                f"WORKBENCH_LOCAL_THREADS must be a whole number of threads (1 or more), not {override!r}."
            )
        return {"n_threads": int(override), "n_threads_batch": int(override)}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # Each token is many small steps joined by barriers at which the threads spin. On 2 idle cores
    # two threads generate twice as fast as one, but as soon as anything else wants a core (the
    # event loop, a sweep, the UI, another process) a thread is descheduled, the others spin
    # until it returns, and the rate falls far below one thread's. Half the cores, llama.cpp's
    # own default, leaves room; reading a prompt is a few big steps and uses them all.
    return {"n_threads": max(1, cores // 2), "n_threads_batch": cores}


class ContextLengthExceeded(ValueError):
    """The prompt does not fit the local model's context window."""


_models: dict[str, LocalModel] = {}
_models_lock = threading.Lock()


def get_local_model(model_id: str) -> LocalModel:
    """The process-wide LocalModel for `model_id` (loaded on first generation)."""
    spec = local_spec(model_id)
    with _models_lock:
        if spec.id not in _models:
            _models[spec.id] = LocalModel(spec)
        return _models[spec.id]
