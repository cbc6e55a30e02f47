"""`sweep run|show|list|resume|cancel` and their older spellings, in-process against the fake server."""

import json

import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, plan, seed
from workbench.cli import main
from workbench.db import session_scope
from workbench.models import Sweep

RUN = ["--prompt", "echo", "--dataset", "rows", "--models", FAKE, "--score", "exact,length"]


@pytest.fixture
def rows(fake_models):
    seed(4)
    return fake_models


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def status(sweep_id: int) -> str:
    with session_scope() as s:
        return s.get(Sweep, sweep_id).status


@pytest.mark.parametrize("argv", [["sweep", "run", *RUN], ["sweep", *RUN]], ids=["run", "no-verb"])
def test_sweep_run_and_the_older_spelling_without_a_verb(rows, capsys, argv):
    code, data = run_json(capsys, *argv, "--json")
    assert code == 0 and data["sweep"]["status"] == "done" and data["sweep"]["done"] == 4
    [column] = data["columns"]
    assert column["score_exact_mean"] == 1.0 and data["report"]["called"] == 4


def test_options_given_before_the_verb_are_kept(rows, capsys):
    code, data = run_json(capsys, "sweep", "--json", "--limit", "2", "run", *RUN)
    assert code == 0 and data["sweep"]["total"] == 2


def test_sweep_show_prints_metric_columns_by_name(rows, capsys):
    assert main(["sweep", "run", *RUN]) == 0
    out = capsys.readouterr().out
    sweep_id = int(out.split()[1].rstrip(":"))
    assert main(["sweep", "show", str(sweep_id)]) == 0
    shown = capsys.readouterr().out
    assert shown == out  # the summary printed after a run is `sweep show`
    header = next(line for line in shown.splitlines() if line.startswith("column"))
    assert header.split()[:5] == ["column", "n", "failed", "exact", "length"]
    assert "1.000" in shown and "$0.0001" in shown and "nan" not in shown.lower()
    assert main(["sweep-show", str(sweep_id)]) == 0  # the older spelling
    assert capsys.readouterr().out == shown
    code, data = run_json(capsys, "sweep", "--json", "show", str(sweep_id))
    assert code == 0 and data["sweep"]["sweep_id"] == sweep_id


def test_sweep_list_and_sweep_dash_list(rows, capsys):
    assert main(["sweep", "list"]) == 0
    assert "No sweeps yet" in capsys.readouterr().out
    sweep_id = plan()
    for argv in (["sweep", "list"], ["sweep-list", "--limit", "5"]):
        assert main(argv) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:3] == ["id", "name", "status"] and lines[2].split()[0] == str(sweep_id)


@pytest.mark.parametrize(
    ("cancel", "resume"),
    [(["sweep", "cancel"], ["sweep", "resume"]), (["sweep", "--cancel"], ["sweep", "--resume"])],
    ids=["verbs", "older-flags"],
)
def test_cancel_then_resume(rows, capsys, cancel, resume):
    sweep_id = plan()
    assert main([*cancel, str(sweep_id)]) == 0
    assert f"Cancel requested for sweep {sweep_id}" in capsys.readouterr().out
    assert status(sweep_id) == "cancelled" and rows.count() == 0
    code, data = run_json(capsys, *resume, str(sweep_id), "--json")
    assert code == 0 and data["sweep"]["status"] == "done" and rows.count() == 4


@pytest.mark.parametrize("resume", [["sweep", "resume"], ["sweep", "--resume"]], ids=["verb", "older-flag"])
def test_resume_with_retry_failed_runs_failed_cells_again(rows, capsys, resume):
    rows.script("cell-001", [Reply(status=400)])
    code, data = run_json(capsys, "sweep", "run", *RUN, "--json")
    sweep_id = data["sweep"]["sweep_id"]
    assert code == 0 and data["sweep"]["failed"] == 1
    rows.script("cell-001", [Reply()])
    code, data = run_json(capsys, *resume, str(sweep_id), "--json")
    assert data["sweep"]["failed"] == 1  # without --retry-failed a failed cell stays failed
    code, data = run_json(capsys, *resume, str(sweep_id), "--retry-failed", "--json")
    assert code == 0 and data["sweep"]["failed"] == 0 and data["sweep"]["done"] == 4


def test_a_sweep_without_models_says_which_flag(rows, capsys):
    assert main(["sweep", "run", "--prompt", "echo", "--dataset", "rows"]) == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert error.startswith("error: ") and "model" in error
    assert hint.startswith("hint: ") and "--models" in hint


@pytest.mark.parametrize("argv", [["sweep", "show", "999"], ["sweep", "cancel", "999"]])
def test_an_unknown_sweep_points_at_sweep_list(rows, capsys, argv):
    assert main(argv) == 2
    error, hint = capsys.readouterr().err.strip().splitlines()
    assert "999" in error and hint == "hint: list sweeps with: python -m workbench sweep list"
