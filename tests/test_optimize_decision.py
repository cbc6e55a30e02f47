"""A proposal is offered for saving only when a paired test on the held-out rows says it is better.

Planted effects against the scripted server: the labelled optimizer makes no calls of its own, so
a country scripted wrong-then-right is wrong in the baseline pass and right in the optimized pass.
"""

import json

import pytest
from scipy import stats

from tests.optimize_helpers import FAKE, PLANTED, optimize, plant, setup, validation_countries
from workbench.cli import build_parser, main
from workbench.db import session_scope
from workbench.errors import ValidationError
from workbench.models import Optimization, PromptVersion
from workbench.optimize.decision import describe, proposal_of
from workbench.optimize.results import save_result

TASK = ["--prompt", "cap", "--dataset", "caps", "--model", FAKE, "--seed", "1"]
PLANTED_ARGS = [*TASK, "--optimizer", "labeled", "--set", "k=1", "--train-fraction", "0.1"]


def call(*argv: str) -> int:
    """Run one command without main's error boundary, so typed errors reach the test."""
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def env(tmp_path, monkeypatch, fake_server):
    setup(tmp_path, monkeypatch, fake_server)
    return fake_server


def _row(opt_id: int) -> Optimization:
    with session_scope() as s:
        return s.get(Optimization, opt_id)


def test_a_clear_gain_on_the_held_out_rows_is_offered_with_its_evidence(env):
    val = validation_countries(**PLANTED)
    assert len(val) == 7
    plant(env, fixed=val)  # every held-out row goes from wrong to right
    row = _row(optimize(**PLANTED))
    paired = row.program["paired"]
    assert (row.baseline_score, row.final_score) == (0.0, 1.0)
    assert paired["test"] == "exact McNemar" and paired["n"] == 7
    assert (paired["a_only"], paired["b_only"]) == (0, 7)
    assert paired["p_value"] == pytest.approx(stats.binomtest(7, 7, 0.5).pvalue)
    assert paired["ci_low"] > 0 and paired["verdict"] == "better"
    prop = proposal_of(row)
    assert prop.can_save and prop.improved and "Better on the held-out rows by a paired test" in prop.reason
    with session_scope() as s:
        version, created = save_result(s, optimization_id=row.id)
    saved = _row(row.id).config["saved"]
    assert created and saved["override"] is False and saved["evidence"]["verdict"] == "better"
    assert "paired verdict better" in version.note


def test_a_gain_that_could_be_chance_is_refused_unless_overridden(env):
    val = validation_countries(**PLANTED)
    plant(env, fixed=val[:1])  # one held-out row of seven fixed: higher mean, no evidence
    row = _row(optimize(**PLANTED))
    assert row.final_score > row.baseline_score  # the raw means alone would have said "improved"
    paired = row.program["paired"]
    assert (paired["a_only"], paired["b_only"], paired["p_value"]) == (0, 1, 1.0)
    assert paired["verdict"] == "inconclusive" and paired["rows_needed"] > 7
    prop = proposal_of(row)
    assert not prop.can_save and prop.can_override and "could be chance" in prop.reason
    with session_scope() as s, pytest.raises(ValidationError, match="is not saved") as err:
        save_result(s, optimization_id=row.id)
    assert err.value.field == "override" and "--" not in str(err.value)
    with session_scope() as s:
        assert s.query(PromptVersion).count() == 1
        version, _ = save_result(s, optimization_id=row.id, override=True)
        assert "Saved by override" in version.note and version.parent_id is not None
    saved = _row(row.id).config["saved"]
    assert saved["override"] is True and saved["verdict"] == "inconclusive"
    assert saved["evidence"]["b_only"] == 1 and saved["version_id"] == version.id


def test_cli_refuses_to_save_without_override_and_records_one(env, capsys):
    plant(env, fixed=validation_countries(**PLANTED)[:1])
    assert call("optimize", "run", *PLANTED_ARGS, "--save", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["saved"] is None and not out["proposal"]["can_save"] and out["proposal"]["can_override"]
    assert out["paired"]["verdict"] == "inconclusive" and out["paired"]["b_only"] == 1
    assert out["paired"]["test"] == "exact McNemar" and out["paired"]["n"] == 7
    opt_id = str(out["id"])

    assert call("optimize", "show", opt_id, "--no-diff") == 0
    shown = capsys.readouterr().out
    assert f"Held-out paired test: inconclusive ({describe(out['paired'])})." in shown
    assert f"optimize save {opt_id} --override" in shown

    assert main(["optimize", "save", opt_id]) == 2
    err = capsys.readouterr().err
    assert "is not saved: Not shown better" in err and "hint:" in err and "--override" in err

    assert call("optimize", "save", opt_id, "--override", "--no-rescore", "--json") == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["version"] == "cap@2" and saved["override"] is True
    assert saved["evidence"]["verdict"] == "inconclusive"
    assert call("optimize", "show", opt_id, "--json") == 0
    lineage = json.loads(capsys.readouterr().out)["saved"]
    assert lineage["override"] is True and lineage["evidence"]["b_only"] == 1
    assert call("prompt", "show", "cap@2", "--json") == 0
    assert "Saved by override" in json.loads(capsys.readouterr().out)["note"]


def test_cli_saves_a_clear_gain_with_its_evidence(env, capsys):
    plant(env, fixed=validation_countries(**PLANTED))
    assert call("optimize", "run", *PLANTED_ARGS, "--save", "--no-rescore", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["proposal"]["can_save"] and out["paired"]["verdict"] == "better"
    assert out["saved"]["version"] == "cap@2" and out["saved"]["override"] is False
    assert out["saved"]["evidence"]["b_only"] == 7


def test_the_rescore_sweep_reports_the_same_paired_comparison(env, capsys):
    plant(env, fixed=validation_countries(**PLANTED))
    assert call("optimize", "run", *PLANTED_ARGS, "--save", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    rescored = out["saved"]["rescore"]
    # The sweep ran input and saved versions on the 7 held-out rows; the scripted model now answers
    # every row right (its scripts end on the right answer), so the two agree row by row.
    assert rescored["rows"] == 7 and rescored["sweep_score"] == 1.0 and rescored["input_score"] == 1.0
    paired = rescored["paired"]
    assert (paired["n"], paired["a_only"], paired["b_only"]) == (7, 0, 0)
    assert paired["test"] == "exact McNemar" and paired["verdict"] == "not worse"
    with session_scope() as s:
        row = s.get(Optimization, out["id"])
        assert "Paired with the input version in the same sweep: not worse" in row.log
