"""Winners of a sweep: the best column and every column not significantly worse, with the test as evidence."""

import io
import json

import pandas as pd
import pytest
from scipy import stats

from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from tests.test_export import validate
from tests.test_gate import plant, wb
from workbench.db import session_scope
from workbench.release import export
from workbench.release.imports import import_file
from workbench.release.winners import sweep_winner, sweep_winners
from workbench.stats.paired import holm

ROWS = 12


@pytest.fixture
def planted(fake_models):
    """12 rows: echo@1 right everywhere (the best), echo@2 wrong on one row (a tie), echo@3 wrong
    everywhere (significantly worse), echo@4 wrong on rows 0-5 (p = 0.031 alone, 0.0625 after Holm)."""
    seed(ROWS)
    plant(fake_models, "[T]", ROWS, wrong=[7])
    plant(fake_models, "[Z]", ROWS, wrong=range(ROWS))
    plant(fake_models, "[F]", ROWS, wrong=range(6))
    sweep_id = plan(prompts=[f"echo@{n}" for n in (1, 2, 3, 4)], scoring={"metrics": ["exact"]})
    run(sweep_id)
    return sweep_id


def winners_doc(sweep_id: int) -> dict:
    with session_scope() as s:
        return json.loads(export.export_versions(s, selection=export.Selection(winners=sweep_id)))


def test_the_best_and_every_column_not_significantly_worse_are_tied_winners(planted):
    with session_scope() as s:
        won = [(f"echo@{v.number}", rule) for v, rule in sweep_winners(s, sweep_id=planted)]
        assert f"echo@{sweep_winner(s, sweep_id=planted)[0].number}" == "echo@1"
    # echo@4 loses 6 of 12 rows: significant alone (p = 0.031), not over three comparisons at once.
    raw = [1.0, stats.binomtest(0, 12, 0.5).pvalue, stats.binomtest(0, 6, 0.5).pvalue]
    adjusted = holm(raw)
    assert raw[2] < 0.05 < adjusted[2]
    assert [name for name, _ in won] == ["echo@1", "echo@2", "echo@4"]
    best, tie, close = (rule for _, rule in won)
    assert best["best"] is True and best["tied"] is True and best["rule"] == "mean_score"
    assert best["best_column"] == f"echo@1 | {FAKE}" and best["value"] == 1.0 and best["alpha"] == 0.05
    assert best["columns"] == [{"column": f"echo@1 | {FAKE}", "model": FAKE, "mean": 1.0, "best": True}]
    assert tie["best"] is False and tie["value"] == pytest.approx(11 / 12)
    [column] = tie["columns"]
    t = column["comparison"]
    assert column["column"] == f"echo@2 | {FAKE}" and column["best"] is False
    assert (t["a_label"], t["b_label"]) == (f"echo@1 | {FAKE}", f"echo@2 | {FAKE}")
    assert (t["n"], t["a_only"], t["b_only"]) == (ROWS, 1, 0)
    assert t["diff"] == pytest.approx(-1 / 12) and t["ci_low"] < t["diff"] < t["ci_high"]
    assert t["p_value"] == 1.0 and t["p_adjusted"] == pytest.approx(adjusted[0])
    assert t["test"] == "exact McNemar" and t["interval"] == "Tango score"
    assert t["verdict"] == "no detectable difference"
    assert close["columns"][0]["comparison"]["p_adjusted"] == pytest.approx(adjusted[2])


def test_winners_export_marks_tied_winners_with_evidence(planted):
    doc = winners_doc(planted)
    validate(doc)
    assert [(v["prompt"], v["version"]) for v in doc["versions"]] == [("echo", 1), ("echo", 2), ("echo", 4)]
    rules = [v["evidence"]["winner"] for v in doc["versions"]]
    assert [r["best"] for r in rules] == [True, False, False] and all(r["tied"] for r in rules)
    assert rules[1]["columns"][0]["comparison"]["a_only"] == 1
    with session_scope() as s:
        text = export.export_versions(s, selection=export.Selection(winners=planted), fmt="csv")
    df = pd.read_csv(io.StringIO(text))
    assert list(df["winner"]) == ["best", "tied", "tied"]
    assert df["winner_diff"].iloc[1] == pytest.approx(-1 / 12) and pd.isna(df["winner_p"].iloc[0])
    assert df["winner_p"].iloc[2] == pytest.approx(rules[2]["columns"][0]["comparison"]["p_adjusted"])


def test_a_clear_winner_stands_alone(fake_models):
    seed(ROWS)
    plant(fake_models, "[Z]", ROWS, wrong=range(ROWS))
    sweep_id = plan(prompts=["echo@1", "echo@2"], scoring={"metrics": ["exact"]})
    run(sweep_id)
    doc = winners_doc(sweep_id)
    [record] = doc["versions"]
    rule = record["evidence"]["winner"]
    assert record["version"] == 1 and rule["best"] is True and rule["tied"] is False
    assert len(rule["columns"]) == 1


def test_winners_are_columns_so_a_version_wins_on_the_model_where_it_holds(fake_models):
    """Two models answer alike here, so each version's two columns tie with each other."""
    seed(ROWS)
    plant(fake_models, "[Z]", ROWS, wrong=range(ROWS))
    sweep_id = plan(prompts=["echo@1", "echo@2"], models=[FAKE, FAKE2], scoring={"metrics": ["exact"]})
    run(sweep_id)
    with session_scope() as s:
        [(version, rule)] = sweep_winners(s, sweep_id=sweep_id)
    assert version.number == 1 and rule["best_column"] == f"echo@1 | {FAKE}"
    assert [c["column"] for c in rule["columns"]] == [f"echo@1 | {FAKE}", f"echo@1 | {FAKE2}"]
    assert rule["columns"][1]["comparison"]["diff"] == 0.0  # the tie with the other model's column


def test_cli_winners_export_then_import_elsewhere(planted, tmp_path, monkeypatch, capsys):
    path = tmp_path / "winners.json"
    assert wb("export", "versions", "--winners", str(planted), "--out", str(path)) == 0
    validate(json.loads(path.read_text()))
    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    from workbench.db import migrate

    migrate()
    with session_scope() as s:
        result = import_file(s, path.read_bytes(), filename=path.name)
    assert len(result.added) == 3 and result.conflicts == []
