"""`python -m workbench sweep run|show|list|resume|cancel`: plan, run and follow sweeps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from workbench.cli.common import (
    ALIAS_FORMATTER,
    add_verb,
    ensure_db,
    option_adder,
    parse_vars,
    print_json,
    session,
    split_list,
    workers_warmed,
)

ALIASES = """\
older spellings that still work:
  sweep --prompt P --models M ...      = sweep run --prompt P --models M ...
  sweep --resume ID [--retry-failed]   = sweep resume ID [--retry-failed]
  sweep --cancel ID                    = sweep cancel ID
  sweep-show ID / sweep-list           = sweep show ID / sweep list
"""


def _spec_from_args(args: argparse.Namespace):
    from workbench.errors import ValidationError
    from workbench.sweeps.plan import SweepSpec, parse_param_values

    params: dict[str, list[Any]] = {}
    if args.temperatures:
        params["temperature"] = parse_param_values(args.temperatures)
    if args.max_tokens is not None:
        params["max_tokens"] = [args.max_tokens]
    for raw in args.param or []:
        if "=" not in raw:
            raise ValidationError(f"--param '{raw}' must look like name=v1,v2.")
        key, values = raw.split("=", 1)
        params[key.strip()] = parse_param_values(values)
    schema = None
    if args.json_schema:
        try:
            schema = json.loads(Path(args.json_schema).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"--json-schema {args.json_schema}: {exc}") from None
    models = split_list(args.models)
    if not models:
        raise ValidationError("A sweep needs at least one model.", field="models")
    return SweepSpec(
        prompts=args.prompt or [],
        models=models,
        dataset=args.dataset,
        variables=parse_vars(args.var) if args.var else None,
        params=params,
        repeats=args.repeats,
        concurrency=args.concurrency,
        budget_usd=args.budget,
        scoring={
            "metrics": split_list(args.score),
            "regex": args.regex,
            "json_schema": schema,
            "judge_model": args.judge_model,
            "judge_rubric": args.judge_rubric,
        },
        use_cache=not args.no_cache,
        stream=not args.no_stream,
        max_rows=args.limit,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
        name=args.name or "",
    )


class ProgressLine:
    """A one-line progress bar on stderr, redrawn in place (only on a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def draw(self, p: Any, force: bool = False) -> None:
        """Redraw with progress `p`, at most four times a second unless forced."""
        from workbench import present

        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.25):
            return
        self.last = now
        width = 30
        filled = int(width * p.finished / p.total) if p.total else width
        eta = f"ETA {present.seconds(p.eta_s)}" if p.eta_s is not None else ""
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {p.finished}/{p.total}  done {p.done} "
            f"failed {p.failed} cached {p.cached}  cost {present.money(p.cost_usd)}  {eta}"
        )
        sys.stderr.write(line.ljust(100))
        sys.stderr.flush()

    def end(self) -> None:
        """Leave the bar's line."""
        if self.enabled:
            sys.stderr.write("\n")


def _execute(sweep_id: int, show: bool, processes: int | None) -> Any:
    """Run the sweep's pending cells (on `processes` processes), drawing progress; Ctrl-C pauses it."""
    import threading

    from workbench.sweeps.processes import run_sweep
    from workbench.sweeps.summary import progress

    bar = ProgressLine(show)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            with session() as s:
                bar.draw(progress(s, sweep_id))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        report = run_sweep(sweep_id, processes=processes)
    except KeyboardInterrupt:
        from workbench.sweeps.lifecycle import request_cancel

        request_cancel(sweep_id)
        print(
            f"\nInterrupted: sweep {sweep_id} is paused; finish it with "
            f"python -m workbench sweep resume {sweep_id}",
            file=sys.stderr,
        )
        raise
    finally:
        stop.set()
        poller.join()
    with session() as s:
        bar.draw(progress(s, sweep_id), force=True)
    bar.end()
    return report


def _summary_payload(sweep_id: int) -> dict[str, Any]:
    from workbench import present
    from workbench.sweeps.summary import progress, runs_frame, summarize

    with session() as s:
        p = progress(s, sweep_id)
        df = runs_frame(s, sweep_id)
    table = summarize(df)
    rows = [{k: present.json_safe(v) for k, v in r.items()} for r in table.to_dict(orient="records")]
    return {"sweep": p.to_dict(), "columns": rows}


def _print_summary(payload: dict[str, Any]) -> None:
    from workbench import metrics, present
    from workbench.cli.table import table

    p = payload["sweep"]
    print(
        f"Sweep {p['sweep_id']}: {p['status']}  {p['done']} done ({p['cached']} cached), "
        f"{p['failed']} failed, {p['cancelled']} cancelled, {p['remaining']} remaining; "
        f"cost {present.money(p['cost_usd'])}"
        + (f" + judge {present.money(p['scoring_cost_usd'])}" if p.get("scoring_cost_usd") else "")
        + (f" (+{p['unpriced']} unpriced)" if p["unpriced"] else "")
    )
    if p.get("error"):
        print(f"note: {p['error']}")
    cols = payload["columns"]
    if not cols:
        return
    scored = metrics.mean_columns({k for c in cols for k in c})
    headers = ["column", "n", "failed", *[m.name for m in scored], "tokens in/out", "cost"]
    headers += ["p50 ms", "p95 ms", "ttft p50"]
    rows = [
        [
            c["column"],
            c["n"],
            c["failed"],
            *[present.score(c.get(m.mean_column)) for m in scored],
            f"{c['prompt_tokens']}/{c['completion_tokens']}",
            present.money(c["cost_usd"]),
            present.ms(c["latency_p50_ms"]),
            present.ms(c["latency_p95_ms"]),
            present.ms(c["ttft_p50_ms"]),
        ]
        for c in cols
    ]
    print(table(headers, rows, max_width=70))


def _run_and_report(sweep_id: int, args: argparse.Namespace) -> int:
    """Execute, then print the summary; exit 1 when the sweep ended neither done nor cancelled."""
    report = _execute(sweep_id, show=not args.json, processes=args.processes)
    payload = _summary_payload(sweep_id)
    payload["report"] = {
        "called": report.called,
        "provider_requests": report.provider_requests,
        "seconds": round(report.seconds, 3),
        "processes": report.processes,
        "circuit_open": report.circuit_open,
    }
    if args.json:
        print_json(payload)
    else:
        _print_summary(payload)
    return 0 if payload["sweep"]["status"] in ("done", "cancelled") else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Plan a sweep (every cell written as pending first), then run it here."""
    from workbench import present
    from workbench.sweeps.plan import create_sweep

    ensure_db()
    spec = _spec_from_args(args)
    with workers_warmed(spec, args.processes):
        with session() as s:
            sweep, plan = create_sweep(s, spec)
            sweep_id = sweep.id
        if not args.json:
            unpriced = f" (no price for {', '.join(plan.unpriced_models)})" if plan.unpriced_models else ""
            print(
                f"Sweep {sweep_id}: {plan.cells:,} cells ({plan.cached:,} from cache, "
                f"{plan.to_call:,} to call) = {len(plan.versions)} versions x {len(plan.models)} models "
                f"x {len(plan.param_combos)} param sets x {plan.rows} rows x {spec.repeats} repeats; "
                f"estimated cost {present.money(plan.estimated_cost_usd)}{unpriced}",
                file=sys.stderr,
            )
        return _run_and_report(sweep_id, args)


def cmd_resume(args: argparse.Namespace) -> int:
    """Finish a sweep's pending cells (and its failed ones with --retry-failed)."""
    from workbench.sweeps.lifecycle import prepare_resume

    ensure_db()
    n = prepare_resume(args.sweep_id, retry_failed=args.retry_failed)
    with workers_warmed(None, args.processes, sweep_id=args.sweep_id, pending=n):
        if not args.json:
            print(f"Resuming sweep {args.sweep_id}: {n} cells to run.", file=sys.stderr)
        return _run_and_report(args.sweep_id, args)


def cmd_cancel(args: argparse.Namespace) -> int:
    """Ask every executor of a sweep to stop; pending cells are cancelled at once."""
    from workbench.sweeps.lifecycle import request_cancel

    ensure_db()
    request_cancel(args.sweep_id)
    print(f"Cancel requested for sweep {args.sweep_id}; running executors stop within a second.")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """`sweep` without a verb: the older spellings `--resume ID`, `--cancel ID`, else `run`."""
    if args.cancel is not None:
        args.sweep_id = args.cancel
        return cmd_cancel(args)
    if args.resume is not None:
        args.sweep_id = args.resume
        return cmd_resume(args)
    return cmd_run(args)


def cmd_show(args: argparse.Namespace) -> int:
    """Print a sweep's progress and per-column summary."""
    ensure_db()
    payload = _summary_payload(args.sweep_id)
    if args.json:
        print_json(payload)
    else:
        _print_summary(payload)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """List recent sweeps, newest first."""
    from workbench import present
    from workbench.cli.table import table
    from workbench.sweeps.summary import list_sweeps

    ensure_db()
    with session() as s:
        items = [
            (
                sw.id,
                sw.name,
                sw.status,
                p.total,
                p.done,
                p.failed,
                p.cached,
                present.money(p.cost_usd),
                sw.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for sw, p in list_sweeps(s, args.limit)
        ]
    if not items:
        print("No sweeps yet. Start one: python -m workbench sweep run --prompt NAME --dataset D --models M")
        return 0
    print(table(["id", "name", "status", "cells", "done", "failed", "cached", "cost", "created"], items))
    return 0


def _run_options(container: Any, *, inherit: bool) -> None:
    """The options of `sweep run` (also carried by `sweep` itself, the older spelling)."""
    add = option_adder(container, inherit=inherit)
    add("--prompt", action="append", help="NAME, NAME@N or NAME:label (repeatable).")
    add("--dataset", help="Dataset whose rows give the variables.")
    add("--var", action="append", metavar="K=V", help="Variables for a single row instead of a dataset.")
    add("--models", help="Comma-separated model ids.")
    add("--temperatures", help="Comma-separated temperatures, e.g. 0,0.7.")
    add("--param", action="append", metavar="K=V1,V2", help="Any provider parameter grid (repeatable).")
    add("--max-tokens", dest="max_tokens", type=int, help="max_tokens for every cell.")
    add("--repeats", type=int, default=1, help="Calls per cell (default 1).")
    add("--concurrency", type=int, default=8, help="Calls in flight at once (default 8).")
    add("--budget", type=float, help="Refuse plans whose estimated cost exceeds this many USD.")
    add("--score", help="Scorers: exact, exact_raw, contains, contains_raw, regex, json, length, judge.")
    add("--regex", help="Pattern for the regex scorer.")
    add("--json-schema", dest="json_schema", help="JSON Schema file for the json scorer.")
    add("--judge-model", dest="judge_model", help="Model for the LLM judge scorer.")
    add("--judge-rubric", dest="judge_rubric", help="Jinja rubric (input, output, expected).")
    add("--limit", type=int, help="Use only the first N dataset rows.")
    add("--timeout", type=float, help="Seconds before a call times out (default 120).")
    add("--max-attempts", dest="max_attempts", type=int, default=5, help="Attempts per cell (default 5).")
    add("--name", help="A name for the sweep.")
    add("--no-cache", action="store_true", help="Call again even when an identical cell is done.")
    add("--no-stream", action="store_true", help="Do not stream (faster, no TTFT).")
    _processes_option(add)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _processes_option(add: Any) -> None:
    add(
        "--processes",
        type=_at_least_one,
        metavar="N",
        help="Processes that run the cells, sharing the concurrency limits (default: one per core "
        "for sweeps of 500+ cells that call a model that is not local, else 1).",
    )


def _id_verb(verbs: Any, name: str, text: str, func: Any, *, hidden: bool = False) -> Any:
    c = add_verb(verbs, name, text, hidden=hidden)
    c.add_argument("sweep_id", type=int, metavar="ID", help="Sweep id (see: sweep list).")
    c.set_defaults(func=func)
    return c


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `sweep` (verbs run|show|list|resume|cancel; run is the default) and its older spellings."""
    group = sub.add_parser(
        "sweep",
        help="Run a grid (versions x models x params x rows x repeats), and show, resume or cancel one.",
        description="Plan and run sweeps. Without a verb, `sweep` takes the options of `sweep run`.",
        epilog=ALIASES,
        formatter_class=ALIAS_FORMATTER,
    )
    _run_options(
        group.add_argument_group("sweep run options (the verb 'run' may be left out)"), inherit=False
    )
    legacy = group.add_argument_group("older spellings")
    legacy.add_argument("--resume", type=int, metavar="ID", help="Same as: sweep resume ID.")
    legacy.add_argument("--cancel", type=int, metavar="ID", help="Same as: sweep cancel ID.")
    legacy.add_argument(
        "--retry-failed", action="store_true", help="With --resume: run failed cells again too."
    )
    group.add_argument("--json", action="store_true", help="Print a machine-readable summary.")
    group.set_defaults(func=cmd_sweep)
    verbs = group.add_subparsers(dest="sweep_command", metavar="VERB", required=False)

    c = add_verb(verbs, "run", "Plan a sweep and run it here (the default verb).")
    _run_options(c, inherit=True)
    option_adder(c, inherit=True)("--json", action="store_true", help="Print a machine-readable summary.")
    c.set_defaults(func=cmd_run)
    for verb_sub, prefix in ((verbs, ""), (sub, "sweep-")):
        hidden = bool(prefix)  # the old top-level spellings; the epilog documents them
        c = _id_verb(
            verb_sub, f"{prefix}show", "Progress and per-column summary of a sweep.", cmd_show, hidden=hidden
        )
        option_adder(c, inherit=not hidden)("--json", action="store_true", help="Print JSON.")
        c = add_verb(verb_sub, f"{prefix}list", "Recent sweeps, newest first.", hidden=hidden)
        c.add_argument("--limit", type=int, default=30, help="How many (default 30).")  # not run's --limit
        c.set_defaults(func=cmd_list)
    c = _id_verb(verbs, "resume", "Finish the pending cells of a sweep.", cmd_resume)
    add = option_adder(c, inherit=True)
    add("--retry-failed", action="store_true", help="Run failed cells again too.")
    add("--json", action="store_true", help="Print a machine-readable summary.")
    _processes_option(add)
    _id_verb(verbs, "cancel", "Ask the executors of a sweep to stop.", cmd_cancel)
