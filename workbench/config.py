"""Where things live and the process-wide settings that keep the workbench offline.

Nothing here imports heavy libraries; `apply_offline_env()` must run before litellm is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Set before any import of litellm / huggingface code: LiteLLM otherwise fetches its price table at
# import time and token_counter tries to download tokenizers (facts.md).
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_TELEMETRY": "False",
    "DISABLE_AIOHTTP_TRANSPORT": "False",
    "AIOHTTP_CONNECTOR_LIMIT_PER_HOST": "500",
    "AIOHTTP_CONNECTOR_LIMIT": "1000",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def apply_offline_env() -> None:
    """Set the environment variables that stop libraries from reaching the network."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def data_dir() -> Path:
    """The folder for the database, assembled local model files and caches (`WORKBENCH_DATA_DIR`)."""
    path = Path(os.environ.get("WORKBENCH_DATA_DIR") or PROJECT_ROOT / "data")
    path.mkdir(parents=True, exist_ok=True)
    return path


def examples_dir() -> Path:
    """Bundled example prompts and datasets, shipped in the repository."""
    return PROJECT_ROOT / "data" / "examples"


def database_url() -> str:
    """`WORKBENCH_DATABASE_URL`, else SQLite at data/workbench.db."""
    url = os.environ.get("WORKBENCH_DATABASE_URL")
    if url:
        # Accept the common postgres:// spelling and pick the psycopg 3 driver.
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
    return f"sqlite:///{data_dir() / 'workbench.db'}"


def models_file() -> Path:
    """The models TOML file: `WORKBENCH_MODELS`, else data/models.toml."""
    return Path(os.environ.get("WORKBENCH_MODELS") or PROJECT_ROOT / "data" / "models.toml")
