"""Keep key values out of everything the workbench writes: exports, error messages, logs.

Keys are read from the environment by name and never stored, but a provider's error text can echo
a key (some put it in the URL), and an export must never carry one. `scrub` replaces every value
of a key-like environment variable with "[redacted]".
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "[redacted]"
_SECRET_NAME_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_LEN = 8  # shorter values would redact ordinary words


def secret_values() -> list[str]:
    """Values of environment variables that hold keys (by name, or named as api_key_env of a model)."""
    names = {k for k in os.environ if _SECRET_NAME_RE.search(k)}
    try:
        from workbench.providers.catalog import PROVIDER_KEY_ENV, load_models_file

        names.update(PROVIDER_KEY_ENV.values())
        names.update(m.api_key_env for m in load_models_file() if m.api_key_env)
    except Exception:  # noqa: BLE001 - a broken models file must not block redaction of the rest
        pass
    values = {os.environ.get(n, "") for n in names}
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def scrub(value: Any, secrets: list[str] | None = None) -> Any:
    """`value` (nested dicts/lists/strings) with every secret value replaced by '[redacted]'."""
    secrets = secret_values() if secrets is None else secrets
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value
