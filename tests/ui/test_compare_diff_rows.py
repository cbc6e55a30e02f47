"""The Difference tab counts the rows a test rests on under headers that say what they are: discordant
rows (one side right, the other wrong) only for McNemar on 0/1 rows, rows where one side's pass rate
is higher when repeats are averaged, and neither for a continuous metric."""

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.fakeserver import Reply
from tests.ui.test_page_compare import two_versions
from workbench import config, metrics, present
from workbench.stats.columns import compare_columns
from workbench.stats.paired import MCNEMAR, SIGN_FLIP
from workbench.ui import compare_diff

EXACT, JUDGE = metrics.get("exact").column, metrics.get("judge").column
WON = ("rows won by baseline", "rows won by this column")
HIGHER = ("rows baseline higher", "rows this column higher")


def open_difference_tab() -> AppTest:
    """The Compare page with its Difference tab open (only the open tab is drawn)."""
    at = AppTest.from_file(str(config.PROJECT_ROOT / "pages" / "4_Compare.py"), default_timeout=60)
    at.session_state["compare.tab"] = "Difference"
    at.run()
    assert not at.exception
    return at


def diff_table(at: AppTest) -> pd.DataFrame:
    (table,) = [d.value for d in at.dataframe if "verdict" in d.value.columns]
    return table


def cells(repeats: dict[int, tuple[list[float], list[float]]]) -> pd.DataFrame:
    """Columns a and b, per row the repeats' exact scores of each side (judge = exact / 2)."""
    out = []
    for row, sides in repeats.items():
        for label, values in zip("ab", sides, strict=True):
            for k, v in enumerate(values):
                out.append((label, row, k, "done", v, v / 2))
    return pd.DataFrame(out, columns=["column", "example_id", "repeat", "status", EXACT, JUDGE])


def shown(results) -> dict[str, dict]:
    return {r["metric"]: r for r in compare_diff.table_rows(results)}


def test_discordant_rows_only_for_mcnemar_on_right_or_wrong_rows():
    df = cells({1: ([1], [0]), 2: ([1], [1]), 3: ([0], [1]), 4: ([0], [1]), 5: ([0], [0])})
    results = {m: compare_columns(df, m, "a") for m in ("exact", "judge")}
    assert results["exact"][0].test == MCNEMAR and results["judge"][0].test == SIGN_FLIP
    rows = shown(results)
    assert [rows["exact"][h] for h in WON + HIGHER] == ["1", "2", present.DASH, present.DASH]
    # The judge is continuous: neither right/wrong rows nor pass rates.
    assert [rows["judge"][h] for h in WON + HIGHER] == [present.DASH] * 4


def test_averaged_repeats_count_rows_where_a_pass_rate_is_higher_not_discordant_rows():
    # Row 1: a right 2 of 3, b 1 of 3 (neither is "only a right"); row 2: b higher; row 3: equal.
    df = cells({1: ([1, 1, 0], [1, 0, 0]), 2: ([0, 0, 0], [1, 1, 0]), 3: ([1, 0, 1], [0, 1, 1])})
    results = {"exact": compare_columns(df, "exact", "a")}
    assert results["exact"][0].test == SIGN_FLIP
    row = shown(results)["exact"]
    assert [row[h] for h in WON + HIGHER] == [present.DASH, present.DASH, "1", "1"]


def test_the_tab_with_repeats_shows_pass_rate_rows_and_says_what_they_are(fake_models):
    # echo@2 gets row 2 right once in three repeats (pass rate 1/3), every other row never.
    fake_models.script("Answer: cell-002", [Reply(text="echo: cell-002 row 2"), Reply(text="nope")])
    two_versions(6, repeats=3)
    at = open_difference_tab()
    exact = diff_table(at).set_index("metric").loc["exact"]
    assert exact["test"].startswith("sign-flip permutation")
    assert (exact[WON[0]], exact[WON[1]]) == (present.DASH, present.DASH)
    assert (exact[HIGHER[0]], exact[HIGHER[1]]) == ("6", "0")  # echo@1 right every time on every row
    caption = " ".join(c.value for c in at.caption)
    assert "rows where one side's pass rate is higher" in caption


def test_the_tab_without_repeats_shows_discordant_rows(fake_models):
    two_versions(6)
    exact = diff_table(open_difference_tab()).set_index("metric").loc["exact"]
    assert exact["test"].startswith("exact McNemar")
    assert [exact[h] for h in WON + HIGHER] == ["6", "0", present.DASH, present.DASH]
