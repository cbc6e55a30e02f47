"""Tests of workbench.stats.columns: from a sweep's runs frame to per-row values and paired comparisons."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from workbench import metrics
from workbench.errors import ValidationError
from workbench.stats import power
from workbench.stats.columns import (
    compare_columns,
    consistency_by_column,
    repeat_table,
    resolve_column,
    row_means,
)

V1, V2, V3 = "capital@1 | openai/fake-model", "capital@2 | openai/fake-model", "capital@3 | openai/fake-model"
EXACT, JUDGE = metrics.get("exact").column, metrics.get("judge").column


def frame(cells: list[tuple]) -> pd.DataFrame:
    """A runs frame (the columns runs_frame has that matter here) from (column, example, repeat,
    status, exact, judge) tuples."""
    return pd.DataFrame(cells, columns=["column", "example_id", "repeat", "status", EXACT, JUDGE])


def planted(a: list[int], b: list[int], c: list[int] | None = None) -> pd.DataFrame:
    cells = []
    for label, values in ((V1, a), (V2, b), (V3, c)):
        for row, v in enumerate(values or []):
            cells.append((label, 100 + row, 0, "done", float(v), 0.5 + 0.1 * v))
    return frame(cells)


def test_row_means_average_done_repeats_per_row():
    df = frame(
        [
            (V1, 1, 0, "done", 1.0, 0.9),
            (V1, 1, 1, "done", 0.0, 0.7),
            (V1, 1, 2, "failed", None, None),  # a failed repeat does not count
            (V1, 2, 0, "done", 1.0, None),  # judged nowhere: no judge value for this row
            (V2, 1, 0, "done", 1.0, 0.8),
            (V2, 2, 0, "pending", None, None),
        ]
    )
    exact = row_means(df, "exact")
    assert list(exact.columns) == [V1, V2] and exact.index.name == "row"
    assert exact.loc[1, V1] == 0.5 and exact.loc[2, V1] == 1.0 and exact.loc[1, V2] == 1.0
    assert math.isnan(exact.loc[2, V2])
    judge = row_means(df, metrics.get("judge"))
    assert judge.loc[1, V1] == pytest.approx(0.8) and 2 not in judge.index  # no judge value anywhere
    assert list(repeat_table(df, "exact", V1).loc[1]) == [1.0, 0.0]


def test_compare_columns_reports_the_planted_discordant_counts():
    # 40 rows: both right on 20, baseline only on 3, candidate only on 9, both wrong on 8.
    a = [1] * 20 + [1] * 3 + [0] * 9 + [0] * 8
    b = [1] * 20 + [0] * 3 + [1] * 9 + [0] * 8
    [result] = compare_columns(planted(a, b), "exact", V1)
    assert (result.a_label, result.b_label, result.metric) == (V1, V2, "exact")
    assert (result.n, result.a_only, result.b_only, result.repeats) == (40, 3, 9, 1)
    assert result.test == "exact McNemar" and result.p_adjusted is None
    assert result.p_value == pytest.approx(stats.binomtest(9, 12, 0.5).pvalue)
    assert result.diff == pytest.approx(6 / 40)
    assert power.rows_needed(result) == power.rows_needed_pass_fail(12 / 40)


def test_all_against_a_baseline_gets_holm_adjusted_p():
    a = [1] * 10 + [0] * 10 + [1] * 10
    b = [1] * 10 + [1] * 10 + [1] * 10  # 10 rows better
    c = [1] * 10 + [0] * 10 + [0] * 2 + [1] * 8  # 2 rows worse
    results = compare_columns(planted(a, b, c), "exact", "capital@1")
    assert [r.b_label for r in results] == [V2, V3]
    raw = [r.p_value for r in results]
    assert [r.p_adjusted for r in results] == pytest.approx([min(1, 2 * min(raw)), max(raw)])
    only_c = compare_columns(planted(a, b, c), "exact", V1, others=["capital@3"])
    assert len(only_c) == 1 and only_c[0].b_label == V3 and only_c[0].p_adjusted is None


def test_only_rows_both_columns_have_are_compared_and_repeats_are_averaged():
    df = planted([1, 0, 1, 1, 0], [1, 1, 1])  # the candidate has only the first three rows
    extra = frame([(V1, 100, 1, "done", 0.0, 0.5), (V1, 101, 1, "done", 1.0, 0.5)])
    [result] = compare_columns(pd.concat([df, extra], ignore_index=True), "exact", V1)
    assert result.n == 3 and result.repeats == 2
    assert result.test == "sign-flip permutation"  # 0.5 pass rates are no longer 0/1
    assert result.mean_a == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_continuous_metric_uses_the_permutation_test():
    [result] = compare_columns(planted([1, 0, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]), "judge", V1)
    assert result.test == "sign-flip permutation" and result.a_only is None
    assert result.diff == pytest.approx(0.2 / 6)  # judge = 0.5 + 0.1 * right in planted()


def test_intervals_stay_within_what_the_metric_can_differ_by():
    # Two rows: the t interval (t = 12.7 at one degree of freedom) would run far past -1 and +1.
    df = frame(
        [
            (V1, 1, 0, "done", 1.0, 0.0),
            (V1, 2, 0, "done", 0.0, 0.75),
            (V1, 1, 1, "done", 0.0, 0.0),  # a second repeat: pass rates, no longer 0/1
            (V2, 1, 0, "done", 1.0, 1.0),
            (V2, 2, 0, "done", 1.0, 1.0),
        ]
    )
    [exact] = compare_columns(df, "exact", V1)
    [judge] = compare_columns(df, "judge", V1)  # the judge's 1-5 is scaled onto 0-1
    assert exact.test == judge.test == "sign-flip permutation"
    assert (exact.ci_low, exact.ci_high) == (-1.0, 1.0) and (judge.ci_low, judge.ci_high) == (-1.0, 1.0)
    length = pd.DataFrame(
        {
            "column": [V1, V1, V2, V2],
            "example_id": [1, 2, 1, 2],
            "status": ["done"] * 4,
            metrics.get("length").column: [10.0, 40.0, 30.0, 45.0],
        }
    )
    [chars] = compare_columns(length, "length", V1)  # characters: no range to clip to
    assert chars.ci_low < -1 and chars.ci_high > 1


def test_adhoc_rows_pair_up_across_columns():
    df = frame([(V1, None, r, "done", float(r % 2), None) for r in range(4)])
    df = pd.concat([df, frame([(V2, None, r, "done", 1.0, None) for r in range(4)])], ignore_index=True)
    means = row_means(df, "exact")
    assert list(means.index) == ["variables"] and means.loc["variables", V1] == 0.5
    [result] = compare_columns(df, "exact", V1)
    assert result.n == 1 and result.repeats == 4


def test_consistency_by_column():
    df = frame(
        [(V1, 1, k, "done", v, None) for k, v in enumerate([1.0, 1.0, 1.0])]
        + [(V1, 2, k, "done", v, None) for k, v in enumerate([1.0, 0.0, 1.0])]
        + [(V2, 1, k, "done", v, None) for k, v in enumerate([0.0, 0.0, 0.0])]
    )
    result = consistency_by_column(df, "exact")
    assert result[V1].pass_all == 0.5 and result[V1].pass_any == 1.0 and result[V1].flaky == [2]
    assert result[V2].rows == 1 and result[V2].pass_any == 0.0
    with pytest.raises(ValidationError) as exc:
        consistency_by_column(df, "judge")
    assert exc.value.field == "metric"


def test_resolve_column():
    labels = [V1, V2, "other@1 | openai/fake-model-large"]
    assert resolve_column(labels, V2) == V2
    assert resolve_column(labels, "capital@2") == V2
    assert resolve_column(labels, "CAPITAL@2") == V2  # case only matters when it decides
    assert resolve_column(labels, "large") == labels[2]
    with pytest.raises(ValidationError, match="several columns") as exc:
        resolve_column(labels, "capital")
    assert exc.value.field == "column" and V1 in str(exc.value) and V2 in str(exc.value)
    with pytest.raises(ValidationError, match="No column matches") as exc:
        resolve_column(labels, "capital@9")
    assert exc.value.field == "column" and labels[2] in str(exc.value)


def test_bad_requests_name_their_field():
    df = planted([1, 0], [0, 1])
    with pytest.raises(ValidationError) as exc:
        compare_columns(df, "exact", V1, others=[V1])
    assert exc.value.field == "column"
    with pytest.raises(ValidationError) as exc:
        compare_columns(df, "json", V1)  # the sweep never scored json
    assert exc.value.field == "metric"
    with pytest.raises(ValidationError):
        compare_columns(df, "no-such-metric", V1)
    with pytest.raises(ValidationError) as exc:
        compare_columns(pd.DataFrame(), "exact", V1)
    assert exc.value.field == "column"


def test_on_a_real_runs_frame(session):
    from workbench.models import Dataset, Example, Prompt, PromptVersion, Run, Score, Sweep
    from workbench.sweeps.summary import runs_frame

    prompt = Prompt(name="capital")
    dataset = Dataset(name="capitals", columns=["country"])
    session.add_all([prompt, dataset])
    session.flush()
    versions = [PromptVersion(prompt_id=prompt.id, number=k, content_hash=f"h{k}") for k in (1, 2)]
    examples = [Example(dataset_id=dataset.id, position=i, inputs={"country": f"c{i}"}) for i in range(6)]
    sweep = Sweep(config={})
    session.add_all([*versions, *examples, sweep])
    session.flush()
    right = {1: [1, 1, 0, 1, 0, 0], 2: [1, 1, 1, 1, 1, 0]}
    for version in versions:
        for example, value in zip(examples, right[version.number], strict=True):
            run = Run(
                sweep_id=sweep.id, version_id=version.id, model="openai/fake-model", example_id=example.id,
                cache_key="k", status="done", output="x",
            )  # fmt: skip
            session.add(run)
            session.flush()
            session.add(Score(run_id=run.id, metric="exact", value=float(value)))
    session.flush()
    [result] = compare_columns(runs_frame(session, sweep.id), "exact", "capital@1", others=["capital@2"])
    assert (result.n, result.a_only, result.b_only) == (6, 0, 2)
    assert (result.a_label, result.b_label) == (V1, V2)


def test_resolve_column_prefers_a_match_that_ends_with_the_value():
    labels = ["v@1 | m | temperature=0", "v@1 | m | temperature=0.7"]
    assert resolve_column(labels, "m | temperature=0") == labels[0]
    assert resolve_column(labels, "temperature=0.7") == labels[1]
