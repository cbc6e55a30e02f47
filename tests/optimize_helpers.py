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


def validation_countries(**kwargs) -> list[str]:
    """The countries an optimization with these settings (see `optimize`) keeps for validation."""
    from workbench.models import Example
    from workbench.optimize.run import plan_optimization

    with session_scope() as s:
        plan = plan_optimization(s, _spec(**kwargs))
        return [s.get(Example, i).inputs["country"] for i in plan.val_ids]


def plant(server, fixed: list[str]) -> None:
    """Every country answered right, except `fixed`: wrong the first time (the baseline pass) and
    right after (the optimized pass). With the labelled optimizer (no calls of its own) that plants
    an improvement on exactly those held-out rows."""
    answer(server)
    for country, capital in COUNTRIES:
        if country in fixed:
            server.script(f"Capital of {country}?", [Reply(text="I am not sure."), Reply(text=capital)])


# One training row and seven held-out rows: enough for a paired test to tell a clear gain.
PLANTED = {"optimizer": "labeled", "settings": {"k": 1}, "train_fraction": 0.1}


def _spec(**kwargs) -> OptimizeSpec:
    return OptimizeSpec(
        **{
            "prompt": "cap",
            "dataset": "caps",
            "model": FAKE,
            "seed": 1,
            "metric": {"name": "normalized_exact"},
            **kwargs,
        }
    )


def optimize(**kwargs) -> int:
    """Create and run an optimization on 'cap' x 'caps' with the fake model; returns its id."""
    with session_scope() as s:
        row, _ = create_optimization(s, _spec(**kwargs))
    run_optimization(row.id)
    return row.id


__all__ = ["FAKE", "FAKE2", "PLANTED", "answer", "optimize", "plant", "setup", "validation_countries"]
