"""summary.runs_frame against a straightforward construction of the same frame (ORM rows into
pandas, labels made cell by cell, scores pivoted and merged), on SQLite and PostgreSQL: a real
sweep run against the scripted server with two versions (one with tools), two models, two grid
values (four parameter sets with echo@2's tools), repeats, cache hits from an earlier sweep, a
failing row, tool calls, cached and reasoning tokens, and exact/contains/tool_call/json_match/judge
scores (these rows' expected answers are not JSON, so json_match has only empty scores; one judge
reply is not a number); then a sweep without scores, and one that does not exist."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlmodel import Session, col, func, select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from workbench import metrics
from workbench.db import session_scope
from workbench.models import Prompt, PromptVersion, Run, Score, Sweep
from workbench.prompts import store
from workbench.sweeps.plan import column_label, grid_keys, grid_label
from workbench.sweeps.summary import runs_frame

WEATHER = {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
COLUMNS = [
    "run_id",
    "version_id",
    "prompt",
    "version_number",
    "model",
    "params",
    "example_id",
    "repeat",
    "status",
    "cached",
    "output",
    "tool_calls",
    "finish_reason",
    "error_kind",
    "error_message",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "attempts",
]


def reference_frame(session: Session, sweep_id: int) -> pd.DataFrame:
    """The runs frame built the plain way: whole Run objects, every label made per cell, the
    scores pivoted (first value per run and metric, all-empty metrics dropped) and merged."""
    found = session.exec(
        select(Run, Prompt.name, PromptVersion.number)
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id)
        .order_by(col(Run.id))
    ).all()
    records = [
        {
            "run_id": r.id,
            "version_id": r.version_id,
            "prompt": name,
            "version_number": number,
            "model": r.model,
            "params": r.params,
            "example_id": r.example_id,
            "repeat": r.repeat_index,
            **{c: getattr(r, c) for c in COLUMNS[8:]},
        }
        for r, name, number in found
    ]
    df = pd.DataFrame(records, columns=COLUMNS)
    if df.empty:
        return df
    keys = grid_keys(session.get(Sweep, sweep_id))
    df["version"] = df["prompt"] + "@" + df["version_number"].astype(str)
    df["grid"] = df["params"].map(lambda p: grid_label(p, keys))
    df["column"] = [
        column_label(v, m, g) for v, m, g in zip(df["version"], df["model"], df["grid"], strict=True)
    ]
    df["params_json"] = df["params"].map(lambda p: json.dumps(p, sort_keys=True))
    scores = session.exec(
        select(Score).join(Run, Run.id == Score.run_id).where(Run.sweep_id == sweep_id)
    ).all()
    judged: dict[int, float] = {}
    for s in scores:
        if s.cost_usd is not None:
            judged[s.run_id] = judged.get(s.run_id, 0.0) + s.cost_usd
    df["scoring_cost_usd"] = df["run_id"].map(judged).fillna(0.0) if judged else 0.0
    long = pd.DataFrame(
        [(s.run_id, s.metric, s.value) for s in scores if s.metric in metrics.METRICS],
        columns=["run_id", "metric", "value"],
    )
    if not long.empty:
        wide = long.pivot_table(index="run_id", columns="metric", values="value", aggfunc="first")
        wide.columns = [metrics.METRICS[name].column for name in wide.columns]
        df = df.merge(wide, left_on="run_id", right_index=True, how="left")
    return df


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal columns, dtypes and values, and in object columns the same Python types (None is not NaN)."""
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for name in [c for c, dtype in got.dtypes.items() if pd.api.types.is_object_dtype(dtype)]:
        assert list(map(type, got[name])) == list(map(type, want[name])), name


@pytest.fixture
def sweeps(migrated, fake_models):
    """A small earlier sweep (its cells become cache hits) and the big one: their ids."""
    fake_server = fake_models
    seed(4)
    with session_scope() as s:  # echo@2: the same messages with a tool to call
        store.save_version(
            s,
            prompt_name="echo",
            messages=[{"role": "user", "content": "{{ marker }} {{ text }}"}],
            tools=[WEATHER],
            tool_choice="auto",
        )
    fake_server.script("Rate echo: cell-000", [Reply(text="a fine answer")])  # a judge reply without a score
    fake_server.script("Rate ", [Reply(text="4")])
    fake_server.script(
        "cell-001", [Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])]
    )
    fake_server.script("cell-002", [Reply(status=400, error_message="bad request for this row")])
    fake_server.script("cell-003", [Reply(text="thought it through", cached_tokens=6, reasoning_tokens=3)])
    grid = {"temperature": [0.0, 1.0]}
    earlier = plan(prompts=["echo@1"], models=[FAKE], params={"temperature": [0.0]}, repeats=2)
    run(earlier)
    scoring = {
        "metrics": ["exact", "contains", "tool_call", "json_match", "judge"],
        "judge_model": FAKE2,
        "judge_rubric": "Rate {{ output }} from 1 to 5.",
    }
    big = plan(prompts=["echo@1", "echo@2"], models=[FAKE, FAKE2], params=grid, repeats=2, scoring=scoring)
    run(big)
    unscored = plan(prompts=["echo@2"], models=[FAKE2], params=grid, max_rows=2)
    run(unscored)
    return earlier, big, unscored


def test_runs_frame_equals_the_plain_construction(sweeps, session):
    earlier, big, unscored = sweeps
    df = runs_frame(session, big)
    # The sweep has what the frame must carry: every kind of cell, value and score.
    assert len(df) == 2 * 2 * 2 * 4 * 2 and df["column"].nunique() == 8
    assert df["grid"].nunique() == 2 and df["params_json"].nunique() == 4  # echo@2's params hold its tools
    assert set(df["repeat"]) == {0, 1}
    # echo@1 on fake-model at temperature 0 came from `earlier`, but for the failing row.
    assert df["cached"].sum() == 3 * 2
    assert set(df["status"]) == {"done", "failed"} and set(df["error_kind"].dropna()) == {"bad_request"}
    assert df["tool_calls"].map(lambda c: isinstance(c, list)).sum() == 2 * 2 * 2 * 2
    assert df["cached_tokens"].notna().any() and df["reasoning_tokens"].notna().any()
    assert df["scoring_cost_usd"].gt(0).any() and df["score_judge"].isna().any()
    assert {"score_exact", "score_contains", "score_tool_call", "score_judge"} <= set(df.columns)
    assert "score_json_match" not in df.columns  # its scores are all empty (the expected is not JSON)
    assert session.exec(select(func.count()).select_from(Score).where(Score.metric == "json_match")).one() > 0
    for sweep_id in (big, earlier, unscored, 999):
        assert_same_frame(runs_frame(session, sweep_id), reference_frame(session, sweep_id))
