"""`python -m workbench optimize run|show|list|cancel|save|resume|again`: optimize a version with DSPy.

`save` keeps a proposal only when the paired test on the held-out rows says it is better, unless
`--override` (older name `--force`) is given; the version's lineage then records the override.
`resume` finishes an optimization whose process stopped (its calls and cost carry over); `again`
starts a new one with the same settings.
"""

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
  optimize save ID --force                        = optimize save ID --override
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
    return _run_here(row.id, args)


def _run_here(optimization_id: int, args: argparse.Namespace) -> int:
    """Run an optimization in this process, save it when asked (and better), and report it."""
    from workbench.optimize.worker import run_optimization

    status = run_optimization(optimization_id)
    saved = None
    if getattr(args, "save", False) and status in ("done", "cancelled"):
        saved = _save(
            optimization_id, override=False, rescore=not args.no_rescore, quiet=args.json, strict=False
        )
    if args.json:
        print_json({**_summary(optimization_id), "saved": saved})
    else:
        _show(optimization_id, diff=True)
    return 0 if status in ("done", "cancelled") else 1


def _save(
    optimization_id: int, *, override: bool, rescore: bool, quiet: bool = False, strict: bool = True
) -> dict[str, Any] | None:
    """Save the proposal (and re-score it); not `strict`: say why it is not saved instead of failing."""
    from workbench.optimize.results import proposal_of, require_optimization, save_result, saved_record
    from workbench.prompts import store

    with session() as s:
        row = require_optimization(s, optimization_id)
        prop = proposal_of(row)
        if not prop.can_save and not strict:
            print(f"Not saved: {prop.reason}", file=sys.stderr)
            return None
        version, created = save_result(s, optimization_id=optimization_id, override=override)
        ref = store.resolve_name(s, version)
        record = saved_record(row) or {}
    if not quiet:
        how = " by override (recorded in its lineage)" if record.get("override") else ""
        print(f"Saved {ref} (source dspy){how}." if created else f"Identical to {ref}; linked it{how}.")
    out: dict[str, Any] = {
        "version": ref,
        "created": created,
        "override": bool(record.get("override")),
        "evidence": record.get("evidence"),
    }
    if rescore:
        from workbench.optimize.rescore import rescore as run_rescore
        from workbench.optimize.rescore import summary_line

        result = run_rescore(optimization_id)
        out["rescore"] = result.__dict__
        if not quiet:
            print(summary_line(result))
    return out


def _summary(optimization_id: int) -> dict[str, Any]:
    from workbench.optimize.results import require_optimization, summary

    with session() as s:
        return summary(s, require_optimization(s, optimization_id))


def _show(optimization_id: int, *, diff: bool) -> None:
    from workbench.cli.table import table
    from workbench.optimize.decision import describe
    from workbench.optimize.rescore import summary_line
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
    if data["paired"]:
        print(f"Held-out paired test: {data['paired']['verdict']} ({describe(data['paired'])}).")
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
    if data["proposal"]["can_override"] and not data["saved"]:
        print(f"To save it anyway: python -m workbench optimize save {data['id']} --override")
    if data["saved"]:
        how = "by override" if data["saved"]["override"] else "backed by the held-out paired test"
        print(f"Saved as {data['output_version']}, {how}.")
    if data["rescore"]:
        print(summary_line(data["rescore"]))
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
    saved = _save(args.optimization_id, override=args.override, rescore=not args.no_rescore, quiet=args.json)
    if args.json:
        print_json(saved)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Finish an optimization whose process stopped, here, with its calls and cost carried over."""
    from workbench.optimize.recovery import prepare_resume

    ensure_db()
    with session() as s:
        outcome = prepare_resume(s, args.optimization_id)
    if outcome == "failed":  # too few calls left: closed, saying what was lost
        data = _summary(args.optimization_id)
        if args.json:
            print_json(data)
        else:
            print(f"Optimization #{data['id']} cannot resume: {data['error']}", file=sys.stderr)
            print(f"Start it again: python -m workbench optimize again {data['id']}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"Optimization #{args.optimization_id}: {outcome}, running here ...", file=sys.stderr)
    return _run_here(args.optimization_id, args)


def cmd_again(args: argparse.Namespace) -> int:
    """Start a new optimization with the same settings as another (re-planned: a fresh call cap)."""
    from workbench.optimize.recovery import start_again

    ensure_db()
    with session() as s:
        new_id = start_again(s, args.optimization_id).id
    if not args.json:
        print(
            f"Optimization #{new_id}: the settings of #{args.optimization_id}, running here ...",
            file=sys.stderr,
        )
    return _run_here(new_id, args)


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
    c.add_argument(
        "--override",
        "--force",
        dest="override",
        action="store_true",
        help="Save even when the paired test on the held-out rows does not say better; the version's "
        "lineage records the override and the evidence (--force is the older name).",
    )
    option_adder(c, inherit=not hidden)(
        "--no-rescore", dest="no_rescore", action="store_true", help="Skip the re-scoring sweep."
    )
    option_adder(c, inherit=not hidden)("--json", action="store_true", help="Print JSON.")
    if hidden:
        return
    c = verb(
        "resume", "Finish an optimization whose process stopped (calls and cost carry over).", cmd_resume
    )
    c.add_argument("--json", action="store_true", help="Print a machine-readable summary.")
    c = verb("again", "Start a new optimization with the same settings as ID, and run it here.", cmd_again)
    c.add_argument("--json", action="store_true", help="Print a machine-readable summary.")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `optimize run|show|list|cancel|save|resume|again` (run is the default) and older spellings."""
    group = sub.add_parser(
        "optimize",
        help="Optimize a prompt version with DSPy against labelled rows; show, list, cancel, save, "
        "resume, again.",
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
