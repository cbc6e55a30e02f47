"""`python -m workbench ratings show|export`: the leaderboard of blind pairwise votes, and the votes."""

from __future__ import annotations

import argparse
from typing import Any

from workbench.cli import release
from workbench.cli.common import (
    ALIAS_FORMATTER,
    DefaultVerb,
    add_verb,
    ensure_db,
    option_adder,
    print_json,
    session,
    show_help,
)

DIMENSION_CHOICES = ("version", "model", "temperature", "param", "column")
ROUNDS = "1,000"  # ranking.DEFAULT_ROUNDS, for help text only (a test keeps the two equal)

ALIASES = """\
older spellings that still work:
  ratings SWEEP [--by ...]    = ratings show SWEEP [--by ...]
  ratings-export [...]        = ratings export [...]
"""


def _report_payload(report: dict[str, Any]) -> dict[str, Any]:
    from workbench.present import json_safe

    board = report["leaderboard"]
    return {
        "sweep_id": report["sweep_id"],
        "by": report["by"],
        "votes": report["votes"],
        "auto_ties": report["auto_ties"],
        "leaderboard": [{k: json_safe(v) for k, v in r.items()} for r in board.to_dict(orient="records")],
        "length_control": _length_payload(board.attrs),
        "position_bias": {k: json_safe(v) for k, v in report["position_bias"].items()},
        "agreement": dict(report["agreement"]),
    }


def _length_payload(attrs: dict[str, Any]) -> dict[str, Any]:
    """Whether length control applied and the length coefficient (Elo points) with its interval, or
    `note`: why it was asked for but not applied (e.g. too few votes on outputs of different length)."""
    from workbench.present import json_safe

    ci = attrs.get("length_coef_ci")
    return {
        "applied": bool(attrs.get("length_control")),
        "coef": json_safe(attrs.get("length_coef")),
        "coef_ci": [json_safe(x) for x in ci] if ci else None,
        "note": attrs.get("length_note"),
    }


def _length_line(length: dict[str, Any], requested: bool) -> str | None:
    """One sentence on what a longer answer is worth, when length control was asked for."""
    from workbench import present

    if not requested:
        return None
    if not length["applied"]:
        note = length.get("note")
        return f"Length control: {note}" if note else "Length control: no votes to fit it on yet."
    lo, hi = length["coef_ci"]
    coef = present.number(length["coef"], "+.0f")
    undecided = " The votes cannot tell whether length sways raters." if lo <= 0 <= hi else ""
    return (
        f"Length control: scores hold output length equal. A typically longer answer (one standard "
        f"deviation of the length difference) is worth {coef} points "
        f"(95% CI {present.number(lo, '+.0f')}..{present.number(hi, '+.0f')}).{undecided}"
    )


def _leaderboard_lines(rows: list[dict[str, Any]]) -> str:
    from workbench import metrics, present
    from workbench.cli.table import table

    scored = metrics.mean_columns({k for r in rows for k in r})
    headers = ["rank", "entry", "score", "95% CI", "votes", "W/L/T", "win rate", *[m.name for m in scored]]
    headers += ["cost", "p50 ms"]
    lines = [
        [
            r["rank"],
            r["entry"],
            present.number(r["score"], ".0f"),
            f"{present.number(r['ci_low'], '.0f')}..{present.number(r['ci_high'], '.0f')}",
            r["votes"],
            f"{r['wins']}/{r['losses']}/{r['ties']}",
            present.percent(r["win_rate"] if r["votes"] else None),
            *[present.score(r.get(m.mean_column)) for m in scored],
            present.money(r.get("cost_usd")) if r.get("runs") else present.DASH,
            present.ms(r.get("latency_p50_ms")),
        ]
        for r in rows
    ]
    return table(headers, lines, max_width=70)


def _print_report(payload: dict[str, Any], *, length_control: bool = False) -> None:
    from workbench import present

    print(
        f"Sweep {payload['sweep_id']} by {payload['by']}: {payload['votes']} votes"
        f" + {payload['auto_ties']} automatic ties (identical outputs)"
    )
    rows = payload["leaderboard"]
    if not rows:
        print("No done runs to rank yet.")
        return
    print(_leaderboard_lines(rows))
    line = _length_line(payload["length_control"], length_control)
    if line:
        print(line)
    bias = payload["position_bias"]
    if bias["n"]:
        print(
            f"Position bias: the left side won {present.percent(bias['left_share'])} of {bias['n']} "
            f"decisive votes (95% CI {present.percent(bias['ci_low'])}-{present.percent(bias['ci_high'])}; "
            "about 50% means no bias)."
        )
    else:
        print("Position bias: no decisive human votes yet.")
    agree = payload["agreement"]
    if agree["items"]:
        kappa = (
            f"; Cohen's kappa {present.number(agree['kappa'], '.2f')}" if agree["kappa"] is not None else ""
        )
        note = f" ({agree['kappa_note']})" if agree["kappa_note"] else ""
        print(
            f"Rater agreement: {present.number(agree['percent_agreement'], '.0f', suffix='%')} on "
            f"{agree['items']} pairs rated by {', '.join(agree['raters'])}{kappa}{note}"
        )
    else:
        print(f"Rater agreement: {agree['kappa_note']}")


def cmd_show(args: argparse.Namespace) -> int:
    """Print the leaderboard of a sweep's votes with position bias and rater agreement."""
    from workbench.errors import ValidationError
    from workbench.rating.leaderboard import ranking_report
    from workbench.rating.ranking import DEFAULT_ROUNDS

    rounds = DEFAULT_ROUNDS if args.rounds is None else args.rounds
    if rounds < 1:
        raise ValidationError("--rounds must be at least 1.")
    ensure_db()
    with session() as s:
        report = ranking_report(
            s,
            sweep_id=args.sweep_id,
            by=args.by,
            rounds=rounds,
            seed=args.seed,
            length_control=args.length_control,
        )
    payload = _report_payload(report)
    if args.json:
        print_json(payload)
    else:
        _print_report(payload, length_control=args.length_control)
    return 0


def _show_options(container: Any, *, inherit: bool) -> None:
    add = option_adder(container, inherit=inherit)
    add(
        "--by",
        choices=DIMENSION_CHOICES,
        default="version",
        help="What to rank: prompt versions, models, temperatures, grid params or whole columns.",
    )
    # default None, resolved to ranking.DEFAULT_ROUNDS in cmd_show: importing the ranking (pandas,
    # scipy) to build the parser would slow down every --help.
    add("--rounds", type=int, default=None, help=f"Bootstrap rounds for the intervals (default {ROUNDS}).")
    add(
        "--length-control",
        action="store_true",
        help="Control for output length (style control): rank as if both outputs were equally long, "
        "and report what a longer answer is worth.",
    )
    add("--seed", type=int, default=0, help="Bootstrap seed (default 0).")
    add("--json", action="store_true", help="Print JSON.")


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sweep", dest="sweep_id", type=int, metavar="ID", help="Only this sweep's votes (default: all)."
    )
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json.")
    parser.add_argument("--out", help="Write to this file instead of stdout.")
    parser.set_defaults(func=release.cmd_export_ratings)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `ratings show|export` (show is the default verb) and the older `ratings-export`."""
    group = sub.add_parser(
        "ratings",
        help="Leaderboard of blind A/B votes for a sweep (ratings show), and the votes (ratings export).",
        description="Rank a sweep's entries from blind pairwise votes, or export the votes.",
        epilog=ALIASES,
        formatter_class=ALIAS_FORMATTER,
    )
    _show_options(
        group.add_argument_group("ratings show options (the verb 'show' may be left out)"), inherit=False
    )
    group.set_defaults(func=show_help(group))
    # A first word that is no verb is the sweep id of `show`: `ratings 5` = `ratings show 5`.
    verbs = group.add_subparsers(
        dest="ratings_command", metavar="VERB", action=DefaultVerb, default_verb="show", required=False
    )
    c = add_verb(verbs, "show", "Leaderboard with bootstrap intervals, position bias and rater agreement.")
    c.add_argument("sweep_id", type=int, metavar="SWEEP", help="Sweep id (see: sweep list).")
    _show_options(c, inherit=True)
    c.set_defaults(func=cmd_show)
    _export_options(add_verb(verbs, "export", "Every vote (of one sweep, or all) as CSV or JSON."))
    _export_options(add_verb(sub, "ratings-export", "Same as: ratings export.", hidden=True))
