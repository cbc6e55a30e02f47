"""`python -m workbench gate`: a candidate against a baseline on the fake server; exit codes 0 / 1 / 2."""

import json

import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, seed
from workbench.cli import main
from workbench.db import session_scope
from workbench.prompts import store


def wb(*argv: str) -> int:
    """Run a command through the real CLI entry point (WorkbenchError -> 2, ProviderError -> 1)."""
    return main(list(argv))


@pytest.fixture
def gate_env(fake_models):
    """Prompt 'echo' (v1 labelled production) and dataset 'rows' whose expected answers v1 hits."""
    fake_server = fake_models
    seed(4)
    with session_scope() as s:
        store.set_label(s, version_id=store.resolve(s, "echo@1").id, label="production")
    return fake_server


def add_candidate(messages) -> str:
    with session_scope() as s:
        v, _ = store.save_version(s, prompt_name="echo", messages=messages)
        return f"echo@{v.number}"


# The fake server answers "echo: <last message>", so a system message leaves outputs unchanged.
HOLDS = [
    {"role": "system", "content": "Answer exactly."},
    {"role": "user", "content": "{{ marker }} {{ text }}"},
]
REGRESSES = [{"role": "user", "content": "CANDIDATE {{ marker }} {{ text }}"}]


def gate(*extra: str) -> int:
    return wb("gate", "--baseline", "echo:production", "--dataset", "rows", "--models", FAKE, *extra)


def test_a_regressing_candidate_exits_1_and_says_why(gate_env, capsys):
    cand = add_candidate(REGRESSES)
    assert gate("--prompt", cand, "--score", "exact") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL: {cand} vs echo@1 on exact")
    assert "Regression overall: exact 0.000 vs baseline 1.000" in out
    assert f"Regression on {FAKE}" in out
    overall = next(line for line in out.splitlines() if line.startswith("overall"))
    assert overall.split() == ["overall", "0.000", "1.000", "-1.000", "4", "0", overall.split()[6], "FAIL"]
    assert overall.split()[6].startswith("$")  # money from workbench.present, never a silent $0


def test_a_holding_candidate_exits_0_and_promote_moves_the_label(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand, "--promote") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"PASS: {cand} vs echo@1") and f"promoted: echo:production -> {cand}" in out
    with session_scope() as s:
        assert store.resolve_name(s, store.resolve(s, "echo:production")) == cand


def test_without_promote_the_label_stays(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand) == 0
    with session_scope() as s:
        assert store.resolve(s, "echo:production").number == 1


def test_json_verdict_for_machines(gate_env, capsys):
    cand = add_candidate(REGRESSES)
    assert gate("--prompt", cand, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["exit_code"] == 1 and data["metric"] == "exact"
    by_model = {r["model"]: r for r in data["rows"]}
    assert set(by_model) == {FAKE, "overall"}
    assert by_model["overall"]["candidate_mean"] == 0.0 and by_model["overall"]["baseline_mean"] == 1.0
    assert by_model["overall"]["delta"] == -1.0 and by_model[FAKE]["candidate_n"] == 4
    assert data["reasons"] and data["promoted"] is None


def test_rerun_is_served_from_cache_and_cost_still_counts(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand) == 0
    calls = gate_env.count()
    assert calls == 8  # 4 rows x (candidate + baseline)
    capsys.readouterr()
    # Cached cells cost nothing now, but the gate judges what the candidate costs to run.
    assert gate("--prompt", cand, "--max-cost", "0.000001", "--json") == 1
    assert gate_env.count() == calls
    data = json.loads(capsys.readouterr().out)
    assert any("costs $" in r and "above" in r for r in data["reasons"])
    assert data["rows"][-1]["candidate_cost_usd"] > 0.000001


def test_min_score_and_failed_cells_fail_the_gate(gate_env, capsys):
    cand = add_candidate(REGRESSES)
    gate_env.script("CANDIDATE cell-001", [Reply(status=400)])
    assert gate("--prompt", cand, "--max-regression", "1", "--min-score", "0.5") == 1
    out = capsys.readouterr().out
    assert "1 of the candidate's 4 cells failed" in out
    assert "is below" in out and "0.5" in out


@pytest.mark.parametrize(
    "argv, message, hint",
    [
        (["--prompt", "echo@1", "--baseline", "echo:production", "--models", FAKE], "--dataset", None),
        (["--prompt", "echo@1", "--baseline", "echo@1", "--dataset", "rows", "--models", FAKE, "--promote"],
         "names no label", "NAME:label"),
        (["--prompt", "nope@1", "--baseline", "echo:production", "--dataset", "rows", "--models", FAKE],
         "No prompt named 'nope'", None),
        (["--prompt", "echo@1", "--baseline", "echo:production", "--dataset", "rows", "--models", FAKE,
          "--max-regression", "-1"], "cannot be negative", "--max-regression"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(gate_env, capsys, argv, message, hint):
    assert wb("gate", *argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert message in lines[0]
    if hint:  # the core names the setting; the CLI turns it into the flag to change
        assert lines[1].startswith("hint: ") and hint in lines[1]
    assert gate_env.count() == 0


def test_a_metric_without_a_better_direction_cannot_gate(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand, "--score", "length") == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert "cannot gate a release" in error and "--score" in hint
    assert gate_env.count() == 0
