"""Helpers for optimization tests: a capitals-style prompt and dataset answered by the fake server."""

from __future__ import annotations

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, write_models_file
from workbench import datasets
from workbench.db import migrate, session_scope
from workbench.optimize.run import OptimizeSpec, create_optimization
from workbench.optimize.worker import run_optimization
from workbench.prompts import store

COUNTRIES = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Peru", "Lima"),
    ("Egypt", "Cairo"),
    ("Kenya", "Nairobi"),
    ("Chile", "Santiago"),
]
SYSTEM = "Answer with the capital city only."
USER = "Capital of {{ country }}?"


def setup(tmp_path, monkeypatch, server, *, rows: int = 8) -> None:
    """Models file pointing at the fake server, a 'cap' prompt and a labelled 'caps' dataset."""
    monkeypatch.setenv("WORKBENCH_MODELS", str(write_models_file(tmp_path / "models.toml", server.base_url)))
    monkeypatch.setenv("WB_FAKE_KEY", "sk-test")
    migrate()
    with session_scope() as s:
        store.save_version(
            s,
            prompt_name="cap",
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
            params={"temperature": 0, "max_tokens": 8},
        )
        table = datasets.ParsedTable(
            ["country", "expected"], [{"country": c, "expected": a} for c, a in COUNTRIES[:rows]]
        )
        datasets.create_dataset(s, name="caps", table=table, expected_column="expected")


def answer(server, countries: list[str] | None = None, *, latency: float = 0.0) -> None:
    """Script the fake model to answer these countries (default: all) correctly; others get an echo."""
    for country, capital in COUNTRIES:
        if countries is None or country in countries:
            server.script(f"Capital of {country}?", [Reply(text=capital, latency=latency)])


def optimize(**kwargs) -> int:
    """Create and run an optimization on 'cap' x 'caps' with the fake model; returns its id."""
    spec = OptimizeSpec(
        **{
            "prompt": "cap",
            "dataset": "caps",
            "model": FAKE,
            "seed": 1,
            "metric": {"name": "normalized_exact"},
            **kwargs,
        }
    )
    with session_scope() as s:
        row, _ = create_optimization(s, spec)
    run_optimization(row.id)
    return row.id


__all__ = ["FAKE", "FAKE2", "answer", "optimize", "setup"]
