"""A real optimization on the embedded chat model: bootstrapped few-shot on the bundled capitals."""

import time

import pytest

from workbench.db import migrate, session_scope
from workbench.models import Optimization, PromptVersion
from workbench.optimize.rescore import rescore
from workbench.optimize.results import proposal_of, save_result
from workbench.optimize.run import OptimizeSpec, create_optimization
from workbench.optimize.worker import run_optimization
from workbench.prompts import store
from workbench.prompts.examples import load_examples

pytestmark = pytest.mark.local_model


def test_bootstrap_on_the_local_model_saves_a_better_version_that_rescores_the_same():
    migrate()
    with session_scope() as s:
        load_examples(s)
        row, _ = create_optimization(
            s,
            OptimizeSpec(
                prompt="capital",
                dataset="capitals",
                model="local/smollm2-135m-instruct",
                metric={"name": "normalized_exact"},
                optimizer="bootstrap",
                train_fraction=0.5,
                seed=0,
            ),
        )
    started = time.perf_counter()
    assert run_optimization(row.id) == "done"
    wall = time.perf_counter() - started
    with session_scope() as s:
        done = s.get(Optimization, row.id)
        assert done.lm_calls <= done.call_cap and done.cost_usd == 0.0
        assert done.final_score > done.baseline_score, done.log
        # Six held-out rows rarely prove a gain by the paired test: then only an override saves it.
        prop = proposal_of(done)
        assert prop.paired["n"] == len(done.config["plan"]["val_ids"]) and prop.changed
        assert prop.can_save == (prop.paired["verdict"] == "better") and (prop.can_save or prop.can_override)
        version, created = save_result(s, optimization_id=row.id, override=not prop.can_save)
        assert s.get(Optimization, row.id).config["saved"]["override"] == (not prop.can_save)
        base = store.resolve(s, "capital@1")
        assert created and version.number == 2 and version.source == "dspy" and version.parent_id == base.id
        assert [m["role"] for m in version.messages].count("assistant") >= 1  # the demo block
        print(
            f"baseline {done.baseline_score:.3f} -> optimized {done.final_score:.3f} "
            f"(paired: {prop.paired['verdict']}, p={prop.paired['p_value']:.3g}), "
            f"{done.lm_calls} calls, {wall:.1f} s"
        )
    result = rescore(row.id)
    assert result.sweep_score == result.dspy_score and result.differing_outputs == 0
    # The sweep ran the input version on the same rows, and agrees with DSPy's baseline too.
    assert result.input_score == done.baseline_score and result.paired["diff"] == prop.paired["diff"]
    with session_scope() as s:
        saved = s.get(PromptVersion, s.get(Optimization, row.id).output_version_id)
        assert f"Re-scored by sweep #{result.sweep_id}" in saved.note and "The scores agree." in saved.note
