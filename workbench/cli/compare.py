"""`python -m workbench compare SWEEP`: is one column of a sweep really better than another?

`--a COLUMN --b COLUMN` compares two columns (b - a) on the rows both have; `--baseline COLUMN`
compares every other column with it, Holm-adjusting the p-values over those comparisons. A COLUMN
is a column label ("prompt@N | model | grid") or a unique part of one (`capital@2`). The statistics
are `workbench.stats` (paired tests on per-row means, repeats averaged); this module loads the
sweep, picks the metrics and prints.
"""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli.common import ensure_db, print_json, session

DELTA = 0.05  # as workbench.stats.power.DELTA (not imported: --help stays light)
POWER = 0.8


def _metrics(df, wanted: str | None) -> list[Any]:
    """The metrics to compare: the one asked for, else every metric of the sweep that has scores."""
    from workbench import metrics
    from workbench.errors import ValidationError

    if wanted:
        return [metrics.get(wanted)]
    present = [m for m in metrics.score_columns(df.columns) if df[m.column].notna().any()]
    if not present:
        raise ValidationError("This sweep has no scores to compare yet.", field="metric")
    return present


def comparisons(
    df, *, a: str | None, b: str | None, baseline: str | None, metric: str | None, alpha: float,
    delta: float, power: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every comparison asked for, per metric: the paired result, its verdict word, rows needed."""
    from workbench.errors import ValidationError
    from workbench.stats.columns import compare_columns
    from workbench.stats.paired import NO_DIFFERENCE, significance_word
    from workbench.stats.power import rows_needed

    # Checked up front: the rows-needed estimate runs only for comparisons that find nothing.
    if not 0 < delta < float("inf"):
        raise ValidationError(f"The difference to detect must be above 0, got {delta!r}.", field="delta")
    if not 0 < power < 1:
        raise ValidationError(f"The power must be between 0 and 1, got {power!r}.", field="power")
    base = baseline or a
    others = [b] if b else None
    out = []
    for m in _metrics(df, metric):
        for result in compare_columns(df, m, base, others, alpha=alpha):
            word = significance_word(result, higher_is_better=m.higher_is_better)
            # "Five points" means something only on a 0-1 score: every metric with a better
            # direction is one; length (characters) is not.
            needed = None
            if word == NO_DIFFERENCE and m.higher_is_better is not None and result.n:
                needed = rows_needed(result, delta=delta, power=power)
            out.append(
                {
                    **result.to_dict(),
                    "p": result.p,
                    "metric_label": m.label,
                    "higher_is_better": m.higher_is_better,
                    "verdict": word,
                    "rows_needed": needed,
                    "rows_needed_delta": delta if needed is not None else None,
                    "power": power if needed is not None else None,
                }
            )
    return out


def _pair_lines(c: dict[str, Any]) -> list[str]:
    """One comparison of two columns, as a few lines of text."""
    from workbench import present
    from workbench.stats.paired import MCNEMAR

    level = f"{1 - c['alpha']:.0%}"
    p_name = "p (Holm)" if c["p_adjusted"] is not None else "p"
    lines = [
        f"{c['metric']} ({c['metric_label']}): {c['test']} test, {c['interval']} interval",
        f"  A  {c['a_label']}: mean {present.score(c['mean_a'])}",
        f"  B  {c['b_label']}: mean {present.score(c['mean_b'])}",
        f"  B - A {present.number(c['diff'], '+.3f')}, {level} interval "
        f"[{present.number(c['ci_low'], '+.3f')}, {present.number(c['ci_high'], '+.3f')}], "
        f"{p_name} {present.number(c['p'], '.3g')}, n {c['n']} rows"
        + (f" (repeats averaged, up to {c['repeats']} per row)" if c["repeats"] > 1 else ""),
    ]
    if c["a_only"] is not None and c["test"] == MCNEMAR:
        lines.append(f"  discordant rows: A right / B wrong {c['a_only']}, A wrong / B right {c['b_only']}")
    elif c["a_only"] is not None:  # repeats averaged: a row holds pass rates, not right or wrong
        lines.append(f"  rows where A's pass rate is higher {c['a_only']}, B's {c['b_only']}")
    lines.append(f"  verdict: {c['verdict']}" + _needed(c))
    return lines


def _needed(c: dict[str, Any]) -> str:
    if c["rows_needed"] is None:
        return ""
    return (
        f"; about {c['rows_needed']} rows would detect a difference of {c['rows_needed_delta']:g} "
        f"at {c['power']:.0%} power"
    )


def _table_lines(metric: str, rows: list[dict[str, Any]]) -> list[str]:
    """All columns against one baseline on one metric, as a table."""
    from workbench import present
    from workbench.cli.table import table

    first = rows[0]
    level = f"{1 - first['alpha']:.0%}"
    counts, counts_header = _count_cells(rows)
    lines = [
        f"{metric} ({first['metric_label']}) against {first['a_label']} "
        f"(mean {present.score(first['mean_a'])}); B - A per column, p Holm-adjusted over {len(rows)}:"
    ]
    body = [
        (
            c["b_label"],
            present.score(c["mean_b"]),
            present.number(c["diff"], "+.3f"),
            f"[{present.number(c['ci_low'], '+.3f')}, {present.number(c['ci_high'], '+.3f')}]",
            present.number(c["p_value"], ".3g"),
            present.number(c["p"], ".3g"),
            c["n"],
            cell,
            c["test"],
            c["verdict"] + (f" (~{c['rows_needed']} rows needed)" if c["rows_needed"] else ""),
        )
        for c, cell in zip(rows, counts, strict=True)
    ]
    headers = ["column B", "mean", "B - A", f"{level} interval", "p", "p (Holm)", "n", counts_header]
    lines.append(table([*headers, "test", "verdict"], body))
    return lines


def _count_cells(rows: list[dict[str, Any]]) -> tuple[list[str], str]:
    """The A/B row counts of each comparison, and a header that says what they count.

    McNemar (0/1 rows) counts the rows only one side got right; with repeats averaged (sign-flip)
    a row is a pass rate and the counts are the rows where one side's rate is higher. When a table
    holds both, the averaged counts carry a "*" that the header explains.
    """
    from workbench.stats.paired import MCNEMAR

    kinds = {c["test"] == MCNEMAR for c in rows if c["a_only"] is not None}
    mixed = len(kinds) > 1
    cells = [
        ""
        if c["a_only"] is None
        else f"{c['a_only']}/{c['b_only']}" + ("*" if mixed and c["test"] != MCNEMAR else "")
        for c in rows
    ]
    if mixed:
        header = "A/B only right (*rate higher)"
    elif kinds == {False}:
        header = "A/B rate higher"
    else:
        header = "A/B only right"
    return cells, header


def render(sweep_id: int, results: list[dict[str, Any]]) -> str:
    """The comparisons as text: one block per pair, or one table per metric for several columns."""
    lines = [f"Sweep {sweep_id}: paired comparisons on the same rows (B - A; A is the baseline)."]
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for c in results:
        by_metric.setdefault(c["metric"], []).append(c)
    for metric, rows in by_metric.items():
        lines.append("")
        lines += _pair_lines(rows[0]) if len(rows) == 1 else _table_lines(metric, rows)
    needed = next((c for c in results if c["rows_needed"]), None)
    if needed and any(len(rows) > 1 for rows in by_metric.values()):
        lines += [
            "",
            f"rows needed: to detect a difference of {needed['rows_needed_delta']:g} at "
            f"{needed['power']:.0%} power, from the discordance (or spread) these rows show.",
        ]
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare columns of a sweep with paired tests (see the module docstring)."""
    from workbench.errors import ValidationError
    from workbench.sweeps.plan import require_sweep
    from workbench.sweeps.summary import runs_frame

    if args.baseline and args.a:
        raise ValidationError("Give either --a (with --b) or --baseline, not both: --a is the baseline.")
    if not args.baseline and not (args.a and args.b):
        raise ValidationError(
            "compare needs two columns (--a COLUMN --b COLUMN) or a baseline for all the others "
            "(--baseline COLUMN); see the column labels with: python -m workbench sweep show SWEEP"
        )
    ensure_db()
    with session() as s:
        require_sweep(s, args.sweep_id)
        df = runs_frame(s, args.sweep_id)
    results = comparisons(
        df,
        a=args.a,
        b=args.b,
        baseline=args.baseline,
        metric=args.metric,
        alpha=args.alpha,
        delta=args.delta,
        power=args.power,
    )
    if args.json:
        print_json({"sweep_id": args.sweep_id, "alpha": args.alpha, "comparisons": results})
    else:
        print(render(args.sweep_id, results))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `compare`."""
    c = sub.add_parser(
        "compare",
        help="Paired tests between columns of a sweep: difference, interval, p-value, verdict.",
        description="Is column B really better than column A on the same rows? Exact McNemar for "
        "right/wrong metrics, sign-flip permutation otherwise; repeats averaged per row.",
    )
    c.add_argument(
        "sweep_id", type=int, metavar="SWEEP", help="Sweep id (see: python -m workbench sweep list)."
    )
    c.add_argument(
        "--a", metavar="COLUMN", help="Column A, the baseline: a label or a unique part (capital@1)."
    )
    c.add_argument("--b", metavar="COLUMN", help="Column B, compared with A (B - A).")
    c.add_argument(
        "--baseline",
        metavar="COLUMN",
        help="Compare every other column with this one (Holm-adjusted p-values); with --b, only that one.",
    )
    c.add_argument("--metric", help="One metric (default: every metric of the sweep that has scores).")
    c.add_argument(
        "--alpha", type=float, default=0.05, help="Error rate: 1 - alpha intervals (default 0.05)."
    )
    c.add_argument(
        "--delta",
        type=float,
        default=DELTA,
        help="The difference the rows-needed estimate is for (default 0.05, five points on a 0-1 score).",
    )
    c.add_argument(
        "--power", type=float, default=POWER, help="Power of the rows-needed estimate (default 0.8)."
    )
    c.add_argument("--json", action="store_true", help="Print the comparisons as JSON.")
    c.set_defaults(func=cmd_compare)
