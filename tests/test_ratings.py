"""Blind pairwise rating over a real sweep (fake OpenAI server): pairs, votes, leaderboard, export."""

import csv
import io
import json
import math
import random

import pytest
from sqlmodel import delete, select

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed, write_models_file
from workbench.db import migrate, session_scope
from workbench.errors import NotFoundError, ValidationError
from workbench.models import Rating, Run
from workbench.prompts import store
from workbench.rating import btfit, entries, leaderboard, pairs, ranking
from workbench.release import export
from workbench.sweeps.summary import runs_frame

V2_TEMPLATE = "Answer: {{ marker }} {{ text }}"


def setup_rating_env(fake_server, tmp_path, monkeypatch, rows: int = 4) -> None:
    """Fake models, a dataset of `rows` rows and prompt `echo` in two versions whose outputs differ.

    The fake server echoes the prompt, so echo@1 answers "echo: cell-00i row i" (= expected) and
    echo@2 "echo: Answer: cell-00i row i"; row 1 is scripted to answer "same" for every cell, so its
    outputs are identical across versions and models.
    """
    monkeypatch.setenv(
        "WORKBENCH_MODELS", str(write_models_file(tmp_path / "models.toml", fake_server.base_url))
    )
    monkeypatch.setenv("WB_FAKE_KEY", "sk-fake")
    migrate()
    seed(rows)
    with session_scope() as s:
        store.save_version(s, prompt_name="echo", messages=[{"role": "user", "content": V2_TEMPLATE}])
    fake_server.script("cell-001", [Reply(text="  same\n")])


def version_sweep(**kwargs) -> int:
    """A done sweep of echo@1 vs echo@2 on one model (exact + length scores)."""
    spec = {"prompts": ["echo@1", "echo@2"], "models": [FAKE], "scoring": {"metrics": ["exact", "length"]}}
    sweep_id = plan(**{**spec, **kwargs})
    run(sweep_id)
    return sweep_id


LENGTH_REPEATS = 10  # rows 0, 2 and 3 differ in length: 30 pairs = btfit.MIN_LENGTH_ITEMS


def length_sweep(fake_server) -> int:
    """A done version sweep with enough pairs of outputs of different length for length control.

    10 repeats of the 4 rows (row 1's outputs are identical): 30 pairs whose lengths differ. echo@2
    is longer on rows 0 and 3 but answers "ok" on row 2, so length is not the version in disguise.
    """
    fake_server.script("Answer: cell-002", [Reply(text="ok")])
    return version_sweep(repeats=LENGTH_REPEATS)


def add_length_votes(sweep_id: int, raters: tuple[str, ...] = ("lena", "lou"), seed_: int = 0) -> int:
    """Rating rows written directly: each rater votes once on every version pair of outputs of
    different length, for the longer output 4 times in 5, shown on a random (seeded) side.

    Returns the number of votes added: 30 per rater, on btfit.MIN_LENGTH_ITEMS pairs, so one rater
    gives too few for length control and two enough (btfit.MIN_LENGTH_VOTES).
    """
    rng = random.Random(seed_)
    runs = runs_by_id(sweep_id)
    added = 0
    with session_scope() as s:
        found = [
            p
            for p in pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")
            if len(runs[p.run_a_id].output) != len(runs[p.run_b_id].output)
        ]
        assert len(found) >= btfit.MIN_LENGTH_ITEMS
        for p in found:
            a_longer = len(runs[p.run_a_id].output) > len(runs[p.run_b_id].output)
            for rater in raters:
                longer_wins = added % 5 != 4
                s.add(
                    Rating(
                        sweep_id=sweep_id,
                        run_a_id=p.run_a_id,
                        run_b_id=p.run_b_id,
                        left_run_id=rng.choice((p.run_a_id, p.run_b_id)),
                        verdict="a" if a_longer == longer_wins else "b",
                        dimension="version",
                        rater=rater,
                    )
                )
                added += 1
    return added


@pytest.fixture
def env(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    return fake_server


def all_ratings(sweep_id):
    with session_scope() as s:
        return list(s.exec(select(Rating).where(Rating.sweep_id == sweep_id).order_by(Rating.id)))


def runs_by_id(sweep_id):
    with session_scope() as s:
        return {r.id: r for r in s.exec(select(Run).where(Run.sweep_id == sweep_id))}


def rate_all(sweep_id, by, rater, pick, seed_=0):
    """Let `rater` vote on every pair they are offered; pick(pair, runs) -> side. Returns the pairs."""
    rng = random.Random(seed_)
    runs = runs_by_id(sweep_id)
    seen = []
    while True:
        with session_scope() as s:
            pair = pairs.next_pair(s, sweep_id=sweep_id, by=by, rater=rater, rng=rng)
            if pair is None:
                return seen
            pairs.record_vote(s, pair=pair, verdict_side=pick(pair, runs), rater=rater)
        seen.append(pair)


def prefer_version_1(pair, runs):
    return "left" if "Answer:" not in runs[pair.left_run_id].output else "right"


# ---------------------------------------------------------------------------------------------
# Entries and pairs
# ---------------------------------------------------------------------------------------------


def test_entry_key_for_each_dimension(env):
    sweep_id = plan(prompts=["echo@1", "echo@2"], models=[FAKE, FAKE2], params={"temperature": [0, 0.7]})
    with session_scope() as s:
        df = runs_frame(s, sweep_id)
    row = df[(df["version_number"] == 2) & (df["model"] == FAKE2)].iloc[-1]
    assert entries.entry_key(row, "version") == "echo@2"
    assert entries.entry_key(row, "model") == FAKE2
    assert entries.entry_key(row, "temperature") == "temperature=0.7"
    assert entries.entry_key(row, "param") == "temperature=0.7"
    assert entries.entry_key(row, "column") == f"echo@2 | {FAKE2} | temperature=0.7"
    assert entries.entry_key(row.to_dict(), "model") == FAKE2  # plain mappings work too
    with pytest.raises(ValidationError, match="dimension"):
        entries.entry_key(row, "colour")
    with session_scope() as s:
        # Only temperature is on the grid, so "param" would repeat "temperature"; runs are pending.
        assert entries.dimensions_for(s, sweep_id=sweep_id) == []
    run(sweep_id)
    with session_scope() as s:
        assert entries.dimensions_for(s, sweep_id=sweep_id) == ["version", "model", "temperature", "column"]


def test_candidate_pairs_are_same_row_and_clean_comparisons(env):
    sweep_id = plan(prompts=["echo@1", "echo@2"], models=[FAKE, FAKE2], repeats=2)
    run(sweep_id)
    runs = runs_by_id(sweep_id)
    with session_scope() as s:
        by_version = pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")
        by_column = pairs.candidate_pairs(s, sweep_id=sweep_id, by="column")
    # 2 models x 4 rows x 2 repeats, one version pair each.
    assert len(by_version) == 16
    for p in by_version:
        a, b = runs[p.run_a_id], runs[p.run_b_id]
        assert p.run_a_id < p.run_b_id
        assert a.example_id == b.example_id and a.repeat_index == b.repeat_index
        assert a.model == b.model and a.version_id != b.version_id  # same model: a clean comparison
        assert {p.entry_a, p.entry_b} == {"echo@1", "echo@2"}
    # Any two of the 4 columns: 6 pairs x 4 rows x 2 repeats.
    assert len(by_column) == 48
    assert len({p.pair_id for p in by_column}) == 48


# ---------------------------------------------------------------------------------------------
# Selection
# ---------------------------------------------------------------------------------------------


def test_identical_outputs_are_auto_ties_and_never_shown(env):
    sweep_id = version_sweep()
    shown = rate_all(sweep_id, "version", "ann", prefer_version_1)
    runs = runs_by_id(sweep_id)
    assert len(shown) == 3  # 4 rows, row 1 identical after strip ("  same\n" both sides)
    assert all(runs[p.left_run_id].output != runs[p.right_run_id].output for p in shown)
    auto = [r for r in all_ratings(sweep_id) if r.auto]
    assert len(auto) == 1
    assert (auto[0].verdict, auto[0].rater, auto[0].dimension) == ("tie", "auto", "version")
    assert runs[auto[0].run_a_id].output == runs[auto[0].run_b_id].output
    with session_scope() as s:  # asking again records no second auto tie
        assert pairs.mark_identical_ties(s, sweep_id=sweep_id, by="version") == 0
        prog = leaderboard.progress_for(s, sweep_id=sweep_id, by="version", rater="ann")
    assert prog.to_dict() == {
        "rater_votes": 3,
        "total_votes": 3,
        "auto_ties": 1,
        "pairs_total": 3,
        "pairs_left": 0,
        "raters": 1,
    }


def test_replies_that_only_call_tools_differ_by_their_calls(env, fake_server):
    # Row 2 answers with a tool call and no text, a different call for each version's cell: the
    # empty texts are equal, the replies are not, so the pair is shown, not auto-tied.
    fake_server.script(
        "cell-002",
        [
            Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]),
            Reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]),
        ],
    )
    sweep_id = version_sweep()
    runs = runs_by_id(sweep_id)
    shown = rate_all(sweep_id, "version", "ann", prefer_version_1)
    called = [p for p in shown if runs[p.left_run_id].tool_calls]
    assert len(called) == 1 and runs[called[0].left_run_id].output == runs[called[0].right_run_id].output
    assert len([r for r in all_ratings(sweep_id) if r.auto]) == 1  # only row 1 ("same") is a tie
    with session_scope() as s:
        votes = pairs.load_votes(s, sweep_id=sweep_id, by="version")
    ids = {called[0].left_run_id, called[0].right_run_id}
    lengths = [(v.len_a, v.len_b) for v in votes if set(map(int, v.pair_id.split("-"))) == ids]
    assert lengths and all(a > 0 and b > 0 for a, b in lengths)  # `name(args)` has a length


def test_all_identical_outputs_leave_nothing_to_rate(env):
    sweep_id = plan(models=[FAKE, FAKE2])  # the fake server answers both models alike
    run(sweep_id)
    with session_scope() as s:
        assert pairs.next_pair(s, sweep_id=sweep_id, by="model", rater="ann") is None
        prog = leaderboard.progress_for(s, sweep_id=sweep_id, by="model", rater="ann")
        board = leaderboard.leaderboard_for(s, sweep_id=sweep_id, by="model", rounds=20)
    assert (prog.auto_ties, prog.pairs_total, prog.pairs_left) == (4, 0, 0)
    assert list(board["ties"]) == [4, 4] and list(board["score"]) == [1000.0, 1000.0]


def test_a_rater_never_gets_a_pair_twice_and_fewest_votes_come_first(env):
    sweep_id = plan(prompts=["echo@1", "echo@2"], models=[FAKE], repeats=2)
    run(sweep_id)
    ann = rate_all(sweep_id, "version", "ann", prefer_version_1)
    assert len(ann) == 6 and len({p.pair_id for p in ann}) == 6  # 4 rows x 2 repeats, minus row 1
    # Bob has voted once; the next pair offered to anyone with a vote left is one with fewer votes.
    with session_scope() as s:
        first = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="bob", rng=random.Random(1))
        pairs.record_vote(s, pair=first, verdict_side="tie", rater="bob")
    with session_scope() as s:
        second = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="cy", rng=random.Random(1))
    assert second.pair_id != first.pair_id  # first has 2 votes now, the others 1
    # Skipped pairs (kept by the caller) are left out too.
    with session_scope() as s:
        left = {p.pair_id for p in pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")} - {
            first.pair_id
        }
        skip = sorted(left)[:-1]
        only = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="bob", exclude=skip)
        assert only is not None and only.pair_id == (left - set(skip)).pop()
        assert pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="bob", exclude=left) is None
        assert (
            leaderboard.progress_for(s, sweep_id=sweep_id, by="version", rater="bob", exclude=skip).pairs_left
            == 1
        )


def test_both_orders_are_shown_over_time(env):
    sweep_id = version_sweep(max_rows=1)  # one row: one rateable pair
    lefts = []
    for i in range(6):
        with session_scope() as s:
            pair = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater=f"r{i}", rng=random.Random(7))
            pairs.record_vote(s, pair=pair, verdict_side="left", rater=f"r{i}")
        lefts.append(pair.left_run_id == pair.run_a_id)
    assert lefts.count(True) == 3 and lefts.count(False) == 3


# ---------------------------------------------------------------------------------------------
# Votes
# ---------------------------------------------------------------------------------------------


def test_record_vote_maps_sides_to_a_and_b(env):
    sweep_id = version_sweep(max_rows=1)
    with session_scope() as s:
        a, b = pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")[0].run_a_id, None
        pair = pairs.candidate_pairs(s, sweep_id=sweep_id, by="version")[0]
        a, b = pair.run_a_id, pair.run_b_id
        shown_b_left = pairs.Pair(sweep_id, "version", a, b, b, pair.entry_a, pair.entry_b)
        r1 = pairs.record_vote(s, pair=shown_b_left, verdict_side="left", rater="ann", comment=" ok ")
        r2 = pairs.record_vote(s, pair=shown_b_left.to_dict(), verdict_side="right", rater="bob")
        shown_a_left = pairs.Pair(sweep_id, "version", a, b, a)
        r3 = pairs.record_vote(s, pair=shown_a_left, verdict_side="left", rater="cy")
        r4 = pairs.record_vote(s, pair=shown_a_left, verdict_side="both_bad", rater="dee")
        stored = [(r.run_a_id, r.run_b_id, r.left_run_id, r.verdict, r.comment) for r in (r1, r2, r3, r4)]
    assert stored == [(a, b, b, "b", "ok"), (a, b, b, "a", ""), (a, b, a, "a", ""), (a, b, a, "both_bad", "")]
    with session_scope() as s:
        with pytest.raises(pairs.DuplicateVoteError):
            pairs.record_vote(s, pair=shown_a_left, verdict_side="tie", rater="ann")
        with pytest.raises(ValidationError, match="name"):
            pairs.record_vote(s, pair=shown_a_left, verdict_side="tie", rater="  ")
        with pytest.raises(ValidationError, match="reserved"):
            pairs.record_vote(s, pair=shown_a_left, verdict_side="tie", rater="auto")
        with pytest.raises(ValidationError, match="verdict"):
            pairs.record_vote(s, pair=shown_a_left, verdict_side="a", rater="eve")
        with pytest.raises(ValidationError, match="left"):
            pairs.record_vote(
                s, pair=pairs.Pair(sweep_id, "version", a, b, 999), verdict_side="tie", rater="eve"
            )


def test_load_votes_counts_a_vote_only_where_it_is_a_clean_comparison(env):
    sweep_id = plan(prompts=["echo@1", "echo@2"], models=[FAKE, FAKE2], max_rows=1)
    run(sweep_id)
    runs = runs_by_id(sweep_id)
    col = {(runs[i].version_id, runs[i].model): i for i in runs}
    v1, v2 = sorted({r.version_id for r in runs.values()})
    with session_scope() as s:
        # A diagonal column pair (version AND model differ) and a clean version pair.
        diag = pairs.Pair(sweep_id, "column", col[(v1, FAKE)], col[(v2, FAKE2)], col[(v1, FAKE)])
        clean = pairs.Pair(sweep_id, "version", col[(v1, FAKE)], col[(v2, FAKE)], col[(v2, FAKE)])
        pairs.record_vote(s, pair=diag, verdict_side="left", rater="ann")
        pairs.record_vote(s, pair=clean, verdict_side="right", rater="ann", comment="v1 is right")
        by_version = pairs.load_votes(s, sweep_id=sweep_id, by="version")
        by_column = pairs.load_votes(s, sweep_id=sweep_id, by="column")
    lengths = {"len_a": len(runs[clean.run_a_id].output), "len_b": len(runs[clean.run_b_id].output)}
    assert by_version == [
        ranking.Vote(
            "echo@1",
            "echo@2",
            "a",
            left_is_a=False,
            rater="ann",
            pair_id=clean.pair_id,
            auto=False,
            **lengths,
        )
    ]
    assert [v.pair_id for v in by_column] == [diag.pair_id, clean.pair_id]
    assert by_column[0].a == f"echo@1 | {FAKE}" and by_column[0].b == f"echo@2 | {FAKE2}"
    assert by_column[0].verdict == "a" and by_column[0].left_is_a


def test_load_votes_carry_both_output_lengths_in_characters(env):
    sweep_id = version_sweep()
    rate_all(sweep_id, "version", "ann", prefer_version_1)
    runs = runs_by_id(sweep_id)
    with session_scope() as s:
        votes = pairs.load_votes(s, sweep_id=sweep_id, by="version")
    assert len(votes) == 4  # 3 human votes + the automatic tie of row 1
    for v in votes:
        a_id, b_id = (int(i) for i in v.pair_id.split("-"))
        assert (v.len_a, v.len_b) == (len(runs[a_id].output), len(runs[b_id].output))
    # echo@2 says "Answer: " more than echo@1; the automatic tie's outputs are the same ("same").
    human = [v for v in votes if not v.auto]
    assert all(v.len_b - v.len_a == len("Answer: ") for v in human)
    (auto,) = [v for v in votes if v.auto]
    assert auto.len_a == auto.len_b > 0


# ---------------------------------------------------------------------------------------------
# Leaderboard
# ---------------------------------------------------------------------------------------------


def boards(sweep_id):
    """(plain leaderboard_for, length-controlled leaderboard_for, length-controlled ranking_report)."""
    with session_scope() as s:
        plain = leaderboard.leaderboard_for(s, sweep_id=sweep_id, by="version", rounds=30)
        controlled = leaderboard.leaderboard_for(
            s, sweep_id=sweep_id, by="version", rounds=30, length_control=True
        )
        report = leaderboard.ranking_report(
            s, sweep_id=sweep_id, by="version", rounds=30, length_control=True
        )
    return plain, controlled, report


def test_leaderboard_for_keeps_the_rankings_attrs_and_passes_length_control(env):
    sweep_id = length_sweep(env)
    rate_all(sweep_id, "version", "ann", prefer_version_1)
    humans = len(all_ratings(sweep_id)) - LENGTH_REPEATS  # row 1's automatic ties (equal lengths)
    assert 0 < humans < btfit.MIN_LENGTH_VOTES
    plain, controlled, report = boards(sweep_id)
    # The merge with scores and cost would drop them: leaderboard_for carries them over.
    nothing = {"length_control": False, "length_coef": None, "length_coef_ci": None, "length_note": None}
    assert plain.attrs == nothing
    # Too few votes: asked for but not applied, and the note says why (the plain fit is kept).
    assert "score_exact_mean" in controlled.columns
    assert controlled.attrs == {
        **nothing,
        "length_note": (
            f"Not enough votes for length control (need {btfit.MIN_LENGTH_VOTES}, have {humans} on "
            "outputs of different length); the scores are not length-controlled."
        ),
    }
    assert list(controlled["score"]) == list(plain["score"])
    assert report["leaderboard"].attrs == controlled.attrs

    assert add_length_votes(sweep_id) >= btfit.MIN_LENGTH_VOTES
    plain, controlled, report = boards(sweep_id)
    assert plain.attrs == nothing
    assert "score_exact_mean" in controlled.columns
    assert controlled.attrs["length_control"] is True and controlled.attrs["length_note"] is None
    lo, hi = controlled.attrs["length_coef_ci"]
    assert math.isfinite(controlled.attrs["length_coef"]) and lo <= hi
    assert report["leaderboard"].attrs == controlled.attrs
    assert controlled.attrs["length_coef"] > 0  # these raters favour the longer output
    assert list(controlled["score"]) != list(plain["score"])  # the length-controlled fit


def test_leaderboard_for_defaults_to_the_rankings_rounds():
    import inspect

    for fn in (leaderboard.leaderboard_for, leaderboard.ranking_report):
        assert inspect.signature(fn).parameters["rounds"].default == ranking.DEFAULT_ROUNDS


def test_leaderboard_joins_scores_cost_and_latency(env):
    sweep_id = version_sweep()
    rate_all(sweep_id, "version", "ann", prefer_version_1)
    rate_all(sweep_id, "version", "bob", prefer_version_1, seed_=3)
    with session_scope() as s:
        board = leaderboard.leaderboard_for(s, sweep_id=sweep_id, by="version", rounds=50)
        report = leaderboard.ranking_report(s, sweep_id=sweep_id, by="version", rounds=20)
    assert list(board["entry"]) == ["echo@1", "echo@2"]
    top, low = board.iloc[0], board.iloc[1]
    assert top["score"] > low["score"] and (top["wins"], top["losses"], top["ties"]) == (6, 0, 1)
    assert top["votes"] == 7  # 6 human votes + the auto tie of row 1
    # echo@1 echoes the expected answer except on the scripted row: exact 3 of 4; echo@2 never.
    assert top["score_exact_mean"] == pytest.approx(0.75) and low["score_exact_mean"] == 0.0
    assert top["runs"] == 4 and "score_length_mean" in board.columns
    # The fake models are priced: 10 prompt tokens at $1/M + completion words at $2/M per run.
    assert top["cost_usd"] > 0 and top["cost_per_run_usd"] == pytest.approx(top["cost_usd"] / 4)
    assert top["latency_p50_ms"] > 0
    assert report["votes"] == 6 and report["auto_ties"] == 1
    assert report["agreement"]["items"] == 3 and report["agreement"]["percent_agreement"] == 100.0
    assert report["position_bias"]["n"] == 6


def test_leaderboard_without_votes_lists_entries_without_nan(env):
    sweep_id = version_sweep()
    empty_sweep = plan(prompts=["echo@1", "echo@2"], use_cache=False)  # planned, nothing done yet
    with session_scope() as s:
        board = leaderboard.leaderboard_for(s, sweep_id=sweep_id, by="model", rounds=10)
        nothing = leaderboard.leaderboard_for(s, sweep_id=empty_sweep, by="version", rounds=10)
    assert list(board["entry"]) == [FAKE] and board.iloc[0]["votes"] == 0
    ranking_cols = ranking.LEADERBOARD_COLUMNS
    assert not board[ranking_cols].isna().any().any()
    assert nothing.empty and list(nothing.columns)[: len(ranking_cols)] == ranking_cols


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def test_export_rows_and_csv_neutralises_formulas(env):
    sweep_id = version_sweep(max_rows=2)
    with session_scope() as s:
        pair = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="=cmd", rng=random.Random(0))
        pairs.record_vote(s, pair=pair, verdict_side="left", rater="=cmd", comment="+SUM(A1:A9)")
    with session_scope() as s:
        rows = export.ratings_rows(s, sweep_id=sweep_id)
        assert export.ratings_rows(s) == rows  # one sweep in the database
        text_csv = export.export_ratings(s, sweep_id=sweep_id, fmt="csv")
        doc = json.loads(export.export_ratings(s, fmt="json"))  # every sweep: no sweep header
    auto, human = rows
    assert auto["auto"] is True and auto["rater"] == "auto" and auto["verdict"] == "tie"
    assert auto["winner_run_id"] is None and auto["created_at"].endswith("+00:00")
    assert human["rater"] == "=cmd" and human["comment"] == "+SUM(A1:A9)"
    assert (human["run_a_id"], human["run_b_id"], human["left_run_id"]) == (
        pair.run_a_id,
        pair.run_b_id,
        pair.left_run_id,
    )
    assert human["shown_left"] == ("a" if pair.left_run_id == pair.run_a_id else "b")
    assert human["winner_run_id"] == pair.left_run_id
    assert (human["version_a"], human["version_b"], human["model_a"]) == ("echo@1", "echo@2", FAKE)
    assert list(human) == export.RATING_COLUMNS
    parsed = list(csv.DictReader(io.StringIO(text_csv)))
    assert list(parsed[0]) == export.RATING_COLUMNS
    assert parsed[1]["rater"] == "'=cmd" and parsed[1]["comment"] == "'+SUM(A1:A9)"
    assert doc["ratings"] == rows and "sweep" not in doc
    assert [v["version"] for v in doc["versions"]] == [1, 2]  # the rated versions travel with the votes
    with pytest.raises(ValidationError, match="csv or json"):
        export.export_ratings(s, sweep_id=sweep_id, fmt="xml")


def test_ratings_export_has_a_header_without_votes_and_refuses_an_unknown_sweep(env):
    sweep_id = version_sweep(max_rows=1)
    with session_scope() as s:
        s.exec(delete(Rating))  # the automatic ties of identical outputs, too
    with session_scope() as s:
        header = export.export_ratings(s, sweep_id=sweep_id, fmt="csv").strip()
        assert header == ",".join(export.RATING_COLUMNS)
        assert json.loads(export.export_ratings(s, fmt="json"))["ratings"] == []
        with pytest.raises(NotFoundError, match="No sweep with id 999"):
            export.ratings_rows(s, sweep_id=999)


def test_ratings_export_redacts_api_keys(env, monkeypatch):
    secret = "sk-live-0123456789abcdef"
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", secret)
    sweep_id = version_sweep(max_rows=2)
    with session_scope() as s:
        pair = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="ann", rng=random.Random(0))
        pairs.record_vote(s, pair=pair, verdict_side="tie", rater="ann", comment=f"key was {secret}")
    with session_scope() as s:
        texts = [export.export_ratings(s, sweep_id=sweep_id, fmt=f) for f in ("csv", "json")]
        texts.append(json.dumps(export.ratings_rows(s)))
    for text in texts:
        assert secret not in text and "key was [redacted]" in text


def test_degenerate_numbers_stay_finite(env):
    sweep_id = version_sweep(max_rows=1)
    with session_scope() as s:
        pair = pairs.next_pair(s, sweep_id=sweep_id, by="version", rater="ann")
        pairs.record_vote(s, pair=pair, verdict_side="left", rater="ann")
        board = leaderboard.leaderboard_for(s, sweep_id=sweep_id, by="version", rounds=10)
    for c in ranking.LEADERBOARD_COLUMNS[1:]:
        assert all(math.isfinite(x) for x in board[c]), c
