"""`ratings SWEEP --by ...` and `ratings-export`, driven through their own parser in-process."""

import argparse
import csv
import io
import json
import random

import pytest

from tests.test_ratings import prefer_version_1, rate_all, setup_rating_env, version_sweep
from workbench.db import session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.rating import pairs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench")
    pairs.add_commands(p.add_subparsers(dest="command"))
    return p


def call(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def rated(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    sweep_id = version_sweep()
    rate_all(sweep_id, "version", "ann", prefer_version_1)
    rate_all(sweep_id, "version", "bob", prefer_version_1, seed_=2)
    return sweep_id


def test_every_argument_has_help():
    for action in parser()._subparsers._group_actions[0].choices.values():
        for a in action._actions:
            assert a.dest == "help" or a.help, a.dest


def test_ratings_prints_leaderboard_bias_and_agreement(rated, capsys):
    assert call("ratings", str(rated), "--by", "version", "--rounds", "30") == 0
    out = capsys.readouterr().out
    assert f"Sweep {rated} by version: 6 votes + 1 automatic ties" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert "exact" in header and "cost" in header and "p50 ms" in header
    first = lines[lines.index(header) + 2]
    assert first.split()[:2] == ["1", "echo@1"] and "6/0/1" in first
    assert "Position bias: the left side won" in out and "of 6 decisive votes" in out
    assert "Rater agreement: 100% on 3 pairs rated by ann, bob" in out
    assert "nan" not in out.lower()


def test_ratings_json(rated, capsys):
    assert call("ratings", str(rated), "--by", "version", "--rounds", "20", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["votes"] == 6 and data["auto_ties"] == 1
    assert [r["entry"] for r in data["leaderboard"]] == ["echo@1", "echo@2"]
    assert data["leaderboard"][0]["score_exact_mean"] == 0.75
    assert data["position_bias"]["n"] == 6 and data["agreement"]["items"] == 3


def test_ratings_without_votes_shows_dashes_not_nan(fake_server, tmp_path, monkeypatch, capsys):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    sweep_id = version_sweep()
    assert call("ratings", str(sweep_id), "--by", "model", "--rounds", "5") == 0
    out = capsys.readouterr().out
    assert "0 votes" in out and "no decisive human votes yet" in out and "nan" not in out.lower()
    assert call("ratings", str(sweep_id), "--by", "model", "--json") == 0
    assert "NaN" not in capsys.readouterr().out


def test_bad_input_raises_typed_errors(rated):
    with pytest.raises(NotFoundError):
        call("ratings", "999")
    with pytest.raises(ValidationError, match="rounds"):
        call("ratings", str(rated), "--rounds", "0")
    with pytest.raises(SystemExit):  # argparse refuses an unknown dimension
        call("ratings", str(rated), "--by", "colour")


def test_export_csv_and_json(rated, tmp_path, capsys):
    with session_scope() as s:
        pair = pairs.next_pair(s, sweep_id=rated, by="version", rater="cy", rng=random.Random(0))
        pairs.record_vote(s, pair=pair, verdict_side="tie", rater="cy", comment="=1+1")
    assert call("ratings-export", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 + 6 + 1  # auto tie, ann and bob, cy
    assert rows[-1]["comment"] == "'=1+1" and rows[-1]["verdict"] == "tie"
    out = tmp_path / "pairs.json"
    assert call("ratings-export", "--sweep", str(rated), "--format", "json", "--out", str(out)) == 0
    data = json.loads(out.read_text())
    assert len(data) == 8 and data[-1]["comment"] == "=1+1" and data[0]["auto"] is True
    assert "Wrote 8 ratings" in capsys.readouterr().err
