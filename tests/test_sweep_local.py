"""A small real sweep on the embedded local models: 2 models x 2 temperatures x 3 rows."""

import pytest
from sqlmodel import select

from workbench.db import migrate, session_scope
from workbench.models import Run
from workbench.prompts.examples import load_examples
from workbench.sweeps.execute import execute_sweep
from workbench.sweeps.plan import SweepSpec, create_sweep
from workbench.sweeps.summary import runs_frame, summarize

pytestmark = pytest.mark.local_model


def test_real_sweep_on_local_models():
    migrate()
    with session_scope() as s:
        load_examples(s)
        sweep, plan = create_sweep(
            s,
            SweepSpec(
                prompts=["capital"],
                models=["local/smollm2-135m-instruct", "local/gemma-3-270m"],
                dataset="capitals",
                params={"temperature": [0, 0.8]},
                max_rows=3,
                scoring={"metrics": ["contains", "length"]},
            ),
        )
    assert plan.cells == 12 and plan.estimated_cost_usd == 0.0
    report = execute_sweep(sweep.id)
    assert report.done == 12 and report.failed == 0
    with session_scope() as s:
        runs = s.exec(select(Run).where(Run.sweep_id == sweep.id)).all()
        table = summarize(runs_frame(s, sweep.id))
    assert all(r.status == "done" and r.output and r.completion_tokens > 0 and r.ttft_ms for r in runs)
    assert len(table) == 4 and (table["cost_usd"] == 0).all()
    # Greedy decoding of the chat model knows at least one of the three capitals.
    greedy = table[(table["model"] == "local/smollm2-135m-instruct") & (table["grid"] == "temperature=0")]
    assert greedy["score_contains_mean"].iloc[0] > 0
