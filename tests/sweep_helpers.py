"""Helpers for sweep tests: a models file pointing at the fake server, datasets with row markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import datasets
from workbench.db import session_scope
from workbench.prompts import store
from workbench.sweeps.execute import ExecutorOptions, execute_sweep
from workbench.sweeps.plan import SweepSpec, create_sweep
from workbench.sweeps.retry import RetryPolicy

FAKE = "openai/fake-model"
FAKE2 = "openai/fake-model-large"
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def write_models_file(path: Path, base_url: str, *, concurrency: int | dict[str, int] = 16) -> Path:
    """A models.toml with two priced fake models served by the fake server (`concurrency`: one
    max_concurrency for both, or one per model id)."""
    limits = concurrency if isinstance(concurrency, dict) else {FAKE: concurrency, FAKE2: concurrency}
    path.write_text(
        "".join(
            f'[[model]]\nid = "{m}"\napi_base = "{base_url}"\napi_key_env = "WB_FAKE_KEY"\n'
            "input_price_per_million = 1.0\noutput_price_per_million = 2.0\n"
            f"max_concurrency = {limits.get(m, 16)}\n\n"
            for m in (FAKE, FAKE2)
        )
    )
    return path


# For tests of what does not depend on the database's locking (limits, budget, the process rule,
# the CLI): SQLite only, to keep the suite short; claims and cancels still run on both backends.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def seed(rows: int = 4, *, prompt: str = "echo", dataset: str = "rows") -> None:
    """A prompt whose rendered text carries a unique marker per row: 'cell-<row>'."""
    with session_scope() as s:
        store.save_version(
            s, prompt_name=prompt, messages=[{"role": "user", "content": "{{ marker }} {{ text }}"}]
        )
        table = datasets.ParsedTable(
            ["marker", "text", "expected"],
            [
                {"marker": f"cell-{i:03d}", "text": f"row {i}", "expected": f"echo: cell-{i:03d} row {i}"}
                for i in range(rows)
            ],
        )
        datasets.create_dataset(s, name=dataset, table=table, expected_column="expected")


def plan(**kwargs) -> int:
    """Create a sweep from SweepSpec keyword arguments; returns its id."""
    spec = SweepSpec(**{"prompts": ["echo"], "models": [FAKE], "dataset": "rows", **kwargs})
    with session_scope() as s:
        sweep, _ = create_sweep(s, spec)
        return sweep.id


def run(sweep_id: int, **options) -> object:
    """Execute a sweep in-process with fast retries."""
    return execute_sweep(sweep_id, ExecutorOptions(retry=options.pop("retry", FAST_RETRY), **options))


def child_pids(pid: int | None = None) -> list[int]:
    """Live workbench child processes of `pid` (default: this process), from /proc (Linux).

    Only `python -m workbench ...` children count: servers that other tests' fixtures keep for the
    whole session (the MLflow tracking server) are children of pytest too."""
    import os

    pid = pid or os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z" and b"workbench" in argv:  # fields: state, ppid, ...
            found.append(int(entry))
    return found
