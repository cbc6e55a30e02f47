"""`python -m workbench sweep ...` and `worker`: plan, run, resume, cancel and show sweeps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _fmt_money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f}"


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
    variables = None
    if args.var:
        from workbench.cli import _parse_vars

        variables = _parse_vars(args.var)
    schema = None
    if args.json_schema:
        try:
            schema = json.loads(Path(args.json_schema).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"--json-schema {args.json_schema}: {exc}") from None
    metrics = [m.strip() for m in (args.score or "").split(",") if m.strip()]
    if not args.models:
        raise ValidationError("Give --models m1,m2 (see: python -m workbench models).")
    return SweepSpec(
        prompts=args.prompt or [],
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        dataset=args.dataset,
        variables=variables,
        params=params,
        repeats=args.repeats,
        concurrency=args.concurrency,
        budget_usd=args.budget,
        scoring={
            "metrics": metrics,
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
    """A one-line progress bar on stderr, redrawn in place."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def draw(self, p: Any, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.25):
            return
        self.last = now
        width = 30
        filled = int(width * p.finished / p.total) if p.total else width
        eta = f"ETA {p.eta_s:.0f}s" if p.eta_s is not None else ""
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {p.finished}/{p.total}  done {p.done} "
            f"failed {p.failed} cached {p.cached}  cost {_fmt_money(p.cost_usd)}  {eta}"
        )
        sys.stderr.write(line.ljust(100))
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _run_with_progress(sweep_id: int, show: bool) -> Any:
    import threading

    from workbench.db import session_scope
    from workbench.sweeps.execute import ExecutorOptions, SweepExecutor
    from workbench.sweeps.summary import progress

    bar = ProgressLine(show)
    executor = SweepExecutor(sweep_id, ExecutorOptions())
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            with session_scope() as s:
                bar.draw(progress(s, sweep_id))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    import asyncio

    try:
        report = asyncio.run(executor.run())
    except KeyboardInterrupt:
        from workbench.sweeps.execute import request_cancel

        request_cancel(sweep_id)
        print(
            f"\nInterrupted: sweep {sweep_id} is paused; finish it with "
            f"python -m workbench sweep --resume {sweep_id}",
            file=sys.stderr,
        )
        raise
    finally:
        stop.set()
        poller.join()
    with session_scope() as s:
        bar.draw(progress(s, sweep_id), force=True)
    bar.end()
    return report


def _summary_payload(sweep_id: int) -> dict[str, Any]:
    from workbench.db import session_scope
    from workbench.sweeps.summary import progress, runs_frame, summarize

    with session_scope() as s:
        p = progress(s, sweep_id)
        df = runs_frame(s, sweep_id)
    table = summarize(df)
    rows = json.loads(table.to_json(orient="records")) if not table.empty else []
    return {"sweep": p.to_dict(), "columns": rows}


def _print_summary(payload: dict[str, Any]) -> None:
    from workbench.cli.table import table

    p = payload["sweep"]
    print(
        f"Sweep {p['sweep_id']}: {p['status']}  {p['done']} done ({p['cached']} cached), "
        f"{p['failed']} failed, "
        f"{p['cancelled']} cancelled, {p['remaining']} remaining; cost {_fmt_money(p['cost_usd'])}"
        + (f" + judge {_fmt_money(p['scoring_cost_usd'])}" if p.get("scoring_cost_usd") else "")
        + (f" (+{p['unpriced']} unpriced)" if p["unpriced"] else "")
    )
    if p.get("error"):
        print(f"note: {p['error']}")
    cols = payload["columns"]
    if not cols:
        return
    score_keys = sorted({k for c in cols for k in c if k.startswith("score_") and k.endswith("_mean")})
    headers = [
        "column",
        "n",
        "failed",
        *[k[6:-5] for k in score_keys],
        "tokens in/out",
        "cost",
        "p50 ms",
        "p95 ms",
        "ttft p50",
    ]
    rows = []
    for c in cols:
        rows.append(
            [
                c["column"],
                c["n"],
                c["failed"],
                *[("-" if c.get(k) is None else f"{c[k]:.3f}") for k in score_keys],
                f"{c['prompt_tokens']}/{c['completion_tokens']}",
                _fmt_money(c["cost_usd"]),
                _fmt_ms(c["latency_p50_ms"]),
                _fmt_ms(c["latency_p95_ms"]),
                _fmt_ms(c["ttft_p50_ms"]),
            ]
        )
    print(table(headers, rows, max_width=70))


def cmd_sweep(args: argparse.Namespace) -> int:
    """Plan and run a sweep (or resume / cancel one)."""
    from workbench.cli import _ensure_db
    from workbench.db import session_scope

    _ensure_db()
    if args.cancel is not None:
        from workbench.sweeps.execute import request_cancel

        request_cancel(args.cancel)
        print(f"Cancel requested for sweep {args.cancel}; running executors stop within a second.")
        return 0
    if args.resume is not None:
        from workbench.sweeps.execute import prepare_resume

        n = prepare_resume(args.resume, retry_failed=args.retry_failed)
        sweep_id = args.resume
        if not args.json:
            print(f"Resuming sweep {sweep_id}: {n} cells to run.", file=sys.stderr)
    else:
        from workbench.sweeps.plan import create_sweep

        spec = _spec_from_args(args)
        with session_scope() as s:
            sweep, plan = create_sweep(s, spec)
            sweep_id = sweep.id
        if not args.json:
            print(
                f"Sweep {sweep_id}: {plan.cells:,} cells ({plan.cached:,} from cache, "
                f"{plan.to_call:,} to call) = {len(plan.versions)} versions x {len(plan.models)} models "
                f"x {len(plan.param_combos)} param sets "
                f"x {plan.rows} rows x {spec.repeats} repeats; estimated cost "
                f"{_fmt_money(plan.estimated_cost_usd)}"
                + (f" (no price for {', '.join(plan.unpriced_models)})" if plan.unpriced_models else ""),
                file=sys.stderr,
            )
    report = _run_with_progress(sweep_id, show=not args.json)
    payload = _summary_payload(sweep_id)
    payload["report"] = {
        "called": report.called,
        "provider_requests": report.provider_requests,
        "seconds": round(report.seconds, 3),
        "circuit_open": report.circuit_open,
    }
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        _print_summary(payload)
    return 0 if payload["sweep"]["status"] in ("done", "cancelled") else 1


def cmd_sweep_show(args: argparse.Namespace) -> int:
    """Print a sweep's progress and per-column summary."""
    from workbench.cli import _ensure_db

    _ensure_db()
    payload = _summary_payload(args.sweep_id)
    if args.json:
        print(json.dumps(payload, indent=2, default=str))
    else:
        _print_summary(payload)
    return 0


def cmd_sweep_list(args: argparse.Namespace) -> int:
    """List recent sweeps."""
    from workbench.cli import _ensure_db
    from workbench.cli.table import table
    from workbench.db import session_scope
    from workbench.sweeps.summary import list_sweeps

    _ensure_db()
    with session_scope() as s:
        items = [
            (
                sw.id,
                sw.name,
                sw.status,
                p.total,
                p.done,
                p.failed,
                p.cached,
                _fmt_money(p.cost_usd),
                sw.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for sw, p in list_sweeps(s, args.limit)
        ]
    if not items:
        print("No sweeps yet. Start one: python -m workbench sweep --prompt NAME --dataset D --models M")
        return 0
    print(table(["id", "name", "status", "cells", "done", "failed", "cached", "cost", "created"], items))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Claim and run pending cells of any sweep until none are left (or forever with --wait)."""
    import asyncio

    from sqlmodel import Session, col, select

    from workbench.cli import _ensure_db
    from workbench.db import get_engine
    from workbench.models import Run, Sweep
    from workbench.sweeps import claims
    from workbench.sweeps.execute import ExecutorOptions, SweepExecutor

    _ensure_db()
    engine = get_engine()
    worker_id = claims.new_worker_id()
    print(f"worker {worker_id} started", file=sys.stderr)
    total = 0
    while True:
        claims.release_stale(engine, sweep_id=args.sweep)
        with Session(engine) as s:
            stmt = (
                select(Run.sweep_id)
                .join(Sweep, Sweep.id == Run.sweep_id)
                .where(Run.status == "pending", col(Sweep.cancel_requested).is_(False))
                .distinct()
            )
            if args.sweep is not None:
                stmt = stmt.where(Run.sweep_id == args.sweep)
            sweep_ids = sorted(s.exec(stmt).all())
        for sweep_id in sweep_ids:
            report = asyncio.run(SweepExecutor(sweep_id, ExecutorOptions(worker_id=worker_id)).run())
            total += report.called
            print(f"sweep {sweep_id}: ran {report.called} cells ({report.failed} failed)", file=sys.stderr)
        if not sweep_ids:
            if not args.wait:
                break
            time.sleep(args.poll)
    print(f"worker {worker_id} done: {total} cells", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register sweep, sweep-show, sweep-list and worker on the CLI parser."""
    c = sub.add_parser("sweep", help="Run a grid: versions x models x params x rows x repeats.")
    c.add_argument("--prompt", action="append", help="NAME, NAME@N or NAME:label (repeatable).")
    c.add_argument("--dataset", help="Dataset whose rows give the variables.")
    c.add_argument(
        "--var", action="append", metavar="K=V", help="Variables for a single row instead of a dataset."
    )
    c.add_argument("--models", help="Comma-separated model ids.")
    c.add_argument("--temperatures", help="Comma-separated temperatures, e.g. 0,0.7.")
    c.add_argument(
        "--param", action="append", metavar="K=V1,V2", help="Any provider parameter grid (repeatable)."
    )
    c.add_argument("--max-tokens", dest="max_tokens", type=int, help="max_tokens for every cell.")
    c.add_argument("--repeats", type=int, default=1, help="Calls per cell (default 1).")
    c.add_argument("--concurrency", type=int, default=8, help="Calls in flight at once (default 8).")
    c.add_argument("--budget", type=float, help="Refuse plans whose estimated cost exceeds this many USD.")
    c.add_argument(
        "--score", help="Scorers: exact, exact_raw, contains, contains_raw, regex, json, length, judge."
    )
    c.add_argument("--regex", help="Pattern for the regex scorer.")
    c.add_argument("--json-schema", dest="json_schema", help="JSON Schema file for the json scorer.")
    c.add_argument("--judge-model", dest="judge_model", help="Model for the LLM judge scorer.")
    c.add_argument("--judge-rubric", dest="judge_rubric", help="Jinja rubric (input, output, expected).")
    c.add_argument("--limit", type=int, help="Use only the first N dataset rows.")
    c.add_argument("--timeout", type=float, help="Seconds before a call times out (default 120).")
    c.add_argument(
        "--max-attempts", dest="max_attempts", type=int, default=5, help="Attempts per cell (default 5)."
    )
    c.add_argument("--name", help="A name for the sweep.")
    c.add_argument("--no-cache", action="store_true", help="Call again even when an identical cell is done.")
    c.add_argument("--no-stream", action="store_true", help="Do not stream (faster, no TTFT).")
    c.add_argument("--resume", type=int, metavar="ID", help="Finish the pending cells of sweep ID.")
    c.add_argument("--retry-failed", action="store_true", help="With --resume: run failed cells again too.")
    c.add_argument("--cancel", type=int, metavar="ID", help="Ask executors of sweep ID to stop.")
    c.add_argument("--json", action="store_true", help="Print a machine-readable summary.")
    c.set_defaults(func=cmd_sweep)

    c = sub.add_parser("sweep-show", help="Summary of a sweep (also: sweep show ID).")
    c.add_argument("sweep_id", type=int, help="Sweep id.")
    c.add_argument("--json", action="store_true", help="Print JSON.")
    c.set_defaults(func=cmd_sweep_show)

    c = sub.add_parser("sweep-list", help="Recent sweeps (also: sweep list).")
    c.add_argument("--limit", type=int, default=30, help="How many (default 30).")
    c.set_defaults(func=cmd_sweep_list)

    c = sub.add_parser("worker", help="Run pending cells from the database until none are left.")
    c.add_argument("--sweep", type=int, help="Only this sweep.")
    c.add_argument("--wait", action="store_true", help="Keep polling for new cells instead of exiting.")
    c.add_argument("--poll", type=float, default=2.0, help="Seconds between polls with --wait.")
    c.set_defaults(func=cmd_worker)
