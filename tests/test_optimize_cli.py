"""The optimize commands, called through a parser built with optimize.add_commands."""

import argparse
import json

import pytest

from tests.optimize_helpers import FAKE, answer, setup
from workbench.cli import optimize
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Optimization


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench")
    optimize.add_commands(p.add_subparsers(dest="command"))
    return p


def call(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return args.func(args)


def test_every_optimize_command_and_option_has_help():
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, choice.dest
            for name, sub in action.choices.items():
                for a in sub._actions:
                    assert a.help, f"{name} {a.option_strings or a.dest}"


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    answer(fake_server)
    return fake_server


def test_dry_run_prints_the_plan_without_calls(env, capsys):
    assert (
        call("optimize", "--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--dry-run", "--json") == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["estimated_calls"] == 12 and plan["call_cap"] == 24 and env.count() == 0


def test_optimize_show_list_and_forced_save(env, capsys):
    code = call(
        "optimize",
        "--prompt",
        "cap",
        "--dataset",
        "caps",
        "--model",
        FAKE,
        "--optimizer",
        "labeled",
        "--set",
        "k=2",
        "--save",
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "done" and out["baseline_score"] == 1.0
    assert out["saved"] is None  # nothing better: not saved
    assert call("optimize-show", str(out["id"])) == 0
    shown = capsys.readouterr().out
    assert "Validation score: baseline 1.000, optimized 1.000." in shown and "+### assistant" in shown
    assert call("optimize-list") == 0 and "labeled" in capsys.readouterr().out
    assert call("optimize-save", str(out["id"]), "--force", "--json") == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["version"] == "cap@2" and saved["rescore"]["sweep_score"] == 1.0
    assert call("optimize-cancel", str(out["id"])) == 0  # finished: nothing to cancel
    with session_scope() as s:
        assert s.get(Optimization, out["id"]).status == "done"


def test_bad_input_is_a_workbench_error(env):
    with pytest.raises(ValidationError, match="Give --model"):
        call("optimize", "--prompt", "cap", "--dataset", "caps")
    with pytest.raises(ValidationError, match="needs a pattern"):
        call("optimize", "--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--metric", "regex")
