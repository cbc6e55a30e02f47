"""`python -m workbench ratings ...`: the leaderboard of blind pairwise votes, and their export."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

DIMENSION_CHOICES = ("version", "model", "temperature", "param", "column")


def _num(value: Any, spec: str = ".0f", *, prefix: str = "", suffix: str = "") -> str:
    """A number as text, '-' when it is missing or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{prefix}{value:{spec}}{suffix}"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _report_payload(report: dict[str, Any]) -> dict[str, Any]:
    board = report["leaderboard"]
    return {
        "sweep_id": report["sweep_id"],
        "by": report["by"],
        "votes": report["votes"],
        "auto_ties": report["auto_ties"],
        "leaderboard": [{k: _clean(v) for k, v in row.items()} for row in board.to_dict(orient="records")],
        "position_bias": {k: _clean(v) for k, v in report["position_bias"].items()},
        "agreement": dict(report["agreement"]),
    }


def _print_report(payload: dict[str, Any]) -> None:
    from workbench.cli.table import table

    print(
        f"Sweep {payload['sweep_id']} by {payload['by']}: {payload['votes']} votes"
        f" + {payload['auto_ties']} automatic ties (identical outputs)"
    )
    rows = payload["leaderboard"]
    if not rows:
        print("No done runs to rank yet.")
        return
    score_keys = sorted({k for r in rows for k in r if k.startswith("score_") and k.endswith("_mean")})
    headers = [
        "rank",
        "entry",
        "score",
        "95% CI",
        "votes",
        "W/L/T",
        "win rate",
        *[k[6:-5] for k in score_keys],
        "cost",
        "p50 ms",
    ]
    lines = []
    for r in rows:
        lines.append(
            [
                r["rank"],
                r["entry"],
                _num(r["score"]),
                f"{_num(r['ci_low'])}..{_num(r['ci_high'])}",
                r["votes"],
                f"{r['wins']}/{r['losses']}/{r['ties']}",
                _num(r["win_rate"] * 100 if r["votes"] else None, ".0f", suffix="%"),
                *[_num(r.get(k), ".3f") for k in score_keys],
                _num(r.get("cost_usd"), ".4f", prefix="$") if r.get("runs") else "-",
                _num(r.get("latency_p50_ms")),
            ]
        )
    print(table(headers, lines, max_width=70))
    bias = payload["position_bias"]
    if bias["n"]:
        print(
            f"Position bias: the left side won {bias['left_share']:.0%} of {bias['n']} decisive votes "
            f"(95% CI {bias['ci_low']:.0%}-{bias['ci_high']:.0%}; about 50% means no bias)."
        )
    else:
        print("Position bias: no decisive human votes yet.")
    agree = payload["agreement"]
    if agree["items"]:
        kappa = f"; Cohen's kappa {agree['kappa']:.2f}" if agree["kappa"] is not None else ""
        note = f" ({agree['kappa_note']})" if agree["kappa_note"] else ""
        print(
            f"Rater agreement: {agree['percent_agreement']:.0f}% on {agree['items']} pairs rated by "
            f"{', '.join(agree['raters'])}{kappa}{note}"
        )
    else:
        print(f"Rater agreement: {agree['kappa_note']}")


def cmd_ratings(args: argparse.Namespace) -> int:
    """Print the leaderboard of a sweep's votes with position bias and rater agreement."""
    from workbench.cli import _ensure_db
    from workbench.db import session_scope
    from workbench.errors import ValidationError
    from workbench.rating.leaderboard import ranking_report

    if args.rounds < 1:
        raise ValidationError("--rounds must be at least 1.")
    _ensure_db()
    with session_scope() as s:
        report = ranking_report(s, sweep_id=args.sweep_id, by=args.by, rounds=args.rounds, seed=args.seed)
    payload = _report_payload(report)
    if args.json:
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    else:
        _print_report(payload)
    return 0


def cmd_ratings_export(args: argparse.Namespace) -> int:
    """Write every vote (of one sweep, or all) as CSV or JSON."""
    from workbench.cli import _ensure_db
    from workbench.db import session_scope
    from workbench.errors import ValidationError
    from workbench.release.ratings_export import export_ratings, render_export

    _ensure_db()
    with session_scope() as s:
        rows = export_ratings(s, sweep_id=args.sweep)
    text = render_export(rows, args.format)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise ValidationError(f"Cannot write {args.out}: {exc.strerror}.") from None
        print(f"Wrote {len(rows)} ratings to {args.out}.", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `ratings` and `ratings-export` (also reachable as `ratings export`)."""
    c = sub.add_parser(
        "ratings", help="Leaderboard of blind A/B votes for a sweep (also: ratings export ...)."
    )
    c.add_argument("sweep_id", type=int, metavar="SWEEP", help="Sweep id (see: sweep list).")
    c.add_argument(
        "--by",
        choices=DIMENSION_CHOICES,
        default="version",
        help="What to rank: prompt versions, models, temperatures, grid params or whole columns.",
    )
    c.add_argument(
        "--rounds", type=int, default=200, help="Bootstrap rounds for the intervals (default 200)."
    )
    c.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default 0).")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_ratings)

    c = sub.add_parser("ratings-export", help="Export votes as CSV or JSON (also: ratings export).")
    c.add_argument("--sweep", type=int, metavar="ID", help="Only this sweep's votes (default: all).")
    c.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json.")
    c.add_argument("--out", help="Write to this file instead of stdout.")
    c.set_defaults(func=cmd_ratings_export)
