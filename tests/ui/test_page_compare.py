"""The Compare page: side-by-side grid, summary, charts, filters, errors shown in cells."""

import pytest

from tests.fakeserver import Reply
from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from tests.ui.conftest import page
from workbench.db import migrate


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
    grid = at.tabs[0].dataframe[0].value
    assert len(grid) == 5 and list(grid.columns[:3]) == ["row", "input", "expected"]
    first_col = grid.columns[3]
    assert grid.iloc[0][first_col] == "echo: cell-000 row 0"
    assert grid.iloc[4][first_col].startswith("⚠ bad_request")


def test_summary_per_column(compared):
    at = page("pages/4_Compare.py")
    summary = at.tabs[1].dataframe[0].value
    assert len(summary) == 4
    assert set(summary["n"]) == {5} and set(summary["failed"]) == {1}
    assert all(v.startswith("1.000") for v in summary["exact"])
    assert all(c.startswith("$") for c in summary["cost"])


def test_charts_render_and_follow_filters(compared):
    at = page("pages/4_Compare.py")
    charts = at.tabs[2].get("plotly_chart")
    assert len(charts) == 5  # tokens, cost, latency, score heatmap, score vs cost
    at.multiselect(key="compare.f_models").set_value([FAKE]).run()
    summary = at.tabs[1].dataframe[0].value
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
    summary = at.tabs[1].dataframe[0].value
    assert len(summary) == 5
    assert {c.split(" | ")[0] for c in summary["column"]} == {f"#{second}", f"#{compared}"}
    grid = at.tabs[0].dataframe[0].value
    assert len(grid) == 5  # rows line up by dataset row
