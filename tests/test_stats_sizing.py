"""Tests of workbench.stats.sizing: the rows a sweep needs, from a finished sweep of the same prompt."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import select

from tests.sweep_helpers import FAKE, FAKE2
from workbench import metrics
from workbench.stats import power, sizing
from workbench.stats.columns import compare_columns
from workbench.sweeps.summary import runs_frame

EXACT, JUDGE, LENGTH = (metrics.get(n).column for n in ("exact", "judge", "length"))


def frame(columns: dict[tuple[str, str], list[float]], *, metric: str = EXACT) -> pd.DataFrame:
    """A runs frame from {(version, model): per-row values}, one repeat per row."""
    cells = []
    for (version, model), values in columns.items():
        for row, value in enumerate(values):
            cells.append(
                {
                    "column": f"{version} | {model}",
                    "version": version,
                    "model": model,
                    "grid": "",
                    "example_id": 100 + row,
                    "repeat": 0,
                    "status": "done",
                    metric: float(value),
                }
            )
    return pd.DataFrame(cells)


def test_the_two_best_columns_give_the_rows_needed():
    # 40 rows: v2 right on 30, v3 on 27 (3 rows apart, 5 disagreeing), v1 far behind on 10.
    v2 = [1] * 30 + [0] * 10
    v3 = [1] * 26 + [0] * 4 + [1] * 1 + [0] * 9
    v1 = [1] * 10 + [0] * 30
    df = frame({("p@1", FAKE): v1, ("p@2", FAKE): v2, ("p@3", FAKE): v3})
    found = sizing.estimate(df, sweep_id=7)
    assert (found.a_label, found.b_label, found.metric) == ("p@2 | " + FAKE, "p@3 | " + FAKE, "exact")
    (result,) = compare_columns(df, "exact", found.a_label, [found.b_label])
    assert found.rows_needed == power.rows_needed(result) == power.rows_needed_pass_fail(5 / 40)
    assert (found.rows, found.basis, found.differs_by) == (40, "5 of 40 rows disagreed", "versions")
    assert found.sentence(12) == (
        f"Your dataset has 12 rows; detecting a 5-point difference between versions needs about "
        f"{found.rows_needed:,} rows (from sweep #7)."
    )
    assert found.sentence(5000, subject="This sweep used", this_sweep=True) == (
        f"This sweep used 5,000 rows; detecting a 5-point difference between versions needs about "
        f"{found.rows_needed:,} rows (from this sweep), so there are enough."
    )
    assert "p@2 | " + FAKE in found.detail() and "80% power" in found.detail()


def test_the_chosen_versions_are_paired_when_the_sweep_has_two_of_them():
    v1 = [1] * 20 + [0] * 20
    v2 = [1] * 30 + [0] * 10
    v3 = [1] * 29 + [0] * 11
    df = frame({("p@1", FAKE): v1, ("p@1", FAKE2): v1[::-1], ("p@2", FAKE): v2, ("p@3", FAKE): v3})
    chosen = sizing.estimate(df, versions=["p@1"])
    assert (chosen.a_label, chosen.b_label, chosen.differs_by) == (
        "p@1 | " + FAKE,
        "p@1 | " + FAKE2,
        "models",
    )
    assert chosen.basis == "40 of 40 rows disagreed"
    # One chosen version in the sweep (or none) is no pair: the sweep's best two are used.
    for versions in (["p@3", "p@9"], ["p@9"]):
        best = sizing.estimate(df, versions=versions)
        assert (best.a_label, best.b_label) == ("p@2 | " + FAKE, "p@3 | " + FAKE)


def test_averaged_repeats_and_judge_scores_go_by_the_spread():
    df = frame(
        {("p@1", FAKE): [0.25, 0.5, 1.0, 0.75] * 5, ("p@2", FAKE): [0.5, 0.5, 0.75, 1.0] * 5}, metric=JUDGE
    )
    found = sizing.estimate(df)
    (result,) = compare_columns(df, "judge", "p@2 | " + FAKE, ["p@1 | " + FAKE])
    assert found.metric == "judge" and found.rows_needed == power.rows_needed_continuous(result.sd_diff)
    assert found.basis.startswith("the per-row differences spread by ")


def test_pass_fail_metrics_come_before_the_judge():
    df = frame({("p@1", FAKE): [1, 0, 1, 1], ("p@2", FAKE): [1, 1, 1, 0]})
    df[JUDGE] = 0.5
    assert sizing.estimate(df).metric == "exact"
    assert sizing.estimate(df, metric="judge").metric == "judge"


def test_what_cannot_be_estimated_says_why():
    one = sizing.estimate(frame({("p@1", FAKE): [1, 0, 1]}), sweep_id=3)
    assert one.rows_needed is None and "one column" in one.reason
    assert one.sentence(12) == (
        "Your dataset has 12 rows; how many a difference needs cannot be told from sweep #3: it has one "
        "column with scores, so there is nothing to pair."
    )
    assert one.detail() == ""
    lengths = sizing.estimate(frame({("p@1", FAKE): [10, 20], ("p@2", FAKE): [30, 5]}, metric=LENGTH))
    assert lengths.rows_needed is None and "no scores on a metric with a better side" in lengths.reason
    assert sizing.estimate(pd.DataFrame()).rows_needed is None
    apart = frame({("p@1", FAKE): [1, 0], ("p@2", FAKE): [1, 1]})
    apart.loc[apart["column"] == "p@2 | " + FAKE, "example_id"] = [200, 201]  # no row in common
    assert "share no rows" in sizing.estimate(apart).reason


def add_sweep(s, versions, right: dict[int, list[int]], *, status: str = "done") -> int:
    """A sweep of `versions` on the examples, with exact scores per version number (done runs)."""
    from workbench.models import Example, Run, Score, Sweep

    examples = list(s.exec(select(Example).order_by(Example.id)))
    sweep = Sweep(config={"plan": {"rows": len(examples)}}, status=status)
    s.add(sweep)
    s.flush()
    for version in versions:
        for example, value in zip(examples, right.get(version.number, []), strict=False):
            cell = Run(
                sweep_id=sweep.id, version_id=version.id, model=FAKE, example_id=example.id,
                cache_key="k", status="done", output="x",
            )  # fmt: skip
            s.add(cell)
            s.flush()
            s.add(Score(run_id=cell.id, metric="exact", value=float(value)))
    s.flush()
    return sweep.id


def test_finished_sweeps_of_a_prompt_newest_first(session):
    from workbench.models import Dataset, Example, Prompt, PromptVersion

    echo, other, dataset = Prompt(name="echo"), Prompt(name="other"), Dataset(name="rows", columns=["x"])
    session.add_all([echo, other, dataset])
    session.flush()
    v1, v2 = (PromptVersion(prompt_id=echo.id, number=k, content_hash=f"h{k}") for k in (1, 2))
    o1 = PromptVersion(prompt_id=other.id, number=1, content_hash="o1")
    session.add_all(
        [v1, v2, o1, *(Example(dataset_id=dataset.id, position=i, inputs={"x": i}) for i in range(6))]
    )
    session.flush()
    both = {1: [1] * 6, 2: [0, 0, 1, 0, 1, 0]}  # 4 of 6 rows disagree
    first = add_sweep(session, [v1, v2], both)
    add_sweep(session, [o1], {1: [1] * 6})  # another prompt
    add_sweep(session, [v1, v2], both, status="running")  # not finished
    single = add_sweep(session, [v2], both)
    assert sizing.finished_sweeps(session, ["echo@2"]) == [single, first]
    assert sizing.finished_sweeps(session, ["echo"]) == [single, first]  # any version of the prompt
    assert sizing.finished_sweeps(session, ["echo@2"], limit=1) == [single]
    assert sizing.finished_sweeps(session, ["nope@1", "echo@7"]) == []
    # The newest sweep has one column: the one before it gives the figure.
    found = sizing.estimate_from_sweeps(session, [single, first], versions=["echo@2"])
    assert found == sizing.estimate(runs_frame(session, first), versions=["echo@2"], sweep_id=first)
    assert found.basis == "4 of 6 rows disagreed" and found.rows_needed == power.rows_needed_pass_fail(4 / 6)
    alone = sizing.estimate_from_sweeps(session, [single])
    assert alone.rows_needed is None and alone.sweep_id == single
    assert sizing.estimate_from_sweeps(session, []) is None


@pytest.mark.parametrize("delta", [0.05, 0.1])
def test_the_difference_to_detect_is_in_the_sentence(delta):
    df = frame({("p@1", FAKE): [1, 0] * 10, ("p@2", FAKE): [1, 1] * 10})
    found = sizing.estimate(df, delta=delta)
    assert f"detecting a {delta * 100:g}-point difference" in found.sentence(3)
    assert found.rows_needed == power.rows_needed_pass_fail(0.5, delta=delta)
