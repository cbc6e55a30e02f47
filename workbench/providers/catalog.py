"""Which models a user can call now: the embedded local models and `data/models.toml` entries.

Keys are read from the environment by *name* (`api_key_env`) at call time; they are never stored,
logged or exported. An entry may set prices (per million tokens: input, output, and
`cached_input_price_per_million` for prompt tokens read from the provider's cache) and say what
the model can do (`supports_tools`, `supports_response_schema`: true or false) where LiteLLM's
table does not know it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import config
from workbench.errors import ModelUnavailableError, ValidationError
from workbench.providers.local.specs import LOCAL_MODELS, LOCAL_PREFIX, LocalModelSpec, local_spec

DEFAULT_CLOUD_CONCURRENCY = 8

# The env var LiteLLM reads for each provider prefix, used when models.toml names none.
PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
}
# Providers that run on the user's machine and need no key.
KEYLESS_PROVIDERS = {"ollama", "ollama_chat", "lm_studio", "llamafile", "vllm", "hosted_vllm"}


@dataclass
class ModelEntry:
    """One callable (or almost callable) model and how to call it."""

    id: str
    kind: str = "cloud"  # local | cloud
    chat: bool = True
    api_base: str | None = None
    api_key_env: str | None = None
    input_price_per_million: float | None = None
    output_price_per_million: float | None = None
    max_concurrency: int = DEFAULT_CLOUD_CONCURRENCY
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # passed to the provider as is
    # Price of prompt tokens read from the provider's cache; None: priced as input tokens (so a
    # cache discount nobody stated never makes a model look cheaper than it is billed).
    cached_input_price_per_million: float | None = None
    supports_tools: bool | None = None  # None: ask LiteLLM's table (see providers.features)
    supports_response_schema: bool | None = None

    @property
    def available(self) -> bool:
        """True when the model can be called now (local, keyless, or its key is set)."""
        return self.unavailable_reason is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the model cannot be called now, or None."""
        if self.kind == "local":
            return None
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return f"needs {self.api_key_env}"
        return None

    def public_dict(self) -> dict[str, Any]:
        """A dict safe to print or export: the key's *name* only, never its value."""
        data = asdict(self)
        data["available"] = self.available
        data["unavailable_reason"] = self.unavailable_reason
        return data


def _provider(model_id: str) -> str:
    return model_id.split("/", 1)[0] if "/" in model_id else "openai"


def _entry_from_toml(raw: dict[str, Any], source: Path) -> ModelEntry:
    known = {
        "id",
        "api_base",
        "api_key_env",
        "input_price_per_million",
        "output_price_per_million",
        "max_concurrency",
        "description",
        "chat",
        "cached_input_price_per_million",
        "supports_tools",
        "supports_response_schema",
    }
    model_id = str(raw.get("id", "")).strip()
    if not model_id:
        raise ValidationError(f'{source}: every [[model]] needs an id, e.g. id = "openai/gpt-4o-mini".')
    if model_id.startswith(LOCAL_PREFIX):
        raise ValidationError(f"{source}: '{model_id}': the local/ prefix is reserved for embedded models.")
    if "api_key" in raw:
        raise ValidationError(
            f"{source}: '{model_id}' has an api_key value. Keep keys out of files: set an "
            "environment variable and name it with api_key_env."
        )
    provider = _provider(model_id)
    key_env = raw.get("api_key_env")
    if key_env is None and not raw.get("api_base") and provider not in KEYLESS_PROVIDERS:
        key_env = PROVIDER_KEY_ENV.get(provider)
    concurrency = raw.get("max_concurrency", DEFAULT_CLOUD_CONCURRENCY)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError(
            f"{source}: '{model_id}': max_concurrency must be a whole number of at least 1."
        )
    for key in ("api_base", "api_key_env", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValidationError(f"{source}: '{model_id}': {key} must be text in quotes.")
    for key in ("chat", "supports_tools", "supports_response_schema"):
        if key in raw and not isinstance(raw[key], bool):
            raise ValidationError(f"{source}: '{model_id}': {key} must be true or false.")
    return ModelEntry(
        id=model_id,
        kind="cloud",
        chat=bool(raw.get("chat", True)),
        api_base=raw.get("api_base"),
        api_key_env=key_env or None,
        input_price_per_million=_price(raw.get("input_price_per_million"), model_id, source),
        output_price_per_million=_price(raw.get("output_price_per_million"), model_id, source),
        max_concurrency=concurrency,
        description=str(raw.get("description", "")),
        extra={k: v for k, v in raw.items() if k not in known},
        cached_input_price_per_million=_price(raw.get("cached_input_price_per_million"), model_id, source),
        supports_tools=raw.get("supports_tools"),
        supports_response_schema=raw.get("supports_response_schema"),
    )


def _price(value: Any, model_id: str, source: Path) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{source}: '{model_id}': prices must be numbers.") from None
    if price < 0:
        raise ValidationError(f"{source}: '{model_id}': prices cannot be negative.")
    return price


def load_models_file(path: Path | None = None) -> list[ModelEntry]:
    """Entries of the models TOML file (`[[model]]` tables); none when the file is absent."""
    path = path or config.models_file()
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path} is not valid TOML: {exc}.") from None
    models = data.get("model", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise ValidationError(f'{path}: list models as [[model]] tables, each with id = "provider/name".')
    entries = [_entry_from_toml(raw, path) for raw in models]
    ids = [e.id for e in entries]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValidationError(f"{path}: models listed twice: {', '.join(dupes)}.")
    return entries


def local_entry(spec: LocalModelSpec) -> ModelEntry:
    """The catalog entry of an embedded model: $0, one generation at a time, no key."""
    return ModelEntry(
        id=spec.id,
        kind="local",
        chat=spec.chat,
        input_price_per_million=0.0,
        output_price_per_million=0.0,
        max_concurrency=1,
        description=spec.description,
        # llama.cpp's grammar-constrained sampling follows a JSON Schema; the models know no tools.
        supports_tools=False,
        supports_response_schema=True,
    )


def local_entries() -> list[ModelEntry]:
    """The embedded local models (always listed), from the registry in `providers.local.specs`."""
    return [local_entry(spec) for spec in LOCAL_MODELS.values()]


def list_models(path: Path | None = None) -> list[ModelEntry]:
    """Local models first, then models.toml entries."""
    return local_entries() + load_models_file(path)


def get_model(model_id: str, path: Path | None = None) -> ModelEntry:
    """The entry for `model_id`; an id not in models.toml is treated as a plain LiteLLM id."""
    model_id = (model_id or "").strip()
    if not model_id:
        raise ValidationError("Give a model id, for example local/smollm2-135m-instruct.")
    if model_id.startswith(LOCAL_PREFIX):
        return local_entry(local_spec(model_id))  # models.toml cannot define local/ ids
    for entry in load_models_file(path):
        if entry.id == model_id:
            return entry
    provider = _provider(model_id)
    return ModelEntry(
        id=model_id,
        kind="cloud",
        api_key_env=None if provider in KEYLESS_PROVIDERS else PROVIDER_KEY_ENV.get(provider),
    )


def require_callable(model_id: str, path: Path | None = None) -> ModelEntry:
    """The entry for `model_id`, or ModelUnavailableError saying what is missing."""
    entry = get_model(model_id, path)
    reason = entry.unavailable_reason
    if reason:
        raise ModelUnavailableError(
            f"Model '{model_id}' {reason}: set it in the environment (export {entry.api_key_env}=...) "
            "and restart, or pick another model."
        )
    return entry
