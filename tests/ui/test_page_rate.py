"""AppTest of the Rate page over a real sweep: votes, blind sides, no repeats, skip, leaderboard."""

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from tests.sweep_helpers import FAKE, FAKE2, plan, run
from tests.test_ratings import add_length_votes, length_sweep, setup_rating_env, version_sweep
from workbench import config, present
from workbench.db import session_scope
from workbench.models import Rating, Run
from workbench.rating import btfit
from workbench.rating.leaderboard import leaderboard_for
from workbench.ui.rate import length_words

PAGE = str(config.PROJECT_ROOT / "pages" / "5_Rate.py")


@pytest.fixture
def sweep_id(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    return version_sweep()


@pytest.fixture
def length_sweep_id(fake_server, tmp_path, monkeypatch):
    """A sweep with 30 pairs of outputs of different length (enough for length control once voted)."""
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    return length_sweep(fake_server)


def open_page(name: str | None = "ann") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    if name is not None:
        at.text_input(key="rate.rater").input(name).run()
        assert not at.exception
    return at


def shown_outputs(at: AppTest) -> tuple[str, str]:
    """The two outputs on the card, left then right (the last two code blocks)."""
    return at.code[-2].value, at.code[-1].value


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


def human_ratings():
    with session_scope() as s:
        return list(s.exec(select(Rating).where(Rating.auto == False).order_by(Rating.id)))  # noqa: E712


def run_with_output(text: str) -> Run:
    with session_scope() as s:
        (found,) = s.exec(select(Run).where(Run.output == text)).all()
        return found


def visible_text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning") for e in at.get(kind)]
    for df in at.dataframe:
        parts.append(df.value.to_string())
    return "\n".join(str(p) for p in parts)


def test_a_vote_stores_run_ids_and_the_hidden_side_mapping(sweep_id):
    at = open_page()
    assert "3 of 3 pairs left for you" in progress_text(at)
    left_text, right_text = shown_outputs(at)
    # Identities are hidden: the card names no version or model (only the leaderboard tab does).
    card = at.tabs[0]
    card_text = " ".join(e.value for kind in ("markdown", "caption", "code") for e in card.get(kind))
    assert "echo@" not in card_text and FAKE not in card_text
    left_run, right_run = run_with_output(left_text), run_with_output(right_text)
    at.text_input(key="rate.comment").input("left reads better")
    at.button(key="rate.left").click().run()
    assert not at.exception
    (vote,) = human_ratings()
    assert (vote.run_a_id, vote.run_b_id) == tuple(sorted((left_run.id, right_run.id)))
    assert vote.left_run_id == left_run.id
    assert vote.verdict == ("a" if left_run.id == vote.run_a_id else "b")  # the left run won
    assert (vote.rater, vote.comment, vote.dimension, vote.sweep_id) == (
        "ann",
        "left reads better",
        "version",
        sweep_id,
    )
    assert at.text_input(key="rate.comment").value == ""  # cleared for the next card
    assert not any("A was" in i.value for i in at.info)  # reveal is off by default
    assert progress_text(at).startswith("You: 1 votes") and "2 of 3 pairs left" in progress_text(at)


def test_reveal_after_vote_when_chosen(sweep_id):
    at = open_page()
    at.checkbox(key="rate.reveal").check().run()
    left_run = run_with_output(shown_outputs(at)[0])
    at.button(key="rate.right").click().run()
    (info,) = [i.value for i in at.info if "A was" in i.value]
    with session_scope() as s:
        version = s.get(Run, left_run.id).version_id
    assert f"A was **echo@{1 if version == min_version() else 2}**" in info


def min_version() -> int:
    with session_scope() as s:
        return min(r.version_id for r in s.exec(select(Run)))


def test_a_rater_never_sees_the_same_pair_twice(sweep_id):
    at = open_page()
    seen = []
    for _ in range(5):
        if at.success:
            break
        seen.append(frozenset(shown_outputs(at)))
        at.button(key="rate.tie").click().run()
        assert not at.exception
    assert len(seen) == 3 and len(set(seen)) == 3  # 4 rows, one with identical outputs (auto tie)
    assert "rated every pair" in at.success[0].value
    assert len(human_ratings()) == 3
    # Another rater starts from the beginning, and still sees each pair once.
    at.text_input(key="rate.rater").input("bob").run()
    assert not at.success
    assert progress_text(at).startswith("You: 0 votes · everyone: 3 votes by 1 rater(s)")
    assert "3 of 3 pairs left for you" in progress_text(at)


def test_skip_stores_nothing_and_moves_on(sweep_id):
    at = open_page()
    first = frozenset(shown_outputs(at))
    at.button(key="rate.skip").click().run()
    assert not at.exception
    assert human_ratings() == []
    assert frozenset(shown_outputs(at)) != first
    assert "2 of 3 pairs left for you" in progress_text(at)
    for _ in range(2):
        at.button(key="rate.skip").click().run()
    assert human_ratings() == []
    assert "except the 3 you skipped" in at.info[-1].value
    at.button(key="rate.unskip").click().run()
    assert len(shown_outputs(at)) == 2  # a card again
    assert "3 of 3 pairs left for you" in progress_text(at)


def test_no_name_no_card(sweep_id):
    at = open_page(name=None)
    assert any("Enter your name" in i.value for i in at.info)
    assert [b.key for b in at.button if b.key == "rate.left"] == []


def test_leaderboard_and_degenerate_sweeps_never_show_nan(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    same = plan(models=[FAKE, FAKE2])  # identical outputs for every pair: only automatic ties
    run(same)
    at = open_page()
    assert at.selectbox(key="rate.sweep").value == same
    assert at.selectbox(key="rate.by").options == ["Models", "Any column (version | model | params)"]
    assert "rated every pair" in at.success[0].value
    assert "4 identical pairs counted as ties" in progress_text(at)
    board = at.dataframe[0].value
    assert list(board["Entry"]) == [FAKE, FAKE2] and list(board["W / L / T"]) == ["0 / 0 / 4"] * 2
    text = visible_text(at)
    assert "nan" not in text.lower() and "None" not in text
    assert len(at.get("plotly_chart")) == 1  # the win matrix; no decisive votes -> no bias figure
    # A sweep with votes: the leaderboard, heatmap and bias figure, still without NaN.
    voted = version_sweep()
    at.run()  # the new sweep appears in the picker
    at.selectbox(key="rate.sweep").set_value(voted).run()
    at.selectbox(key="rate.by").set_value("version").run()
    for side in ("left", "right", "left"):
        at.button(key=f"rate.{side}").click().run()
    at.button(key="rate.refresh").click().run()
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board.columns)[:7] == ["Rank", "Entry", "Score", "95% CI", "Votes", "W / L / T", "Win rate"]
    assert "exact (mean)" in board.columns and "Cost" in board.columns and "Latency p50" in board.columns
    assert board["Votes"].tolist() == ["4", "4"]  # 3 human votes + 1 automatic tie each
    assert len(at.get("plotly_chart")) == 2
    text = visible_text(at)
    assert "nan" not in text.lower() and "None" not in text
    assert "Left side won" in text


def test_length_control_toggle_refits_and_says_what_length_is_worth(length_sweep_id):
    at = open_page()
    for side in ("left", "right", "left"):
        at.button(key=f"rate.{side}").click().run()
    assert not any("output length" in i.value or "length control" in i.value for i in at.info)  # off
    at.toggle(key="rate.length_control").set_value(True).run()
    assert not at.exception
    # 3 votes: too few, so the page says why instead of a coefficient, and keeps the plain scores.
    with session_scope() as s:
        plain = leaderboard_for(s, sweep_id=length_sweep_id, by="version")
    note = (
        f"Not enough votes for length control (need {btfit.MIN_LENGTH_VOTES}, have 3 on outputs of "
        "different length); the scores are not length-controlled."
    )
    assert [i.value for i in at.info if "length" in i.value] == [note]
    assert list(at.dataframe[0].value["Score"]) == [present.number(x, ".0f") for x in plain["score"]]

    assert add_length_votes(length_sweep_id) >= btfit.MIN_LENGTH_VOTES
    at.button(key="rate.refresh").click().run()
    assert not at.exception
    (info,) = [i.value for i in at.info if "hold output length equal" in i.value]
    assert note not in [i.value for i in at.info]
    with session_scope() as s:
        board = leaderboard_for(s, sweep_id=length_sweep_id, by="version", length_control=True)
    coef, (low, high) = board.attrs["length_coef"], board.attrs["length_coef_ci"]
    assert "a typically longer answer (longer by one standard deviation" in info
    assert f"is worth {present.number(coef, '+.0f')} points" in info
    assert f"(95% interval {present.number(low, '+.0f')} to {present.number(high, '+.0f')})" in info
    # Which way it reads depends on the sides the page drew at random (see test_length_words_...).
    assert "cannot tell whether length sways raters" in info or "Raters favour" in info
    shown = at.dataframe[0].value
    assert list(shown["Score"]) == [present.number(x, ".0f") for x in board["score"]]
    assert "nan" not in visible_text(at).lower()


def test_length_words_say_which_way_length_sways_raters():
    longer = length_words({"length_control": True, "length_coef": 70.0, "length_coef_ci": (20.0, 120.0)})
    assert "Raters favour longer answers" in longer and "+70 points (95% interval +20 to +120)" in longer
    assert "preferred 60% of the time" in longer  # 1 / (1 + 10 ** (-70 / 400))
    shorter = length_words({"length_control": True, "length_coef": -70.0, "length_coef_ci": (-120.0, -20.0)})
    assert "Raters favour shorter answers" in shorter and "preferred 40% of the time" in shorter
    assert "needs votes" in length_words({"length_control": False, "length_coef": None})
    note = "Not enough votes for length control (need 50, have 4 on outputs of different length); ..."
    assert length_words({"length_control": False, "length_coef": None, "length_note": note}) == note
