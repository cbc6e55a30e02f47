"""`optimize run|show|list|cancel|save` and the older `optimize --prompt ...` / `optimize-show ...`."""

import json

import pytest

from tests.optimize_helpers import FAKE, answer, setup
from workbench.cli import build_parser, main
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Optimization

TASK = ["--prompt", "cap", "--dataset", "caps", "--model", FAKE]


def call(*argv: str) -> int:
    """Run one command without main's error boundary, so typed errors reach the test."""
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    answer(fake_server)
    return fake_server


@pytest.mark.parametrize("verb", [["optimize", "run"], ["optimize"]], ids=["run", "no-verb"])
def test_dry_run_prints_the_plan_without_calls(env, capsys, verb):
    assert call(*verb, *TASK, "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["estimated_calls"] == 12 and plan["call_cap"] == 24 and env.count() == 0


def optimize_once(capsys) -> dict:
    code = call("optimize", "run", *TASK, "--optimizer", "labeled", "--set", "k=2", "--save", "--json")
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "done" and out["baseline_score"] == 1.0
    assert out["saved"] is None  # nothing better: not saved
    return out


def test_optimize_show_list_and_forced_save(env, capsys):
    out = optimize_once(capsys)
    assert call("optimize", "show", str(out["id"])) == 0
    shown = capsys.readouterr().out
    assert "Validation score: baseline 1.000, optimized 1.000." in shown and "+### assistant" in shown
    assert call("optimize", "list") == 0 and "labeled" in capsys.readouterr().out
    assert call("optimize", "save", str(out["id"]), "--force", "--json") == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["version"] == "cap@2" and saved["rescore"]["sweep_score"] == 1.0
    assert call("optimize", "cancel", str(out["id"])) == 0  # finished: nothing to cancel
    with session_scope() as s:
        assert s.get(Optimization, out["id"]).status == "done"


def test_the_older_dashed_spellings_still_work(env, capsys):
    out = optimize_once(capsys)
    assert call("optimize", "show", str(out["id"]), "--no-diff") == 0
    shown = capsys.readouterr().out
    assert call("optimize-show", str(out["id"]), "--no-diff") == 0
    assert capsys.readouterr().out == shown
    assert call("optimize-list", "--limit", "5") == 0 and "labeled" in capsys.readouterr().out
    assert call("optimize-save", str(out["id"]), "--force", "--no-rescore", "--json") == 0
    assert json.loads(capsys.readouterr().out)["version"] == "cap@2"
    assert call("optimize-cancel", str(out["id"])) == 0
    assert f"Optimization #{out['id']}: done" in capsys.readouterr().out


def test_optimize_list_shows_more_than_the_run_limit(env, capsys):
    # `optimize run --limit` (rows) and `optimize list --limit` (how many) are different options
    optimize_once(capsys)
    assert call("optimize", "list") == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_bad_input_is_a_workbench_error(env):
    with pytest.raises(ValidationError, match="Give --model"):
        call("optimize", "run", "--prompt", "cap", "--dataset", "caps")
    with pytest.raises(ValidationError, match="needs a pattern"):
        call("optimize", *TASK, "--metric", "regex")


def test_an_unknown_optimization_exits_2(env, capsys):
    assert main(["optimize", "show", "999"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
