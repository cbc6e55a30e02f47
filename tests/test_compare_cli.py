"""`python -m workbench compare SWEEP`: paired tests between columns, on planted right/wrong rows."""

import argparse
import json

import pytest
from scipy import stats

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, plan, run, seed
from tests.test_cli import heavy_imports
from tests.test_gate import plant, wb
from workbench.stats.paired import holm

ROWS = 12


@pytest.fixture
def planted(fake_models):
    """Sweep over 12 rows: echo@1 right everywhere, echo@2 wrong on rows 1-3, echo@3 wrong on rows
    3-7, echo@4 wrong everywhere; scored with exact and length. Returns the sweep id."""
    seed(ROWS)
    plant(fake_models, "[A]", ROWS, wrong=[1, 2, 3])
    plant(fake_models, "[B]", ROWS, wrong=[3, 4, 5, 6, 7])
    plant(fake_models, "[Z]", ROWS, wrong=range(ROWS))
    sweep_id = plan(prompts=[f"echo@{n}" for n in (1, 2, 3, 4)], scoring={"metrics": ["exact", "length"]})
    run(sweep_id)
    return sweep_id


def compare_json(capsys, *argv: str) -> dict:
    assert wb("compare", *argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_json_reports_the_planted_discordant_counts_exactly(planted, capsys):
    data = compare_json(capsys, str(planted), "--a", "echo@2", "--b", "echo@3", "--metric", "exact")
    [c] = data["comparisons"]
    assert c["a_label"] == f"echo@2 | {FAKE}" and c["b_label"] == f"echo@3 | {FAKE}"
    # A (echo@2) right where B is wrong: rows 4-7; B right where A is wrong: rows 1-2.
    assert (c["a_only"], c["b_only"], c["n"]) == (4, 2, ROWS)
    assert c["mean_a"] == pytest.approx(9 / 12) and c["mean_b"] == pytest.approx(7 / 12)
    assert c["diff"] == pytest.approx(-2 / 12)
    assert c["test"] == "exact McNemar" and c["interval"] == "Tango score"
    assert c["p_value"] == pytest.approx(stats.binomtest(2, 6, 0.5).pvalue)
    assert c["p_adjusted"] is None and c["ci_low"] < c["diff"] < c["ci_high"]
    assert c["verdict"] == "no detectable difference" and c["rows_needed"] > ROWS
    assert c["rows_needed_delta"] == 0.05 and c["power"] == 0.8


def test_text_gives_means_delta_interval_p_counts_test_and_rows_needed(planted, capsys):
    assert wb("compare", str(planted), "--a", "echo@2", "--b", "echo@3", "--metric", "exact") == 0
    out = capsys.readouterr().out
    assert "exact (exact match (normalised)): exact McNemar test, Tango score interval" in out
    assert f"A  echo@2 | {FAKE}: mean 0.750" in out and f"B  echo@3 | {FAKE}: mean 0.583" in out
    assert "B - A -0.167, 95% interval [" in out and "n 12 rows" in out
    assert "discordant rows: A right / B wrong 4, A wrong / B right 2" in out
    assert "verdict: no detectable difference; about " in out and "at 80% power" in out


def test_a_clear_difference_is_better_or_worse_without_rows_needed(planted, capsys):
    [c] = compare_json(capsys, str(planted), "--a", "echo@1", "--b", "echo@4", "--metric", "exact")[
        "comparisons"
    ]
    assert (c["a_only"], c["b_only"]) == (ROWS, 0) and c["verdict"] == "worse" and c["rows_needed"] is None
    [c] = compare_json(capsys, str(planted), "--a", "echo@4", "--b", "echo@1", "--metric", "exact")[
        "comparisons"
    ]
    assert c["verdict"] == "better" and c["ci_low"] > 0


def test_baseline_compares_all_others_with_holm_adjusted_p(planted, capsys):
    data = compare_json(capsys, str(planted), "--baseline", "echo@1", "--metric", "exact")
    rows = data["comparisons"]
    assert [c["b_label"].split(" |")[0] for c in rows] == ["echo@2", "echo@3", "echo@4"]
    assert [(c["a_only"], c["b_only"]) for c in rows] == [(3, 0), (5, 0), (12, 0)]
    raw = [c["p_value"] for c in rows]
    assert raw == pytest.approx([stats.binomtest(0, k, 0.5).pvalue for k in (3, 5, 12)])
    assert [c["p_adjusted"] for c in rows] == pytest.approx(holm(raw))
    assert rows[2]["p_adjusted"] == pytest.approx(3 * raw[2])  # the smallest p times 3 comparisons
    assert all(c["p_adjusted"] >= c["p_value"] and c["p"] == c["p_adjusted"] for c in rows)
    assert [c["verdict"] for c in rows] == ["no detectable difference", "no detectable difference", "worse"]


def test_baseline_text_is_one_table_per_metric(planted, capsys):
    assert wb("compare", str(planted), "--baseline", "echo@1") == 0
    out = capsys.readouterr().out
    assert f"exact (exact match (normalised)) against echo@1 | {FAKE} (mean 1.000)" in out
    assert "p Holm-adjusted over 3" in out and "p (Holm)" in out
    assert "length (output length (characters)) against" in out  # every metric with scores
    line = next(x for x in out.splitlines() if x.startswith(f"echo@4 | {FAKE}") and "McNemar" in x)
    assert "12/0" in line and line.rstrip().endswith("worse")


def test_without_metric_every_scored_metric_is_compared(planted, capsys):
    data = compare_json(capsys, str(planted), "--a", "echo@1", "--b", "echo@2")
    by_metric = {c["metric"]: c for c in data["comparisons"]}
    assert set(by_metric) == {"exact", "length"}
    length = by_metric["length"]
    # The tag makes echo@2's wrong answers longer; length has no better direction, so no rows needed.
    assert length["test"] == "sign-flip permutation" and length["a_only"] is None
    assert length["verdict"] in ("higher", "no detectable difference") and length["rows_needed"] is None


def test_repeats_are_averaged_per_row(fake_models, capsys):
    seed(ROWS)
    # echo@2 is right on every row but row 0, where its two repeats disagree.
    plant(fake_models, "[F]", ROWS, wrong=[])
    right, wrong = Reply(text="echo: cell-000 row 0"), Reply(text="nope")
    fake_models.script("[F] cell-000", [right, wrong])
    sweep_id = plan(prompts=["echo@1", "echo@2"], repeats=2, scoring={"metrics": ["exact"]})
    run(sweep_id)
    [c] = compare_json(capsys, str(sweep_id), "--a", "echo@1", "--b", "echo@2")["comparisons"]
    assert c["n"] == ROWS and c["repeats"] == 2  # rows, not cells
    assert c["diff"] == pytest.approx(-0.5 / ROWS) and (c["a_only"], c["b_only"]) == (1, 0)
    assert c["test"] == "sign-flip permutation" and c["interval"] == "t"


def test_averaged_repeats_count_rows_where_a_rate_is_higher_not_right_or_wrong(fake_models, capsys):
    seed(ROWS)
    # echo@2: right everywhere but row 0, where its two repeats disagree (a pass rate of 0.5);
    # echo@3: wrong on row 1 in both repeats, so its rows stay 0/1 and McNemar applies.
    plant(fake_models, "[F]", ROWS, wrong=[])
    fake_models.script("[F] cell-000", [Reply(text="echo: cell-000 row 0"), Reply(text="nope")])
    plant(fake_models, "[G]", ROWS, wrong=[1])
    sweep_id = plan(prompts=["echo@1", "echo@2", "echo@3"], repeats=2, scoring={"metrics": ["exact"]})
    run(sweep_id)
    assert wb("compare", str(sweep_id), "--a", "echo@1", "--b", "echo@2") == 0
    out = capsys.readouterr().out
    assert "sign-flip permutation test" in out and "(repeats averaged, up to 2 per row)" in out
    assert "  rows where A's pass rate is higher 1, B's 0" in out
    assert "discordant" not in out and "right" not in out
    assert wb("compare", str(sweep_id), "--a", "echo@1", "--b", "echo@3") == 0
    out = capsys.readouterr().out
    assert "exact McNemar test" in out and "(repeats averaged, up to 2 per row)" in out
    assert "  discordant rows: A right / B wrong 1, A wrong / B right 0" in out
    assert "pass rate" not in out
    # One table with both kinds: the averaged counts are marked and the header says what they are.
    assert wb("compare", str(sweep_id), "--baseline", "echo@1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("A/B only right (*rate higher)" in line for line in lines)
    averaged = next(x for x in lines if x.startswith(f"echo@2 | {FAKE}"))
    mcnemar = next(x for x in lines if x.startswith(f"echo@3 | {FAKE}"))
    assert " 1/0* " in averaged and "sign-flip" in averaged
    assert " 1/0 " in mcnemar and "1/0*" not in mcnemar and "McNemar" in mcnemar


def test_a_table_of_averaged_repeats_only_heads_its_counts_rate_higher(fake_models, capsys):
    seed(ROWS)
    for tag, row in (("[F]", 0), ("[G]", 1)):  # each right everywhere but one row, half the time
        plant(fake_models, tag, ROWS, wrong=[])
        reply = Reply(text=f"echo: cell-{row:03d} row {row}")
        fake_models.script(f"{tag} cell-{row:03d}", [reply, Reply(text="nope")])
    sweep_id = plan(prompts=["echo@1", "echo@2", "echo@3"], repeats=2, scoring={"metrics": ["exact"]})
    run(sweep_id)
    assert wb("compare", str(sweep_id), "--baseline", "echo@1") == 0
    out = capsys.readouterr().out
    assert "A/B rate higher" in out and "only right" not in out and "*" not in out
    for version in ("echo@2", "echo@3"):
        line = next(x for x in out.splitlines() if x.startswith(f"{version} | {FAKE}"))
        assert " 1/0 " in line and "sign-flip" in line


@pytest.mark.parametrize(
    "argv, message, hint",
    [
        (["--a", "echo", "--b", "echo@2"], "matches several columns", "--a NAME@2"),
        (["--a", "nope", "--b", "echo@2"], "No column matches 'nope'", "sweep show"),
        (["--a", "echo@1", "--b", "echo@1"], "cannot be compared with itself", "--a"),
        (["--a", "echo@1"], "compare needs two columns", None),
        (["--a", "echo@1", "--baseline", "echo@2"], "not both", None),
        (["--a", "echo@1", "--b", "echo@2", "--metric", "json"], "no 'json' scores", "--metric"),
        (["--a", "echo@1", "--b", "echo@2", "--alpha", "2"], "alpha must be between 0 and 1", "--alpha"),
        (["--a", "echo@1", "--b", "echo@4", "--delta", "0"], "difference to detect", "--delta"),
        (["--a", "echo@1", "--b", "echo@4", "--power", "1"], "power must be between 0 and 1", "--power"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_a_hint(planted, capsys, argv, message, hint):
    assert wb("compare", str(planted), *argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert message in lines[0]
    if hint:
        assert lines[1].startswith("hint: ") and hint in lines[1]


def test_an_unknown_sweep_exits_2(fake_models, capsys):
    assert wb("compare", "999", "--a", "x", "--b", "y") == 2
    assert "No sweep with id 999" in capsys.readouterr().err


def test_every_option_has_help_and_help_imports_nothing_heavy():
    from workbench.cli.compare import add_commands

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    compare = parser._subparsers._group_actions[0].choices["compare"]
    for action in compare._actions:
        if action.dest != "help":
            assert action.help, f"compare {action.option_strings or action.dest} has no help"
    assert heavy_imports("compare", "--help") == []
