"""The Compare page: side-by-side grid, summary (with consistency over repeats), charts, filters, errors
shown in cells, and the Difference tab (paired comparisons against a baseline column)."""

import pandas as pd
import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from tests.ui.conftest import page
from workbench import present
from workbench.db import migrate, session_scope
from workbench.prompts import store
from workbench.stats.columns import compare_columns
from workbench.ui import compare_diff


def tab(at, name: str):
    """Open a Compare tab (only the open tab is computed; opening one reruns the page) and return it."""
    at.session_state["compare.tab"] = name
    at.run()
    assert not at.exception
    return at.tabs[["Side by side", "Summary", "Charts", "Difference"].index(name)]


@pytest.fixture
def compared(fake_models):
    fake_server = fake_models
    seed(5)
    fake_server.script("cell-004", [Reply(status=400)])
    sweep_id = plan(
        models=[FAKE, FAKE2], params={"temperature": [0, 1]}, scoring={"metrics": ["exact", "length"]}
    )
    run(sweep_id)
    return sweep_id


def test_grid_shows_outputs_side_by_side_and_errors(compared):
    at = page("pages/4_Compare.py")
    assert not at.exception
    grid = tab(at, "Side by side").dataframe[0].value
    assert len(grid) == 5 and list(grid.columns[:3]) == ["row", "input", "expected"]
    first_col = grid.columns[3]
    assert grid.iloc[0][first_col] == "echo: cell-000 row 0"
    assert grid.iloc[4][first_col].startswith("⚠ bad_request")


def test_summary_per_column(compared):
    at = page("pages/4_Compare.py")
    summary = tab(at, "Summary").dataframe[0].value
    assert len(summary) == 4
    assert set(summary["n"]) == {5} and set(summary["failed"]) == {1}
    assert all(v.startswith("1.000") for v in summary["exact"])
    assert all(c.startswith("$") for c in summary["cost"])


def test_charts_render_and_follow_filters(compared):
    at = page("pages/4_Compare.py")
    charts = tab(at, "Charts").get("plotly_chart")
    assert len(charts) == 5  # tokens, cost, latency, score heatmap, score vs cost
    at.multiselect(key="compare.f_models").set_value([FAKE]).run()
    summary = tab(at, "Summary").dataframe[0].value
    assert len(summary) == 2 and all(FAKE + " |" in c for c in summary["column"])


def test_filters_that_match_nothing_say_so(compared):
    at = page("pages/4_Compare.py")
    at.multiselect(key="compare.f_status").set_value(["failed"]).run()
    at.multiselect(key="compare.f_models").set_value([FAKE]).run()
    at.selectbox(key="compare.f_metric").set_value("exact").run()
    assert any("No cells match" in w.value for w in at.warning)


def test_no_sweeps_yet(tmp_path):
    migrate()
    at = page("pages/4_Compare.py")
    assert any("No sweeps yet" in i.value for i in at.info)


def test_runs_of_two_sweeps_side_by_side(compared):
    second = plan(models=[FAKE], params={"temperature": [0]}, use_cache=False)
    run(second)
    at = page("pages/4_Compare.py")
    assert at.selectbox(key="compare.sweep").value == second  # newest first
    at.multiselect(key="compare.more_sweeps").set_value([compared]).run()
    summary = tab(at, "Summary").dataframe[0].value
    assert len(summary) == 5
    assert {c.split(" | ")[0] for c in summary["column"]} == {f"#{second}", f"#{compared}"}
    grid = tab(at, "Side by side").dataframe[0].value
    assert len(grid) == 5  # rows line up by dataset row


# ---------------------------------------------------------------------------------------------
# Difference tab and consistency over repeats
# ---------------------------------------------------------------------------------------------

V2_TEMPLATE = "Answer: {{ marker }} {{ text }}"


def two_versions(rows: int, **spec) -> int:
    """A done sweep of echo@1 (echoes the expected answer: always exact) vs echo@2 (never exact).

    The fake server echoes the prompt: echo@1 answers "echo: cell-00i row i" (= expected), echo@2
    "echo: Answer: cell-00i row i", eight characters longer.
    """
    seed(rows)
    with session_scope() as s:
        store.save_version(s, prompt_name="echo", messages=[{"role": "user", "content": V2_TEMPLATE}])
    sweep_id = plan(**{"prompts": ["echo@1", "echo@2"], "scoring": {"metrics": ["exact", "length"]}, **spec})
    run(sweep_id)
    return sweep_id


def diff_tab(at):
    return tab(at, "Difference")


def diff_table(at) -> pd.DataFrame:
    return diff_tab(at).dataframe[0].value


def test_difference_tab_shows_the_planted_difference_both_ways(fake_models):
    two_versions(10)
    at = page("pages/4_Compare.py")
    assert not at.exception
    diff_tab(at)  # its widgets exist once it is open
    assert at.selectbox(key="compare.diff_baseline").value == "echo@1 | " + FAKE
    table = diff_table(at).set_index("metric")
    exact = table.loc["exact"]
    assert exact["column"] == "echo@2 | " + FAKE
    assert (exact["baseline"], exact["this column"], exact["Δ"]) == ("1.000", "0.000", "-1.000")
    assert exact["verdict"] == "worse" and exact["p (Holm)"] == "0.002"  # 2 / 2**10, exact McNemar
    assert (exact["rows"], exact["rows won by baseline"], exact["rows won by this column"]) == (10, "10", "0")
    assert exact["test"].startswith("exact McNemar")
    length = table.loc["length"]  # no better direction: higher / lower, never better / worse
    assert length["verdict"] == "higher" and length["Δ"] == "+8.000"
    assert length["rows won by baseline"] == present.DASH and length["test"].startswith("sign-flip")
    assert len(diff_tab(at).get("plotly_chart")) == 1  # the forest plot
    assert not any("No column differs" in i.value for i in diff_tab(at).info)

    at.selectbox(key="compare.diff_baseline").set_value("echo@2 | " + FAKE).run()
    exact = diff_table(at).set_index("metric").loc["exact"]
    assert exact["column"] == "echo@1 | " + FAKE and exact["verdict"] == "better" and exact["Δ"] == "+1.000"


def test_difference_tab_without_repeats_and_with_failed_cells(compared):
    at = page("pages/4_Compare.py")
    assert not at.exception
    table = diff_table(at)
    assert len(table) == 3 * 2  # three columns against the baseline, on exact and length
    assert set(table["rows"]) == {4}  # the failed row is left out of every pair
    assert set(table["verdict"]) == {"no detectable difference"}
    assert set(table["Δ"]) == {"+0.000"}
    exact = table[table["metric"] == "exact"]
    assert all(int(n.replace(",", "")) > 4 for n in exact["rows to detect 5 points"])
    assert set(table[table["metric"] == "length"]["rows to detect 5 points"]) == {present.DASH}
    (info,) = [i.value for i in diff_tab(at).info]
    assert "No column differs detectably" in info and "5-point difference with 80% power" in info
    assert "Holm" in " ".join(c.value for c in diff_tab(at).caption)


def test_difference_tab_with_repeats_and_flaky_rows_in_the_summary(fake_models):
    # echo@2 gets row 2 right once in three repeats: that row is flaky, its pass rate 1/3.
    fake_models.script("Answer: cell-002", [Reply(text="echo: cell-002 row 2"), Reply(text="nope")])
    two_versions(10, repeats=3)
    at = page("pages/4_Compare.py")
    assert not at.exception
    exact = diff_table(at).set_index("metric").loc["exact"]
    assert exact["verdict"] == "worse" and exact["rows"] == 10
    assert exact["test"].startswith("sign-flip permutation") and "up to 3 repeats averaged" in exact["test"]
    assert exact["Δ"] == present.number(-(9 + 2 / 3) / 10, "+.3f")
    summary = tab(at, "Summary").dataframe[0].value.set_index("column")
    v1, v2 = summary.loc["echo@1 | " + FAKE], summary.loc["echo@2 | " + FAKE]
    assert (v1["exact pass^k"], v1["exact pass@k"], v1["exact flaky rows"]) == ("1.000", "1.000", 0)
    assert (v2["exact pass^k"], v2["exact pass@k"], v2["exact flaky rows"]) == ("0.000", "0.100", 1)
    assert "length pass^k" not in summary.columns  # not a pass/fail metric
    flaky = tab(at, "Summary").dataframe[1].value
    assert len(flaky) == 1
    assert (flaky.iloc[0]["column"], flaky.iloc[0]["row"]) == ("echo@2 | " + FAKE, 3)  # third row
    assert "cell-002" in flaky.iloc[0]["input"] and sorted(flaky.iloc[0]["repeats"].split()) == [
        "✓",
        "✗",
        "✗",
    ]


def test_no_consistency_columns_without_repeats(compared):
    summary = tab(page("pages/4_Compare.py"), "Summary").dataframe[0].value
    assert not any("pass^k" in c for c in summary.columns)


def test_difference_tab_on_a_sweep_with_one_column(fake_models):
    seed(3)
    run(plan(scoring={"metrics": ["exact"]}))
    at = page("pages/4_Compare.py")
    assert not at.exception
    assert any("nothing to compare" in i.value for i in diff_tab(at).info)
    assert len(diff_tab(at).dataframe) == 0


def test_difference_tab_without_scores(fake_models):
    seed(3)
    run(plan(models=[FAKE, FAKE2]))
    at = page("pages/4_Compare.py")
    assert not at.exception
    assert any("No scores to compare" in i.value for i in diff_tab(at).info)


def test_a_column_whose_cells_all_failed_has_no_rows_in_common():
    cells = pd.DataFrame(
        {
            "column": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "example_id": [1, 2, 3] * 3,
            "repeat": [0] * 9,
            "status": ["done"] * 6 + ["failed"] * 3,
            "score_exact": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, None, None, None],
        }
    )
    results = {"exact": compare_columns(cells, "exact", "a")}
    rows = {r["column"]: r for r in compare_diff.table_rows(results)}
    assert rows["c"]["verdict"] == "no rows in common" and rows["c"]["rows"] == 0
    assert rows["c"]["Δ"] == rows["c"]["p (Holm)"] == rows["c"]["rows to detect 5 points"] == present.DASH
    assert rows["b"]["rows won by baseline"] == "1" and rows["b"]["rows"] == 3
    assert compare_diff.forest_figure(results) is not None  # the empty comparison is simply not drawn
