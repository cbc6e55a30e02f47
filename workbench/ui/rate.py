"""The Rate page: blind A/B voting on a sweep's outputs, and the leaderboard the votes give.

The card is an `st.fragment`, so a vote reruns only the card. Buttons carry keyboard shortcuts
(A, B, T, X, S; Streamlit ignores them while a text box has focus) and come first in the card, so
voting needs no mouse. Outputs show as Compare shows them (`outputs_view`): JSON pretty-printed,
tool calls as `name(args)`. Session state holds ids only: the current pair as a dict of run ids and
the pair ids this rater skipped (a skip stores nothing in the database). The rater is a typed name,
or the signed-in user when sign-in is configured (see `identity`).
"""

from __future__ import annotations

import random

import streamlit as st

from workbench import metrics, present
from workbench.errors import WorkbenchError
from workbench.models import Run
from workbench.rating import agreement
from workbench.rating.entries import dimensions_for
from workbench.rating.leaderboard import progress_for, ranking_report
from workbench.rating.pairs import DuplicateVoteError, Pair, card_for, next_pair, rateable_sweeps, record_vote
from workbench.ui import identity, outputs_view
from workbench.ui.common import db, error_text, show_error

DASH = present.DASH
DIMENSION_LABELS = {
    "version": "Prompt versions",
    "model": "Models",
    "temperature": "Temperatures",
    "param": "Grid parameters",
    "column": "Any column (version | model | params)",
}
# side -> (button label, shortcut, help)
BUTTONS = {
    "left": ("A is better", "A", "The left output (A) is better."),
    "right": ("B is better", "B", "The right output (B) is better."),
    "tie": ("Tie", "T", "Both are about as good."),
    "both_bad": ("Both bad", "X", "Neither output is acceptable."),
}
VERDICT_WORDS = {"left": "A better", "right": "B better", "tie": "tie", "both_bad": "both bad"}


# ---------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------


def render() -> None:
    """Draw the Rate page."""
    state = st.session_state
    state.setdefault("rate.rater_name", "")
    state.setdefault("rate.skipped", [])
    state.setdefault("rate.pair", None)
    state.setdefault("rate.last", None)
    state.setdefault("rate.error", None)
    if "rate.rater" not in state:  # the widget's value survives visits to other pages this way
        state["rate.rater"] = state["rate.rater_name"]

    st.title("⚖️ Rate")
    st.caption(
        "Blind pairwise rating: two outputs for the same input, sides hidden and shuffled. "
        "Your votes rank versions, models or settings with Bradley-Terry scores and intervals."
    )
    try:
        with db() as s:
            sweeps = dict(rateable_sweeps(s))
    except WorkbenchError as exc:
        show_error(exc)
        return
    if not sweeps:
        st.info(
            "Nothing to rate yet: run a sweep with two or more columns (prompt versions, models or "
            "temperatures) on the Run page, then come back."
        )
        return

    top = st.columns([2, 3, 2])
    rater = identity.rater_box(
        top[0], "rate.rater", lambda: state.update({"rate.rater_name": state["rate.rater"].strip()})
    )
    sweep_id = top[1].selectbox("Sweep", list(sweeps), format_func=sweeps.get, key="rate.sweep")
    try:
        with db() as s:
            dims = dimensions_for(s, sweep_id=sweep_id)
    except WorkbenchError as exc:
        show_error(exc)
        return
    if not dims:
        st.info("This sweep has no finished runs that differ yet; wait for it to finish or pick another.")
        return
    by = top[2].selectbox("Compare", dims, format_func=DIMENSION_LABELS.get, key="rate.by")
    with st.expander("Settings"):
        reveal = st.checkbox("Reveal which side was which after each vote", value=False, key="rate.reveal")
        show_expected = st.checkbox(
            "Show the expected answer (when the row has one)", value=False, key="rate.show_expected"
        )

    tab_rate, tab_board = st.tabs(["Rate", "Leaderboard"])
    with tab_rate:
        if not rater:
            st.info(
                f"{'Sign in' if identity.auth_configured() else 'Enter your name'} above to start rating."
            )
        else:
            _card(sweep_id, by, rater, reveal, show_expected)
    with tab_board:
        _board(sweep_id, by)


# ---------------------------------------------------------------------------------------------
# The card
# ---------------------------------------------------------------------------------------------


def _current_pair(session, sweep_id: int, by: str, rater: str) -> Pair | None:
    """The pair on screen, or a new one when there is none for this sweep, dimension and rater."""
    state = st.session_state
    held = state.get("rate.pair")
    if held and (held["sweep_id"], held["dimension"], held.get("rater")) == (sweep_id, by, rater):
        return Pair.from_dict(held)
    pair = next_pair(
        session, sweep_id=sweep_id, by=by, rater=rater, rng=random.Random(), exclude=state["rate.skipped"]
    )
    state["rate.pair"] = {**pair.to_dict(), "rater": rater} if pair else None
    return pair


def _vote(side: str) -> None:
    """Button callback: store the vote for the pair on screen and clear it for the next one."""
    state = st.session_state
    held = state.get("rate.pair")
    if not held:
        return
    pair = Pair.from_dict(held)
    # With sign-in the vote goes under the signed-in user, whatever the session state says.
    rater = identity.rater_for_vote(held.get("rater") or state["rate.rater"])
    if rater is None:  # sign-in is configured and nobody is signed in
        state["rate.error"] = "Sign in to vote: votes are stored under the account you sign in with."
        return
    try:
        with db() as s:
            record_vote(s, pair=pair, verdict_side=side, rater=rater, comment=state.get("rate.comment", ""))
    except DuplicateVoteError as exc:  # e.g. the same name voting in two tabs: move on
        state["rate.error"] = error_text(exc)
    except WorkbenchError as exc:
        state["rate.error"] = error_text(exc)
        return
    else:
        state["rate.error"] = None
    state["rate.last"] = {"side": side, "left": pair.left_entry, "right": pair.right_entry}
    state["rate.pair"] = None
    state["rate.comment"] = ""


def _skip() -> None:
    """Button callback: leave this pair for later; nothing is stored."""
    state = st.session_state
    held = state.get("rate.pair")
    if held:
        state["rate.skipped"] = [*state["rate.skipped"], Pair.from_dict(held).pair_id]
    state["rate.pair"] = None
    state["rate.last"] = None
    state["rate.error"] = None
    state["rate.comment"] = ""


def _unskip() -> None:
    st.session_state["rate.skipped"] = []


@st.fragment
def _card(sweep_id: int, by: str, rater: str, reveal: bool, show_expected: bool) -> None:
    """One pair to judge, with progress; reruns alone after each vote."""
    state = st.session_state
    try:
        with db() as s:
            pair = _current_pair(s, sweep_id, by, rater)
            prog = progress_for(s, sweep_id=sweep_id, by=by, rater=rater, exclude=state["rate.skipped"])
            card = card_for(s, pair) if pair else None
            # Tool calls by side (the card holds only the texts): shown as name(args).
            calls = [s.get(Run, i).tool_calls for i in (pair.left_run_id, pair.right_run_id)] if card else []
    except WorkbenchError as exc:
        show_error(exc)
        return

    done = prog.pairs_total - prog.pairs_left
    st.progress(
        done / prog.pairs_total if prog.pairs_total else 1.0,
        text=(
            f"You: {prog.rater_votes} votes · everyone: {prog.total_votes} votes by {prog.raters} "
            f"rater(s) · {prog.auto_ties} identical pairs counted as ties automatically · "
            f"{prog.pairs_left} of {prog.pairs_total} pairs left for you"
        ),
    )
    if state.get("rate.error"):
        st.warning(state["rate.error"])
    last = state.get("rate.last")
    if last and reveal:
        st.info(
            f"Last vote ({VERDICT_WORDS[last['side']]}): A was **{last['left']}**, B was **{last['right']}**."
        )
    if pair is None or card is None:
        if state["rate.skipped"]:
            st.info(f"No pairs left except the {len(state['rate.skipped'])} you skipped.")
            st.button("Show skipped pairs again", key="rate.unskip", on_click=_unskip)
        else:
            st.success("You have rated every pair of this comparison. See the Leaderboard tab.")
        return

    # The buttons come first in the card so they are the first focusable elements after the pickers.
    cols = st.columns(5)
    for col, (side, (label, key, help_text)) in zip(cols, BUTTONS.items(), strict=False):
        col.button(
            label,
            key=f"rate.{side}",
            help=help_text,
            shortcut=key,
            on_click=_vote,
            args=(side,),
            type="primary" if side in ("left", "right") else "secondary",
            width="stretch",
        )
    cols[4].button(
        "Skip",
        key="rate.skip",
        help="Decide later; nothing is stored.",
        shortcut="S",
        on_click=_skip,
        width="stretch",
    )
    st.text_input("Comment (optional)", key="rate.comment", max_chars=4000, placeholder="Why?")

    with st.container(border=True):
        st.markdown("**Input**")
        if card.variables:
            for name, value in card.variables.items():
                st.caption(name)
                st.code(str(value), language=None, wrap_lines=True)
        else:
            st.caption("This prompt takes no variables.")
        if show_expected:
            st.caption("expected answer")
            st.code(card.expected if card.expected is not None else DASH, language=None, wrap_lines=True)
    left, right = st.columns(2)
    for column, title, output, tool_calls, finish in (
        (left, "A", card.left_output, calls[0], card.left_finish),
        (right, "B", card.right_output, calls[1], card.right_finish),
    ):
        with column.container(border=True):
            st.markdown(f"**{title}**")
            outputs_view.show_output(output, tool_calls)  # JSON pretty-printed, tool calls as name(args)
            if finish == "length":
                st.caption("Cut off at max_tokens.")


# ---------------------------------------------------------------------------------------------
# The leaderboard
# ---------------------------------------------------------------------------------------------


def leaderboard_rows(board) -> list[dict[str, str]]:
    """The leaderboard as display rows of text, every missing number shown as a dash."""
    scored = metrics.mean_columns(board.columns)
    rows = []
    for r in board.to_dict(orient="records"):
        row = {
            "Rank": str(r["rank"]),
            "Entry": r["entry"],
            "Score": present.number(r["score"], ".0f"),
            "95% CI": f"{present.number(r['ci_low'], '.0f')} – {present.number(r['ci_high'], '.0f')}",
            "Votes": str(r["votes"]),
            "W / L / T": f"{r['wins']} / {r['losses']} / {r['ties']}",
            "Win rate": present.percent(r["win_rate"]) if r["votes"] else DASH,
        }
        for m in scored:
            row[f"{m.name} (mean)"] = present.score(r.get(m.mean_column))
        row["Cost"] = present.money(r.get("cost_usd"))
        row["Cost / run"] = present.money(r.get("cost_per_run_usd"), 6)
        row["Latency p50"] = present.number(r.get("latency_p50_ms"), ".0f", suffix=" ms")
        rows.append(row)
    return rows


def length_words(attrs: dict) -> str:
    """What a longer answer is worth, in plain words, from a length-controlled leaderboard's attrs,
    or why length control did not apply (the leaderboard's length_note)."""
    if not attrs.get("length_control"):
        return attrs.get("length_note") or "Length control needs votes: rate some pairs first."
    coef, (lo, hi) = attrs["length_coef"], attrs["length_coef_ci"]
    worth = (
        "a typically longer answer (longer by one standard deviation of the length differences in the "
        f"rated pairs) is worth {present.number(coef, '+.0f')} points (95% interval "
        f"{present.number(lo, '+.0f')} to {present.number(hi, '+.0f')})"
    )
    text = "Scores now hold output length equal. "
    if lo <= 0 <= hi:
        return text + f"The votes cannot tell whether length sways raters: {worth}."
    share = 1 / (1 + 10 ** (-coef / 400))  # Elo points -> share of votes won against an equal answer
    side = "longer" if coef > 0 else "shorter"
    return (
        text + f"Raters favour {side} answers: {worth}, so it is preferred "
        f"{present.percent(share)} of the time over an otherwise equally good one."
    )


def _heatmap(pairs, entries: list[str]):
    """Win share of the row entry over the column entry, annotated with W-L-T counts."""
    import plotly.graph_objects as go

    cells: dict[tuple[str, str], tuple[int, int, int]] = {}
    for p in pairs.itertuples():
        cells[(p.entry_a, p.entry_b)] = (p.wins_a, p.wins_b, p.ties)
        cells[(p.entry_b, p.entry_a)] = (p.wins_b, p.wins_a, p.ties)
    z, text = [], []
    for row in entries:
        zr, tr = [], []
        for other in entries:
            w, lost, t = cells.get((row, other), (0, 0, 0))
            n = w + lost + t
            zr.append((w + 0.5 * t) / n if n else None)
            tr.append(f"{w}-{lost}-{t}" if n else DASH)
        z.append(zr)
        text.append(tr)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=entries,
            y=entries,
            text=text,
            texttemplate="%{text}",
            colorscale="RdBu",
            zmin=0,
            zmax=1,
            hoverongaps=False,
            hovertemplate="%{y} vs %{x}: %{text} (win-loss-tie)<extra></extra>",
            colorbar={"title": "row wins"},
        )
    )
    fig.update_layout(
        title="Win / loss / tie (row vs column)",
        xaxis_title="opponent",
        yaxis={"autorange": "reversed"},
        height=120 + 60 * len(entries),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def _bias_figure(bias: agreement.PositionBias):
    """The left side's share of decisive votes with its 95% interval, against the unbiased 50%."""
    import plotly.graph_objects as go

    share, lo, hi = bias["left_share"], bias["ci_low"], bias["ci_high"]
    fig = go.Figure(
        go.Scatter(
            x=[share],
            y=["left side"],
            mode="markers",
            marker={"size": 12},
            error_x={"type": "data", "symmetric": False, "array": [hi - share], "arrayminus": [share - lo]},
            hovertemplate=f"{share:.0%} (95% CI {lo:.0%}-{hi:.0%}, n={bias['n']})<extra></extra>",
        )
    )
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="no bias")
    fig.update_layout(
        title="Position bias: share of decisive votes won by the left side",
        xaxis={"range": [0, 1], "tickformat": ".0%"},
        height=180,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


@st.fragment
def _board(sweep_id: int, by: str) -> None:
    """Leaderboard, win matrix, position bias and rater agreement (refreshes on its own)."""
    c1, c2 = st.columns([1, 3])
    c1.button("Refresh", key="rate.refresh", help="Recompute with the newest votes.")
    length_control = c2.toggle(
        "Control for output length",
        key="rate.length_control",
        help="Rank as if both outputs of every pair were equally long (Chatbot Arena's style "
        "control), so a verbose entry does not win on length alone.",
    )
    try:
        with db() as s:
            report = ranking_report(s, sweep_id=sweep_id, by=by, length_control=length_control)
    except WorkbenchError as exc:
        show_error(exc)
        return
    board = report["leaderboard"]
    st.caption(
        f"{report['votes']} human votes and {report['auto_ties']} automatic ties (identical outputs). "
        "Score: Bradley-Terry on the Elo scale (400 points = 10:1 odds), 95% bootstrap interval; "
        "entries whose intervals overlap share a rank."
    )
    if board.empty:
        st.info("No finished runs to rank yet.")
        return
    st.dataframe(leaderboard_rows(board), hide_index=True, width="stretch", key="rate.leaderboard")
    if length_control:
        st.info(length_words(board.attrs))
    if report["votes"] + report["auto_ties"] == 0:
        st.info("No votes yet for this comparison: rate some pairs in the Rate tab.")
        return
    st.plotly_chart(_heatmap(report["pairs"], list(board["entry"])), key="rate.heatmap")
    bias = report["position_bias"]
    if bias["n"]:
        st.plotly_chart(_bias_figure(bias), key="rate.bias")
        st.caption(
            f"Left side won {present.percent(bias['left_share'])} of {bias['n']} decisive votes "
            f"(95% CI {present.percent(bias['ci_low'])}–{present.percent(bias['ci_high'])}). Near 50% means "
            "raters did not favour a side."
        )
    else:
        st.caption("Position bias: no decisive human votes yet (ties and automatic ties pick no side).")
    agree = report["agreement"]
    if agree["items"]:
        kappa = "" if agree["kappa"] is None else f", Cohen's kappa {present.number(agree['kappa'], '.2f')}"
        st.markdown(
            f"**Rater agreement:** {present.number(agree['percent_agreement'], '.0f', suffix='%')} on "
            f"{agree['items']} pairs rated by "
            f"{', '.join(agree['raters'])}{kappa}."
        )
        if agree["kappa_note"]:
            st.caption(agree["kappa_note"])
    else:
        st.caption(f"Rater agreement: {agree['kappa_note']}")
