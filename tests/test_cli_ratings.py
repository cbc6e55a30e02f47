"""`ratings show SWEEP`, `ratings export` (and their older spellings), through the CLI's parser in-process."""

import csv
import io
import json
import random

import pytest

from tests.test_ratings import (
    add_length_votes,
    length_sweep,
    prefer_version_1,
    rate_all,
    setup_rating_env,
    version_sweep,
)
from workbench.cli import build_parser, main
from workbench.db import session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.rating import btfit, pairs

PLANTED = "sk-planted-SECRET-ratings-0123"


def call(*argv: str) -> int:
    """Run one command without main's error boundary, so typed errors reach the test."""
    args = build_parser().parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def rated(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    sweep_id = version_sweep()
    rate_all(sweep_id, "version", "ann", prefer_version_1)
    rate_all(sweep_id, "version", "bob", prefer_version_1, seed_=2)
    return sweep_id


@pytest.fixture
def length_rated(fake_server, tmp_path, monkeypatch):
    """A sweep with 30 pairs of outputs of different length, each voted on once (too few votes)."""
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    sweep_id = length_sweep(fake_server)
    assert add_length_votes(sweep_id, raters=("ann",)) < btfit.MIN_LENGTH_VOTES
    return sweep_id


def few_votes_note(have: int) -> str:
    return (
        f"Not enough votes for length control (need {btfit.MIN_LENGTH_VOTES}, have {have} on outputs "
        "of different length); the scores are not length-controlled."
    )


def length_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("Length control")]
    return line


def vote_with_comment(sweep_id: int, comment: str) -> None:
    with session_scope() as s:
        pair = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="cy", rng=random.Random(0))
        pairs.record_vote(s, pair=pair, verdict_side="tie", rater="cy", comment=comment)


def test_ratings_show_prints_leaderboard_bias_and_agreement(rated, capsys):
    assert call("ratings", "show", str(rated), "--by", "version", "--rounds", "30") == 0
    out = capsys.readouterr().out
    assert f"Sweep {rated} by version: 6 votes + 1 automatic ties" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert "exact" in header and "length" in header and "cost" in header and "p50 ms" in header
    first = lines[lines.index(header) + 2]
    assert first.split()[:2] == ["1", "echo@1"] and "6/0/1" in first
    assert "Position bias: the left side won" in out and "of 6 decisive votes" in out
    assert "Rater agreement: 100% on 3 pairs rated by ann, bob" in out
    assert "nan" not in out.lower()


@pytest.mark.parametrize(
    "argv",
    [
        ["ratings", "{id}", "--by", "version", "--rounds", "30"],  # the older spelling: no verb
        ["ratings", "--by", "version", "{id}", "--rounds", "30"],  # options before the sweep id
        ["ratings", "show", "{id}", "--rounds", "30"],
    ],
)
def test_ratings_id_is_ratings_show_id(rated, capsys, argv):
    assert call("ratings", "show", str(rated), "--rounds", "30") == 0
    expected = capsys.readouterr().out
    assert call(*[a.format(id=rated) for a in argv]) == 0
    assert capsys.readouterr().out == expected


def test_ratings_json(rated, capsys):
    assert call("ratings", str(rated), "--by", "version", "--rounds", "20", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["votes"] == 6 and data["auto_ties"] == 1
    assert [r["entry"] for r in data["leaderboard"]] == ["echo@1", "echo@2"]
    assert data["leaderboard"][0]["score_exact_mean"] == 0.75
    assert data["position_bias"]["n"] == 6 and data["agreement"]["items"] == 3


def test_ratings_json_with_length_control_gives_the_coefficient(length_rated, capsys):
    sweep = str(length_rated)
    assert call("ratings", sweep, "--rounds", "20", "--json") == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["length_control"] == {"applied": False, "coef": None, "coef_ci": None, "note": None}
    # 30 votes: asked for, not applied, and the note says why; the plain fit stands.
    assert call("ratings", sweep, "--rounds", "20", "--json", "--length-control") == 0
    few = json.loads(capsys.readouterr().out)
    assert few["length_control"] == {
        "applied": False,
        "coef": None,
        "coef_ci": None,
        "note": few_votes_note(30),
    }
    assert few["leaderboard"] == plain["leaderboard"]

    add_length_votes(length_rated, raters=("bob",), seed_=1)  # 60 votes on the 30 pairs
    assert call("ratings", sweep, "--rounds", "20", "--json", "--length-control") == 0
    data = json.loads(capsys.readouterr().out)
    length = data["length_control"]
    assert length["applied"] is True and isinstance(length["coef"], float) and length["note"] is None
    low, high = length["coef_ci"]
    assert low <= high
    assert sorted(r["entry"] for r in data["leaderboard"]) == ["echo@1", "echo@2"]
    assert data["votes"] == 60


def test_ratings_show_with_length_control_says_what_length_is_worth(length_rated, capsys):
    sweep = str(length_rated)
    assert call("ratings", "show", sweep, "--rounds", "20", "--length-control") == 0
    assert length_line(capsys.readouterr().out) == f"Length control: {few_votes_note(30)}"

    add_length_votes(length_rated, raters=("bob",), seed_=1)
    assert call("ratings", "show", sweep, "--rounds", "20", "--length-control") == 0
    line = length_line(capsys.readouterr().out)
    assert line.startswith("Length control: scores hold output length equal") and "95% CI" in line
    assert "worth" in line and "not length-controlled" not in line
    assert call("ratings", "show", sweep, "--rounds", "20") == 0
    assert "Length control" not in capsys.readouterr().out


def test_length_line_without_a_note_says_there_are_no_votes():
    from workbench.cli.ratings import _length_line

    length = {"applied": False, "coef": None, "coef_ci": None, "note": None}
    assert _length_line(length, True) == "Length control: no votes to fit it on yet."
    assert _length_line(length, False) is None


def test_rounds_default_to_the_rankings_default(rated, capsys):
    from workbench.cli import ratings as ratings_cli
    from workbench.rating.ranking import DEFAULT_ROUNDS

    assert f"{DEFAULT_ROUNDS:,}" == ratings_cli.ROUNDS  # the number the help text gives
    assert call("ratings", str(rated), "--json") == 0
    default = capsys.readouterr().out
    assert call("ratings", str(rated), "--json", "--rounds", str(DEFAULT_ROUNDS)) == 0
    assert capsys.readouterr().out == default


def test_ratings_without_votes_shows_dashes_not_nan(fake_server, tmp_path, monkeypatch, capsys):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    sweep_id = version_sweep()
    assert call("ratings", "show", str(sweep_id), "--by", "model", "--rounds", "5") == 0
    out = capsys.readouterr().out
    assert "0 votes" in out and "no decisive human votes yet" in out and "nan" not in out.lower()
    assert call("ratings", str(sweep_id), "--by", "model", "--json") == 0
    assert "NaN" not in capsys.readouterr().out


def test_bad_input_raises_typed_errors(rated):
    with pytest.raises(NotFoundError):
        call("ratings", "999")
    with pytest.raises(ValidationError, match="rounds"):
        call("ratings", "show", str(rated), "--rounds", "0")
    with pytest.raises(SystemExit):  # argparse refuses an unknown dimension
        call("ratings", str(rated), "--by", "colour")


def test_unknown_sweep_prints_where_to_find_sweeps(rated, capsys):
    assert main(["ratings", "show", "999"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: ") and "999" in err[0]
    assert err[1] == "hint: list sweeps with: python -m workbench sweep list"


def test_export_csv_and_json(rated, tmp_path, capsys):
    vote_with_comment(rated, "=1+1")
    assert call("ratings", "export", "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 + 6 + 1  # auto tie, ann and bob, cy
    assert rows[-1]["comment"] == "'=1+1" and rows[-1]["verdict"] == "tie"
    out = tmp_path / "pairs.json"
    assert call("ratings", "export", "--sweep", str(rated), "--format", "json", "--out", str(out)) == 0
    votes = json.loads(out.read_text())["ratings"]
    assert len(votes) == 8 and votes[-1]["comment"] == "=1+1" and votes[0]["auto"] is True
    assert f"Wrote 8 ratings to {out}" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_ratings_export_and_export_ratings_write_the_same_redacted_rows(rated, monkeypatch, capsys, fmt):
    monkeypatch.setenv("RATER_API_KEY", PLANTED)
    vote_with_comment(rated, f"pasted {PLANTED} by mistake")
    outputs = []
    for argv in (
        ["ratings", "export", "--sweep", str(rated)],
        ["ratings-export", "--sweep", str(rated)],  # the older spelling
        ["export", "ratings", str(rated)],
    ):
        assert main([*argv, "--format", fmt]) == 0
        outputs.append(capsys.readouterr().out)
    if fmt == "json":  # the envelope carries the export's own timestamp; the rows must match exactly
        outputs = [json.loads(o)["ratings"] for o in outputs]
    assert outputs[0] == outputs[1] == outputs[2]
    text = json.dumps(outputs[0])
    assert PLANTED not in text and "pasted [redacted] by mistake" in text


def test_export_ratings_of_every_sweep_by_default(rated, capsys):
    assert main(["export", "ratings", "--format", "csv"]) == 0
    assert len(list(csv.DictReader(io.StringIO(capsys.readouterr().out)))) == 7
