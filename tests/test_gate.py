"""`python -m workbench gate`: a paired test with a margin on the fake server; exit codes 0 / 1 / 2 / 3.

Effects are planted: `plant` makes a version whose fake answers are right on chosen rows and wrong
on the others, so each case knows its discordant rows exactly.
"""

import json

import pytest
from sqlmodel import select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, seed
from workbench.cli import main
from workbench.db import session_scope
from workbench.prompts import store
from workbench.stats.paired import compare_paired
from workbench.stats.power import rows_needed


def wb(*argv: str) -> int:
    """Run a command through the real CLI entry point (WorkbenchError -> 2, ProviderError -> 1)."""
    return main(list(argv))


def plant(server, tag: str, rows: int, wrong=(), *, prompt: str = "echo") -> str:
    """A new version of `prompt` answered right on every row but `wrong` (row indexes); returns NAME@N.

    The version's text starts with `tag`, so the fake server tells its requests apart: rows it
    should get right are scripted to answer exactly the expected text of `tests.sweep_helpers.seed`;
    the others get the default echo, which carries the tag and so misses.
    """
    with session_scope() as s:
        v, _ = store.save_version(
            s,
            prompt_name=prompt,
            messages=[{"role": "user", "content": f"{tag} {{{{ marker }}}} {{{{ text }}}}"}],
        )
        ref = f"{prompt}@{v.number}"
    for i in range(rows):
        if i not in set(wrong):
            server.script(f"{tag} cell-{i:03d}", [Reply(text=f"echo: cell-{i:03d} row {i}")])
    return ref


@pytest.fixture
def gate_env(fake_models):
    """Prompt 'echo' (v1 labelled production) and dataset 'rows' whose expected answers v1 hits."""
    fake_server = fake_models
    seed(4)
    with session_scope() as s:
        store.set_label(s, version_id=store.resolve(s, "echo@1").id, label="production")
    return fake_server


@pytest.fixture
def gate_env40(fake_models):
    """As gate_env, with 40 rows."""
    seed(40)
    with session_scope() as s:
        store.set_label(s, version_id=store.resolve(s, "echo@1").id, label="production")
    return fake_models


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


def gate_json(capsys, *extra: str) -> tuple[int, dict]:
    code = gate(*extra, "--json")
    return code, json.loads(capsys.readouterr().out)


def test_a_clear_regression_exits_1_and_says_why(gate_env, capsys):
    cand = add_candidate(REGRESSES)
    assert gate("--prompt", cand, "--score", "exact") == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL: {cand} vs echo@1 on exact")
    assert "verdict: worse (margin 0.02; exact McNemar test, Tango score interval" in out
    assert "Regression overall: exact 0.000 vs baseline 1.000" in out
    assert f"Regression on {FAKE}" in out and "lies below 0; exact McNemar p=0.125, n=4 rows" in out
    overall = next(line for line in out.splitlines() if line.startswith("overall")).split()
    # model, means, delta, interval (two words), p, rows, only base/cand right, cells, failed, cost, verdict
    assert overall[:4] == ["overall", "0.000", "1.000", "-1.000"]
    assert overall[4].startswith("[-1.000,") and overall[5].endswith("]")
    assert overall[6:11] == ["0.125", "4", "4/0", "4", "0"]
    assert overall[11].startswith("$") and overall[12] == "worse"  # money never a silent $0


def test_an_identical_candidate_exits_0_and_promote_moves_the_label(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand, "--promote") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"PASS: {cand} vs echo@1") and f"promoted: echo:production -> {cand}" in out
    assert "verdict: not worse" in out
    with session_scope() as s:
        assert store.resolve_name(s, store.resolve(s, "echo:production")) == cand


def test_the_same_version_compares_with_itself(gate_env, capsys):
    code, data = gate_json(capsys, "--prompt", "echo@1")
    assert code == 0 and data["verdict"] == "not worse"
    assert data["rows"][-1]["delta"] == 0.0 and data["rows"][-1]["n"] == 4
    assert "same version" in data["notes"][0]


def test_without_promote_the_label_stays(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand) == 0
    with session_scope() as s:
        assert store.resolve(s, "echo:production").number == 1


def test_json_gives_the_interval_test_p_n_and_discordant_counts(gate_env, capsys):
    cand = add_candidate(REGRESSES)
    code, data = gate_json(capsys, "--prompt", cand)
    assert code == 1 and data["exit_code"] == 1 and data["outcome"] == "fail" and data["passed"] is False
    assert data["verdict"] == "worse" and data["metric"] == "exact"
    assert data["margin"] == 0.02 and data["alpha"] == 0.05
    by_model = {r["model"]: r for r in data["rows"]}
    assert set(by_model) == {FAKE, "overall"}
    overall = by_model["overall"]
    expected = compare_paired([1, 1, 1, 1], [0, 0, 0, 0], pass_fail=True)
    assert overall["candidate_mean"] == 0.0 and overall["baseline_mean"] == 1.0
    assert overall["delta"] == -1.0 and overall["n"] == 4 and by_model[FAKE]["candidate_n"] == 4
    assert (overall["ci_low"], overall["ci_high"]) == (expected.ci_low, expected.ci_high)
    assert overall["p_value"] == 0.125 and overall["test"] == "exact McNemar"
    assert overall["interval"] == "Tango score"
    assert (overall["baseline_only"], overall["candidate_only"]) == (4, 0)
    assert overall["verdict"] == "worse" and overall["rows_needed"] is None
    assert data["reasons"] and data["promoted"] is None


def test_rows_averaged_over_models_count_rate_higher_not_right_or_wrong(gate_env, capsys):
    cand = plant(gate_env, "[C]", 4)
    # Row 2: the first of the two models to ask gets it right, the other wrong (either way round).
    gate_env.script("[C] cell-002", [Reply(text="echo: cell-002 row 2"), Reply(text="nope")])
    argv = ("gate", "--baseline", "echo:production", "--dataset", "rows", "--models", f"{FAKE},{FAKE2}")
    assert wb(*argv, "--prompt", cand, "--json") == 3
    data = json.loads(capsys.readouterr().out)
    by_model = {r["model"]: r for r in data["rows"]}
    # Overall averages the two models per row: row 2 is 0.5 against 1, a pass rate, not a miss.
    overall = by_model["overall"]
    assert overall["test"] == "sign-flip permutation" and overall["delta"] == pytest.approx(-0.125)
    assert (overall["baseline_only"], overall["candidate_only"]) == (1, 0)
    (note,) = [n for n in data["notes"] if n.startswith("Inconclusive overall")]
    assert "rows where the baseline's pass rate is higher 1, the candidate's 0" in note
    assert "right" not in note
    # The model that got row 2 wrong has 0/1 rows: McNemar, and a row is right or wrong.
    (missed,) = [m for m in (FAKE, FAKE2) if by_model[m]["delta"] < 0]
    assert by_model[missed]["test"] == "exact McNemar"
    (note,) = [n for n in data["notes"] if n.startswith(f"Inconclusive on {missed}")]
    assert "only the baseline right on 1, only the candidate on 0" in note
    assert "pass rate" not in note


def test_a_two_row_difference_on_40_rows_is_inconclusive_exit_3(gate_env40, capsys):
    cand = plant(gate_env40, "[C]", 40, wrong=[5, 17])
    code, data = gate_json(capsys, "--prompt", cand, "--promote")
    assert code == 3 and data["outcome"] == "inconclusive" and data["verdict"] == "inconclusive"
    overall = data["rows"][-1]
    assert (overall["n"], overall["baseline_only"], overall["candidate_only"]) == (40, 2, 0)
    assert overall["delta"] == pytest.approx(-0.05) and overall["p_value"] == 0.5
    assert overall["ci_low"] < -0.02 and overall["ci_high"] > 0
    # The rows that would tell a difference of the margin, from the observed discordance.
    planted = compare_paired([1] * 40, [1] * 38 + [0] * 2, pass_fail=True)
    assert overall["rows_needed"] == rows_needed(planted, delta=0.02) > 40
    assert data["rows_needed_delta"] == 0.02 and data["reasons"] == []
    assert any(n.startswith("Inconclusive overall") and "rows would decide it" in n for n in data["notes"])
    with session_scope() as s:  # not promoted: the gate did not pass
        assert store.resolve(s, "echo:production").number == 1
    assert gate("--prompt", cand) == 3
    out = capsys.readouterr().out
    assert out.startswith(f"INCONCLUSIVE: {cand} vs echo@1") and "rows would decide it" in out


def test_allow_inconclusive_turns_3_into_0_and_may_promote(gate_env40, capsys):
    cand = plant(gate_env40, "[C]", 40, wrong=[5, 17])
    code, data = gate_json(capsys, "--prompt", cand, "--allow-inconclusive", "--promote")
    assert code == 0 and data["outcome"] == "pass" and data["verdict"] == "inconclusive"
    assert data["promoted"] == f"echo:production -> {cand}"


def test_a_wide_margin_makes_the_same_rows_not_worse(gate_env40, capsys):
    cand = plant(gate_env40, "[C]", 40, wrong=[5, 17])
    code, data = gate_json(capsys, "--prompt", cand, "--margin", "0.2")
    assert code == 0 and data["verdict"] == "not worse" and data["margin"] == 0.2


def test_a_clearly_better_candidate_is_better(gate_env40, capsys):
    weak = plant(gate_env40, "[W]", 40, wrong=range(0, 40, 2))  # right on half the rows
    code, data = gate_json(capsys, "--prompt", "echo@1", "--baseline", weak)
    assert code == 0 and data["verdict"] == "better"
    overall = data["rows"][-1]
    assert (overall["baseline_only"], overall["candidate_only"]) == (0, 20) and overall["ci_low"] > 0


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
    # --max-regression is the older name of --margin: a margin of 1 lets any drop count as not worse.
    assert gate("--prompt", cand, "--max-regression", "1", "--min-score", "0.5") == 1
    out = capsys.readouterr().out
    assert "verdict: not worse (margin 1;" in out
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
          "--max-regression", "-1"], "margin cannot be negative", "--margin"),
        (["--prompt", "echo@1", "--baseline", "echo:production", "--dataset", "rows", "--models", FAKE,
          "--margin", "-0.1"], "margin cannot be negative", "--max-regression"),
        (["--prompt", "echo@1", "--baseline", "echo:production", "--dataset", "rows", "--models", FAKE,
          "--alpha", "1.5"], "alpha (the test's error rate) must be between 0 and 1", "--alpha"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(gate_env, capsys, argv, message, hint):
    assert wb("gate", *argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert message in lines[0]
    if hint:  # the core names the setting (never a flag); the CLI turns it into the flag to change
        assert "--" not in lines[0] and lines[1].startswith("hint: ") and hint in lines[1]
    assert gate_env.count() == 0


def test_a_metric_without_a_better_direction_cannot_gate(gate_env, capsys):
    cand = add_candidate(HOLDS)
    assert gate("--prompt", cand, "--score", "length") == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert "cannot gate a release" in error and "--score" in hint
    assert gate_env.count() == 0


def test_help_documents_margin_alias_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        wb("gate", "--help")
    out = " ".join(capsys.readouterr().out.split())
    assert "--margin X, --max-regression X" in out and "--allow-inconclusive" in out
    assert "3 inconclusive" in out and "--alpha" in out


def test_a_big_gate_starts_its_worker_before_planning_its_sweep(gate_env40, monkeypatch, capsys):
    from workbench.models import Sweep
    from workbench.sweeps import processes, standby

    warmed = []

    def warm(self, url, n):
        with session_scope() as s:
            warmed.append((n, len(s.exec(select(Sweep)).all())))
        return []

    monkeypatch.setattr(standby.StandbyPool, "warm", warm)
    monkeypatch.setattr(processes, "cores", lambda: 2)
    monkeypatch.setattr(processes, "MIN_CELLS", 80)  # the gate's 2 versions x 40 rows
    assert gate("--prompt", add_candidate(HOLDS)) == 0
    assert warmed == [(1, 0)]  # one worker beside this process, asked for before the sweep existed
