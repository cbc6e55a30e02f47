"""Compare's Charts tab: readable bars for long column labels (short keys, horizontal bars, the full
label on hover), costs that are all $0 or unknown said in words, latency boxes drawn from their
statistics (the same boxes plotly computes from the points), and consistency built in one pass."""

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from tests.sweep_helpers import FAKE, FAKE2, plan, run, seed
from tests.ui.conftest import page
from workbench import metrics
from workbench.db import migrate, session_scope
from workbench.stats.columns import consistency_by_column
from workbench.sweeps.summary import runs_frame
from workbench.ui import compare_charts, compare_consistency

FREE = "openai/free-model"
UNPRICED = "openai/unpriced-model"


def open_tab(at, name: str):
    """Open a Compare tab (only the open one is computed) and return it."""
    at.session_state["compare.tab"] = name
    at.run()
    assert not at.exception
    return at.tabs[["Side by side", "Summary", "Charts", "Difference"].index(name)]


def charts_tab(at):
    return at.tabs[2]


def chart(at, key: str) -> dict | None:
    """The plotly figure (as JSON) of the chart with this key on the Charts tab, or None."""
    for element in charts_tab(at).get("plotly_chart"):
        if element.proto.id.endswith(key):
            return json.loads(element.proto.spec)
    return None


def infos(at) -> list[str]:
    return [i.value for i in charts_tab(at).info]


@pytest.fixture
def long_labels(fake_models):
    """Four columns whose labels are real-length: 'echo@1 | openai/fake-model-large | temperature=0.7'."""
    seed(3)
    sweep_id = plan(models=[FAKE, FAKE2], params={"temperature": [0, 0.7]}, scoring={"metrics": ["exact"]})
    run(sweep_id)
    return sweep_id


def test_long_labels_get_short_keys_and_horizontal_bars_with_the_label_on_hover(long_labels):
    at = page("pages/4_Compare.py")
    assert not at.exception
    summary = open_tab(at, "Summary").dataframe[0].value
    labels = list(summary["column"])
    assert max(len(label) for label in labels) > compare_charts.LONG_LABEL
    assert list(summary["key"]) == ["C1", "C2", "C3", "C4"]  # the summary says which key is which

    open_tab(at, "Charts")
    tokens = chart(at, "compare.chart_tokens")
    assert [t["name"] for t in tokens["data"]] == ["tokens in", "tokens out"]
    for trace in tokens["data"]:
        assert trace["orientation"] == "h"
        assert trace["y"] == ["C1", "C2", "C3", "C4"]
        assert trace["customdata"] == labels  # the full label, shown by the hover template
        assert "%{customdata}" in trace["hovertemplate"]
    assert tokens["layout"]["yaxis"]["categoryarray"] == ["C1", "C2", "C3", "C4"]
    cells = runs_frame_of(long_labels)
    done = cells[cells["status"] == "done"]
    by_label = done.groupby("column")["completion_tokens"].sum()
    assert tokens["data"][1]["x"] == [int(by_label[label]) for label in labels]

    cost = chart(at, "compare.chart_cost")
    (bar,) = cost["data"]
    assert bar["orientation"] == "h" and bar["y"] == ["C1", "C2", "C3", "C4"]
    assert [row[0] for row in bar["customdata"]] == labels
    assert all(text.startswith("$") for text in bar["text"])
    keys_table = charts_tab(at).dataframe[0].value
    assert list(keys_table["key"]) == ["C1", "C2", "C3", "C4"] and list(keys_table["column"]) == labels

    # Keys belong to the sweep's columns, not to the filtered view: they stay put under a filter.
    at.multiselect(key="compare.f_models").set_value([FAKE2]).run()
    shown = {
        label: key for key, label in zip(["C1", "C2", "C3", "C4"], labels, strict=True) if FAKE2 in label
    }
    tokens = chart(at, "compare.chart_tokens")
    assert tokens["data"][0]["y"] == list(shown.values()) and tokens["data"][0]["customdata"] == list(shown)


def test_only_the_open_tab_is_computed(long_labels):
    at = page("pages/4_Compare.py")
    assert not at.exception
    assert len(at.tabs[0].dataframe) == 1  # the grid
    assert [len(t.dataframe) + len(t.get("plotly_chart")) for t in at.tabs[1:]] == [0, 0, 0]
    charts = open_tab(at, "Charts")
    assert len(charts.get("plotly_chart")) == 5 and len(at.tabs[0].dataframe) == 0
    assert len(open_tab(at, "Difference").dataframe) == 1


def test_a_sweep_over_typed_variables_on_every_tab(fake_models):
    seed(1)
    sweep_id = plan(
        dataset=None,
        variables={"marker": "cell-x", "text": "typed"},
        models=[FAKE, FAKE2],
        params={"temperature": [0, 0.7]},
        repeats=2,
        scoring={"metrics": ["length"]},
    )
    run(sweep_id)
    at = page("pages/4_Compare.py")
    assert not at.exception
    grid = at.tabs[0].dataframe[0].value
    assert (
        list(grid["row"]) == [1] and grid.iloc[0]["input"] == "(variables)" and grid.iloc[0]["expected"] == ""
    )
    assert grid.iloc[0, 3].startswith("[1] echo: cell-x typed\n[2] ")  # repeats numbered in one cell
    assert len(open_tab(at, "Summary").dataframe[0].value) == 4
    assert len(open_tab(at, "Charts").get("plotly_chart")) == 5
    open_tab(at, "Difference")


def runs_frame_of(sweep_id: int) -> pd.DataFrame:
    with session_scope() as s:
        return runs_frame(s, sweep_id)


def test_short_labels_are_shown_as_they_are():
    keys = compare_charts.column_keys(["a@1 | m | t=0", "a@2 | m | t=0"])
    assert keys == {"a@1 | m | t=0": "a@1 | m | t=0", "a@2 | m | t=0": "a@2 | m | t=0"}
    assert not compare_charts.uses_keys(keys)
    table = pd.DataFrame(
        {
            "column": list(keys),
            "prompt_tokens": [10, 20],
            "completion_tokens": [5, None],
            "cost_usd": [0.1, 0.2],
        }
    )
    fig = compare_charts.tokens_figure(table, keys)
    assert fig.data[0].y == tuple(keys) and fig.data[1].x == (5, 0)


def free_and_unpriced_models(tmp_path, monkeypatch, base_url: str, models: list[str]) -> None:
    """A models file with a $0 model and a model without a price, both served by the fake server."""
    prices = {FREE: "input_price_per_million = 0.0\noutput_price_per_million = 0.0\n", UNPRICED: ""}
    path = tmp_path / "free-models.toml"
    path.write_text(
        "".join(
            f'[[model]]\nid = "{m}"\napi_base = "{base_url}"\napi_key_env = "WB_FAKE_KEY"\n{prices[m]}\n'
            for m in models
        )
    )
    monkeypatch.setenv("WORKBENCH_MODELS", str(path))
    monkeypatch.setenv("WB_FAKE_KEY", "sk-fake")


@pytest.mark.parametrize(
    ("models", "costs", "said"),
    [
        ([FREE], {"$0.0000"}, "Every column cost $0 (free or local models)"),
        ([FREE, UNPRICED], {"$0.0000", "unknown"}, "Every column cost $0 or an unknown amount"),
        ([UNPRICED], {"unknown"}, "Cost is unknown for every column"),
    ],
)
def test_costs_that_are_all_zero_or_unknown_are_said_not_drawn(
    fake_server, tmp_path, monkeypatch, models, costs, said
):
    free_and_unpriced_models(tmp_path, monkeypatch, fake_server.base_url, models)
    migrate()
    seed(3)
    run(plan(models=models, params={"temperature": [0, 0.7]}))
    at = page("pages/4_Compare.py")
    assert not at.exception
    assert set(open_tab(at, "Summary").dataframe[0].value["cost"]) == costs  # unknown, never $0
    open_tab(at, "Charts")
    assert chart(at, "compare.chart_cost") is None
    assert any(said in text for text in infos(at)), infos(at)
    assert chart(at, "compare.chart_tokens") is not None  # the rest of the tab is drawn


def test_priced_columns_are_drawn_and_unknown_ones_named():
    table = pd.DataFrame({"column": ["a", "b", "c"], "cost_usd": [0.002, None, 0.0]})
    view = compare_charts.cost_view(table, {"a": "C1", "b": "C2", "c": "C3"})
    assert view.note is None and view.unknown == ["C2"]
    (bar,) = view.figure.data
    assert bar.y == ("C1", "C3") and bar.text == ("$0.0020", "$0.0000")


# ---------------------------------------------------------------------------------------------
# Latency boxes from their statistics
# ---------------------------------------------------------------------------------------------


def plotly_box(values: list[float]) -> dict[str, float]:
    """Box statistics the way plotly.js computes them from sample points (src/traces/box/calc.js):
    quartiles interpolated at p*n - 0.5 of the sorted sample, whiskers at the last point within
    1.5 IQR of each quartile. Written out loop by loop as a reference."""
    v = sorted(values)
    n = len(v)

    def interp(p: float) -> float:
        x = p * n - 0.5
        if x < 0:
            return v[0]
        if x > n - 1:
            return v[-1]
        frac = x % 1
        return frac * v[math.ceil(x)] + (1 - frac) * v[math.floor(x)]

    q1, med, q3 = interp(0.25), interp(0.5), interp(0.75)
    low_bound, high_bound = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    first_in = next(x for x in v if x >= low_bound)
    last_in = [x for x in v if x <= high_bound][-1]
    return {
        "q1": q1,
        "median": med,
        "q3": q3,
        "lowerfence": min(q1, first_in),
        "upperfence": max(q3, last_in),
    }


def test_box_statistics_match_plotlys_from_the_points():
    rng = random.Random(7)
    samples = [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0], [1.0, 1.0, 1.0, 9.0], [2.0] * 10 + [50.0, -40.0]]
    samples += [[rng.lognormvariate(6, 0.8) for _ in range(rng.randint(4, 400))] for _ in range(200)]
    samples += [[float(rng.randint(0, 5)) for _ in range(rng.randint(1, 30))] for _ in range(100)]  # ties
    for values in samples:
        got = compare_charts.box_stats(values)
        want = plotly_box(values)
        assert got["n"] == len(values)
        for stat, value in want.items():
            assert got[stat] == pytest.approx(value, rel=1e-12, abs=1e-12), (stat, values)
    assert compare_charts.box_stats([]) is None
    assert compare_charts.box_stats([float("nan"), 3.0])["median"] == 3.0


def test_the_latency_chart_sends_statistics_not_points(long_labels):
    at = page("pages/4_Compare.py")
    open_tab(at, "Charts")
    latency = chart(at, "compare.chart_latency")
    assert latency["layout"]["boxmode"] == "group"
    assert [t["name"] for t in latency["data"]] == ["0", "0.7"]  # one colour per temperature
    cells = runs_frame_of(long_labels)
    done = cells[cells["status"] == "done"]
    for trace in latency["data"]:
        assert "y" not in trace and trace["boxpoints"] is False
        assert trace["x"] == [FAKE, FAKE2]
        for i, model in enumerate(trace["x"]):
            mine = done[
                (done["model"] == model)
                & (done["params"].map(lambda p: str(p["temperature"])) == trace["name"])
            ]
            want = plotly_box(list(mine["latency_ms"]))
            for stat, value in want.items():
                assert trace[stat][i] == pytest.approx(value)


# ---------------------------------------------------------------------------------------------
# Consistency in one pass
# ---------------------------------------------------------------------------------------------


def test_consistency_in_one_pass_matches_the_stats_module():
    rng = np.random.default_rng(3)
    lines = []
    for c, repeats in enumerate([3, 3, 2, 1]):
        for row in range(40):
            for rep in range(repeats):
                status = "failed" if rng.random() < 0.05 else "done"
                value = float(rng.random() < 0.6) if status == "done" and rng.random() > 0.05 else None
                lines.append(
                    {
                        "column": f"col {c}",
                        "example_id": row + 1,
                        "repeat": rep,
                        "status": status,
                        "score_exact": value,
                    }
                )
    lines.append(
        {"column": "never scored", "example_id": 1, "repeat": 0, "status": "failed", "score_exact": None}
    )
    # A sweep over typed variables beside them (another sweep added): its one row is keyed by text.
    lines += [
        {"column": "typed", "example_id": None, "repeat": r, "status": "done", "score_exact": float(r)}
        for r in (0, 1)
    ]
    df = pd.DataFrame(lines)
    exact = metrics.get("exact")
    assert compare_consistency.consistency_tables(df, exact) == consistency_by_column(df, exact)
    analysis = compare_consistency.analyse(df.assign(row=df["example_id"], input="q"))
    assert analysis.found["exact"] == consistency_by_column(df, exact)
    flaky = analysis.flaky
    assert len(flaky) == sum(len(c.flaky) for c in analysis.found["exact"].values()) > 0
    first = flaky.iloc[0]
    mine = df[
        (df["column"] == first["column"]) & (df["example_id"] == first["row"]) & (df["status"] == "done")
    ]
    marks = ["✓" if v == 1 else "✗" for v in mine.sort_values("repeat")["score_exact"].dropna()]
    assert first["repeats"].split() == marks
