"""`python -m workbench export versions|runs|ratings`, `import` and `gate`: releases and a CI gate.

Exit codes follow `workbench.cli.main`: usage errors raise WorkbenchError (exit 2); `gate` returns
1 itself when the candidate fails (worse, or a hard limit) and 3 when the rows cannot tell.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli.common import (
    ensure_db,
    print_json,
    session,
    show_help,
    split_list,
    workers_warmed,
    write_output,
)


def cmd_export_versions(args: argparse.Namespace) -> int:
    """Export versions (all, or filtered by prompt / label / winners of a sweep)."""
    from workbench.release.export import Selection, export_versions

    ensure_db()
    prompts = [name for value in args.prompt or [] for name in split_list(value)]
    selection = Selection(prompts=prompts, label=args.label, winners=args.winners)
    with session() as s:
        text = export_versions(s, selection=selection, fmt=args.format)
    write_output(text, args.out, f"versions ({args.format})")
    return 0


def cmd_export_runs(args: argparse.Namespace) -> int:
    """Export a sweep's cells, one row per cell."""
    from workbench.release.export import export_runs

    ensure_db()
    with session() as s:
        text = export_runs(s, sweep_id=args.sweep_id, fmt=args.format)
    write_output(text, args.out, f"runs of sweep {args.sweep_id} ({args.format})")
    return 0


def cmd_export_ratings(args: argparse.Namespace) -> int:
    """Export votes (of one sweep, or all), one row per vote: `export ratings` and `ratings export`."""
    from workbench.release.export import export_ratings, ratings_rows

    ensure_db()
    with session() as s:
        text = export_ratings(s, sweep_id=args.sweep_id, fmt=args.format)
        n = len(ratings_rows(s, sweep_id=args.sweep_id)) if args.out else 0
    write_output(text, args.out, f"{n} ratings")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import versions from a JSON export (all or nothing; nothing is overwritten)."""
    from workbench.errors import ImportFileError
    from workbench.release.imports import import_file

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"Cannot read {path}: {exc.strerror}.") from None
    ensure_db()
    with session() as s:
        result = import_file(s, data, filename=path.name, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        if args.dry_run:
            print("Dry run: nothing was written.")
        print("\n".join(result.lines()))
    return 0


EXIT_CODES = {"pass": 0, "fail": 1, "inconclusive": 3}


def render_gate(result) -> str:
    """The gate's outcome as a short plain-text table with the reasons and notes under it."""
    from workbench import present
    from workbench.cli.table import table
    from workbench.stats.paired import MCNEMAR

    # McNemar rows (0/1) count the rows only one side got right; an averaged row (several models
    # or repeats) is a pass rate, so its counts are the rows where one side's rate is higher ("*").
    averaged = {r.model for r in result.rows if r.baseline_only is not None and r.test != MCNEMAR}
    rows = [
        (
            r.model,
            present.score(r.candidate_mean),
            present.score(r.baseline_mean),
            present.number(r.delta, "+.3f"),
            f"[{present.number(r.ci_low, '+.3f')}, {present.number(r.ci_high, '+.3f')}]",
            present.number(r.p_value, ".3g"),
            r.n,
            ""
            if r.baseline_only is None
            else f"{r.baseline_only}/{r.candidate_only}" + ("*" if r.model in averaged else ""),
            r.candidate_n,
            r.candidate_failed,
            present.money(r.candidate_cost_usd, 6),
            r.verdict if r.ok or r.verdict == "worse" else f"{r.verdict}, FAIL",
        )
        for r in result.rows
    ]
    level = f"{1 - result.alpha:.0%}"
    headers = [
        "model",
        f"candidate {result.metric}",
        "baseline",
        "delta",
        f"{level} interval",
        "p",
        "rows",
        "only base/cand right" + (" (*rate higher)" if averaged else ""),
        "cells",
        "failed",
        "cost",
        "verdict",
    ]
    word = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}[result.outcome]
    tests = ", ".join(dict.fromkeys(f"{r.test} test, {r.interval} interval" for r in result.rows if r.test))
    lines = [
        f"{word}: {result.candidate} vs {result.baseline} on {result.metric} (sweep {result.sweep_id})",
        f"verdict: {result.verdict} (margin {result.margin:g}; {tests or 'no paired rows'}; "
        "delta = candidate - baseline on the same rows)",
        table(headers, rows),
    ]
    lines += [f"- {r}" for r in result.reasons]
    lines += [f"note: {n}" for n in result.notes]
    if result.promoted:
        lines.append(f"promoted: {result.promoted}")
    return "\n".join(lines)


def cmd_gate(args: argparse.Namespace) -> int:
    """Test a candidate against a baseline on a dataset: exit 0 pass, 1 fail, 3 inconclusive."""
    from workbench.errors import ValidationError
    from workbench.release.gate import GateSpec, run_gate

    given = (("--prompt", args.candidate), ("--baseline", args.baseline), ("--dataset", args.dataset))
    missing = [flag for flag, value in (*given, ("--models", args.models)) if not value]
    if missing:
        raise ValidationError(
            f"gate needs {', '.join(missing)}: e.g. python -m workbench gate --prompt NAME@3 "
            "--baseline NAME:production --dataset D --models M --score exact"
        )
    spec = GateSpec(
        candidate=args.candidate,
        baseline=args.baseline,
        dataset=args.dataset,
        models=split_list(args.models),
        score=args.score,
        min_score=args.min_score,
        margin=args.margin,
        alpha=args.alpha,
        max_cost=args.max_cost,
        promote=args.promote,
        allow_inconclusive=args.allow_inconclusive,
        use_cache=not args.no_cache,
        limit=args.limit,
    )
    spec.check()
    ensure_db()
    from workbench.sweeps.plan import SweepSpec

    size = SweepSpec(
        prompts=[spec.candidate, spec.baseline], models=spec.models, dataset=spec.dataset, max_rows=spec.limit
    )
    with workers_warmed(size):  # a big gate's sweep runs on every core from its first cells
        result = run_gate(spec)
    code = EXIT_CODES[result.outcome]
    if args.json:
        print_json({**result.to_dict(), "exit_code": code})
    else:
        print(render_gate(result))
    return code


def _add_export(sub: argparse._SubParsersAction) -> None:
    fmt_help = "csv (one row each, for spreadsheets) or json (lossless, importable)."
    out_help = "File to write (default: standard output)."
    export = sub.add_parser("export", help="Export versions, or a sweep's runs or ratings, as CSV or JSON.")
    what = export.add_subparsers(dest="export_command", metavar="WHAT")
    c = what.add_parser("versions", help="Prompt versions with their evidence (all when no filter is given).")
    c.add_argument(
        "--prompt", action="append", help="NAME (all its versions), NAME@N or NAME:label; repeatable."
    )
    c.add_argument("--label", help="Only versions carrying this label, e.g. production.")
    c.add_argument(
        "--winners",
        type=int,
        metavar="SWEEP",
        help="Only the winners of sweep SWEEP: the best version and every one not significantly worse "
        "(paired test against the best, Holm-adjusted), with that test as evidence.",
    )
    c.set_defaults(func=cmd_export_versions)
    c.add_argument("--format", choices=["csv", "json"], default="json", help=fmt_help)
    c.add_argument("--out", help=out_help)

    c = what.add_parser("runs", help="A sweep's cells, one row per cell, with outputs and scores.")
    c.add_argument(
        "sweep_id", type=int, metavar="SWEEP", help="Sweep id (see: python -m workbench sweep list)."
    )
    c.add_argument("--format", choices=["csv", "json"], default="json", help=fmt_help)
    c.add_argument("--out", help=out_help)
    c.set_defaults(func=cmd_export_runs)

    c = what.add_parser("ratings", help="Pairwise votes, one row per vote (same as: ratings export).")
    c.add_argument(
        "sweep_id",
        type=int,
        nargs="?",
        metavar="SWEEP",
        help="Only this sweep's votes (default: every sweep).",
    )
    c.add_argument("--format", choices=["csv", "json"], default="json", help=fmt_help)
    c.add_argument("--out", help=out_help)
    c.set_defaults(func=cmd_export_ratings)
    export.set_defaults(func=show_help(export))


GATE_EPILOG = """\
The gate is a paired test: d = candidate - baseline on the same rows (per model and overall), with
its interval [lo, hi]. The verdict is the first that holds: better (lo > 0), not worse
(lo >= -margin), worse (hi < 0), else inconclusive (the rows cannot tell; the output says how many
rows would). Exit codes: 0 better or not worse, 1 worse (or below --min-score, above --max-cost,
failed cells), 3 inconclusive (0 with --allow-inconclusive), 2 usage error.
"""


def _add_gate(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "gate",
        help="CI release gate: a paired test of a candidate against a baseline (exit 0 / 1 / 3).",
        description="Run a candidate and a baseline version on a dataset and test the difference.",
        epilog=GATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("--prompt", "--candidate", dest="candidate", help="The candidate: NAME@N or NAME:label.")
    c.add_argument("--baseline", help="The baseline, usually NAME:production.")
    c.add_argument("--dataset", help="Labelled dataset to run both on.")
    c.add_argument("--models", help="Comma-separated model ids.")
    c.add_argument("--score", default="exact", help="Metric to compare (default exact).")
    c.add_argument("--min-score", dest="min_score", type=float, help="Fail below this mean score.")
    c.add_argument(
        "--margin",
        "--max-regression",
        dest="margin",
        type=float,
        default=0.02,
        metavar="X",
        help="How far below the baseline the candidate may be and still count as not worse: the "
        "interval's lower bound must be at least -X (default 0.02). --max-regression is the older name.",
    )
    c.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="Error rate of the test: the interval covers 1 - alpha (default 0.05, a 95%% interval).",
    )
    c.add_argument(
        "--allow-inconclusive",
        dest="allow_inconclusive",
        action="store_true",
        help="Exit 0 instead of 3 when the rows cannot tell (and allow --promote then).",
    )
    c.add_argument(
        "--max-cost", dest="max_cost", type=float, help="Fail when the candidate costs more (USD)."
    )
    c.add_argument("--limit", type=int, help="Use only the first N dataset rows.")
    c.add_argument("--no-cache", action="store_true", help="Call models again even for identical cells.")
    c.add_argument(
        "--promote", action="store_true", help="On exit 0, move the baseline's label to the candidate."
    )
    c.add_argument("--json", action="store_true", help="Print the verdict as JSON.")
    c.set_defaults(func=cmd_gate)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `export versions|runs|ratings`, `import` and `gate`."""
    _add_export(sub)
    c = sub.add_parser("import", help="Import versions from a JSON export (never overwrites anything).")
    c.add_argument("file", help="A .json file written by `export versions --format json`.")
    c.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
    c.add_argument("--json", action="store_true", help="Print the report as JSON.")
    c.set_defaults(func=cmd_import)
    _add_gate(sub)
