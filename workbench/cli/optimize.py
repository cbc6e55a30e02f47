"""`python -m workbench optimize run|show|list|cancel|save`: optimize a version with DSPy, and follow it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workbench import present
from workbench.cli.common import ALIAS_FORMATTER, add_verb, ensure_db, option_adder, print_json, session

ALIASES = """\
older spellings that still work:
  optimize --prompt P --dataset D --model M ...   = optimize run --prompt P ...
  optimize-show ID / optimize-list                = optimize show ID / optimize list
  optimize-cancel ID / optimize-save ID           = optimize cancel ID / optimize save ID
"""


def _settings(pairs: list[str] | None) -> dict[str, Any]:
    from workbench.errors import ValidationError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValidationError(f"--set '{pair}' must look like name=value.")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def spec_from_args(args: argparse.Namespace):
    """The OptimizeSpec the command line asks for."""
    from workbench.errors import ValidationError
    from workbench.optimize.run import OptimizeSpec

    for name in ("prompt", "dataset", "model"):
        if not getattr(args, name):
            raise ValidationError(f"Give --{name} (see: python -m workbench optimize run --help).")
    metric = {
        "name": args.metric,
        "regex": args.regex,
        "tolerance": args.tolerance,
        "judge_model": args.judge_model,
        "judge_rubric": args.judge_rubric,
        "threshold": args.threshold,
    }
    return OptimizeSpec(
        prompt=args.prompt,
        dataset=args.dataset,
        model=args.model,
        metric=metric,
        optimizer=args.optimizer,
        settings=_settings(args.set),
        train_fraction=args.train_fraction,
        seed=args.seed,
        max_rows=args.limit,
        max_calls=args.max_calls,
        prompt_model=args.prompt_model,
        num_threads=args.threads,
    )


def _plan_lines(plan) -> list[str]:
    c = plan.calls
    lines = [
        f"{plan.version}: {len(plan.train_ids)} training / {len(plan.val_ids)} validation rows.",
        f"Estimated calls: {plan.estimated_calls} (baseline {c['baseline']}, optimizer {c['optimizer_task']}"
        + (f" + {c['optimizer_prompt']} prompt-model" if c["optimizer_prompt"] else "")
        + (f", judge {c['judge']}" if c["judge"] else "")
        + f", final {c['final']}); hard cap {plan.call_cap}; "
        + f"estimated cost {present.money(plan.estimated_cost_usd)}.",
    ]
    return lines + [f"Note: {w}" for w in plan.warnings]


def cmd_run(args: argparse.Namespace) -> int:
    """Plan an optimization (--dry-run stops there), run it here, then show the result."""
    from workbench.optimize.run import create_optimization, plan_optimization

    ensure_db()
    spec = spec_from_args(args)
    with session() as s:
        if args.dry_run:
            plan = plan_optimization(s, spec)
            if args.json:
                print_json(plan.to_dict())
            else:
                print("\n".join(_plan_lines(plan)))
            return 0
        row, plan = create_optimization(s, spec)
    if not args.json:
        print("\n".join(_plan_lines(plan)))
        print(
            f"Optimization #{row.id} running (cancel from another shell: python -m workbench "
            f"optimize cancel {row.id}) ...",
            file=sys.stderr,
        )
    from workbench.optimize.worker import run_optimization

    status = run_optimization(row.id)
    saved = None
    if args.save and status in ("done", "cancelled"):
        saved = _save(row.id, force=False, rescore=not args.no_rescore, quiet=args.json)
    if args.json:
        print_json({**_summary(row.id), "saved": saved})
    else:
        _show(row.id, diff=True)
    return 0 if status == "done" or (status == "cancelled") else 1


def _save(optimization_id: int, *, force: bool, rescore: bool, quiet: bool = False) -> dict[str, Any] | None:
    from workbench.optimize.results import proposal_of, require_optimization, save_result
    from workbench.prompts import store

    with session() as s:
        row = require_optimization(s, optimization_id)
        prop = proposal_of(row)
        if not prop.can_save and not force:
            if not quiet:
                print(f"Not saved: {prop.reason}")
            return None
        version, created = save_result(s, optimization_id=optimization_id, force=force)
        ref = store.resolve_name(s, version)
    if not quiet:
        print(f"Saved {ref} (source dspy)." if created else f"Identical to {ref}; linked it.")
    out: dict[str, Any] = {"version": ref, "created": created}
    if rescore:
        from workbench.optimize.results import rescore as run_rescore

        result = run_rescore(optimization_id)
        out["rescore"] = result.__dict__
        if not quiet:
            print(
                f"Re-scored by sweep #{result.sweep_id}: {present.score(result.sweep_score)} "
                f"(DSPy: {present.score(result.dspy_score)}). {result.explanation}"
            )
    return out


def _summary(optimization_id: int) -> dict[str, Any]:
    from workbench.optimize.results import proposal_of, require_optimization, row_comparison

    with session() as s:
        row = require_optimization(s, optimization_id)
        prop = proposal_of(row)
        return {
            "id": row.id,
            "status": row.status,
            "optimizer": row.optimizer,
            "metric": row.metric,
            "task_model": row.task_model,
            "prompt_model": row.prompt_model,
            "baseline_score": row.baseline_score,
            "final_score": row.final_score,
            "lm_calls": row.lm_calls,
            "call_cap": row.call_cap,
            "cost_usd": row.cost_usd,
            "error": row.error,
            "progress": row.config.get("progress"),
            "rescore": row.config.get("rescore"),
            "proposal": {"can_save": prop.can_save, "reason": prop.reason, "messages": prop.messages},
            "output_version_id": row.output_version_id,
            "rows": row_comparison(row),
        }


def _show(optimization_id: int, *, diff: bool) -> None:
    from workbench.cli.table import table
    from workbench.optimize.results import diff_text, require_optimization

    data = _summary(optimization_id)
    print(
        f"Optimization #{data['id']}: {data['status']} ({data['optimizer']}, {data['metric']}, "
        f"{data['task_model']}); calls {data['lm_calls']}/{data['call_cap']}, "
        f"cost {present.money(data['cost_usd'])}."
    )
    if data["error"]:
        print(f"Error: {data['error']}")
    baseline, final = present.score(data["baseline_score"]), present.score(data["final_score"])
    print(f"Validation score: baseline {baseline}, optimized {final}.")
    if data["rows"]:
        rows = [
            (
                json.dumps(r["inputs"], ensure_ascii=False),
                r["expected"],
                r["baseline_output"],
                present.score(r["baseline_score"]),
                r["optimized_output"],
                present.score(r["optimized_score"]),
            )
            for r in data["rows"]
        ]
        print(table(["inputs", "expected", "baseline", "score", "optimized", "score"], rows, max_width=40))
    print(data["proposal"]["reason"])
    if diff:
        with session() as s:
            text = diff_text(s, require_optimization(s, optimization_id))
        if text:
            print(text)


def cmd_show(args: argparse.Namespace) -> int:
    """Scores, per-row results and the proposed diff of an optimization (and its log)."""
    ensure_db()
    if args.json:
        print_json(_summary(args.optimization_id))
    else:
        _show(args.optimization_id, diff=not args.no_diff)
        if args.log:
            from workbench.optimize.results import require_optimization

            with session() as s:
                print(require_optimization(s, args.optimization_id).log or "")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Recent optimizations, newest first."""
    from workbench.cli.table import table
    from workbench.optimize.results import list_optimizations

    ensure_db()
    with session() as s:
        rows = [
            (
                o.id,
                o.status,
                o.optimizer,
                o.metric,
                o.task_model,
                present.score(o.baseline_score),
                present.score(o.final_score),
                f"{o.lm_calls}/{o.call_cap}",
                o.output_version_id or "",
            )
            for o in list_optimizations(s, limit=args.limit)
        ]
    print(
        table(
            ["id", "status", "optimizer", "metric", "model", "baseline", "optimized", "calls", "saved as"],
            rows,
        )
    )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Ask a running optimization to stop (it keeps what it learned so far)."""
    from workbench.optimize.results import request_cancel

    ensure_db()
    with session() as s:
        row = request_cancel(s, optimization_id=args.optimization_id)
        print(
            f"Optimization #{row.id}: {row.status}" + (" (cancel requested)" if row.cancel_requested else "")
        )
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    """Save an optimization's proposal as a new version, then re-score it with a sweep."""
    ensure_db()
    saved = _save(args.optimization_id, force=args.force, rescore=not args.no_rescore, quiet=args.json)
    if args.json:
        print_json(saved)
    return 0


def _run_options(container: Any, *, inherit: bool) -> None:
    """The options of `optimize run` (also carried by `optimize` itself, the older spelling)."""
    from workbench.optimize.metrics import METRICS
    from workbench.optimize.optimizers import OPTIMIZERS

    add = option_adder(container, inherit=inherit)
    add("--prompt", help="Version to optimize: NAME, NAME@N or NAME:label.")
    add("--dataset", help="Labelled dataset (rows with an expected answer).")
    add("--model", help="Task model, e.g. local/smollm2-135m-instruct.")
    add(
        "--metric",
        default="normalized_exact",
        choices=list(METRICS),
        help="How a reply is scored (default normalized_exact).",
    )
    add("--regex", help="Pattern for the regex metric.")
    add("--tolerance", type=float, default=0.0, help="Absolute tolerance of the numeric metric.")
    add("--judge-model", dest="judge_model", help="Model for the judge metric.")
    add("--judge-rubric", dest="judge_rubric", help="Jinja rubric for the judge (input, output, expected).")
    add(
        "--threshold",
        type=float,
        default=1.0,
        help="Score a bootstrapped demo must reach (default 1.0; e.g. 0.75 for a judge).",
    )
    add(
        "--optimizer",
        default="bootstrap",
        choices=list(OPTIMIZERS),
        help="Optimizer (default bootstrap): " + ", ".join(OPTIMIZERS) + ".",
    )
    add("--set", action="append", metavar="K=V", help="Optimizer setting, e.g. max_labeled_demos=2.")
    add(
        "--train-fraction",
        dest="train_fraction",
        type=float,
        default=0.5,
        help="Share of labelled rows used to optimize; the rest validate (default 0.5).",
    )
    add("--seed", type=int, default=0, help="Seed of the train/validation split (default 0).")
    add("--limit", type=int, help="Use only the first N dataset rows.")
    add("--max-calls", dest="max_calls", type=int, help="Hard cap on LM calls (default: twice the estimate).")
    add(
        "--prompt-model", dest="prompt_model", help="Stronger model that writes instructions (MIPROv2, GEPA)."
    )
    add("--threads", type=int, help="Parallel calls (default 1 for local models, else 4).")
    add("--dry-run", dest="dry_run", action="store_true", help="Only print the plan and estimate.")
    add("--save", action="store_true", help="Save an improvement as a new version and re-score it.")
    add("--no-rescore", dest="no_rescore", action="store_true", help="With --save: skip the sweep.")
    add("--json", action="store_true", help="Print a machine-readable summary.")


def _id_verbs(verbs: argparse._SubParsersAction, prefix: str) -> None:
    """show, list, cancel and save under `verbs`; with a prefix, the older hidden top-level spellings."""
    hidden = bool(prefix)

    def verb(name: str, text: str, func: Any, *, with_id: bool = True) -> argparse.ArgumentParser:
        c = add_verb(verbs, f"{prefix}{name}", text, hidden=hidden)
        if with_id:
            c.add_argument("optimization_id", type=int, metavar="ID", help="Optimization id.")
        c.set_defaults(func=func)
        return c

    c = verb("show", "Scores, per-row results and the proposed diff of an optimization.", cmd_show)
    c.add_argument("--no-diff", dest="no_diff", action="store_true", help="Leave out the diff.")
    c.add_argument("--log", action="store_true", help="Also print the run's log.")
    option_adder(c, inherit=not hidden)("--json", action="store_true", help="Print JSON.")
    c = verb("list", "Recent optimizations.", cmd_list, with_id=False)
    c.add_argument("--limit", type=int, default=20, help="How many (default 20).")  # not run's --limit
    verb("cancel", "Ask a running optimization to stop (keeps what it learned).", cmd_cancel)
    c = verb("save", "Save an optimization's proposal as a new version and re-score it.", cmd_save)
    c.add_argument("--force", action="store_true", help="Save even when it scored no better.")
    option_adder(c, inherit=not hidden)(
        "--no-rescore", dest="no_rescore", action="store_true", help="Skip the re-scoring sweep."
    )
    option_adder(c, inherit=not hidden)("--json", action="store_true", help="Print JSON.")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `optimize run|show|list|cancel|save` (run is the default) and the older spellings."""
    group = sub.add_parser(
        "optimize",
        help="Optimize a prompt version with DSPy against labelled rows; show, list, cancel, save.",
        description="Optimize a version with DSPy. Without a verb, it takes `optimize run`'s options.",
        epilog=ALIASES,
        formatter_class=ALIAS_FORMATTER,
    )
    _run_options(
        group.add_argument_group("optimize run options (the verb 'run' may be left out)"), inherit=False
    )
    group.set_defaults(func=cmd_run)
    verbs = group.add_subparsers(dest="optimize_command", metavar="VERB", required=False)
    c = add_verb(verbs, "run", "Optimize a version against labelled rows (the default verb).")
    _run_options(c, inherit=True)
    c.set_defaults(func=cmd_run)
    _id_verbs(verbs, "")
    _id_verbs(sub, "optimize-")
