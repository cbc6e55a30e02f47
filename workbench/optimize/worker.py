"""Run one optimization: baseline on validation, the optimizer on train, the result on validation.

Runs in whatever thread calls it (the background runner, or the CLI's main thread), with DSPy
settings scoped by `dspy.context(...)` to that thread; `dspy.configure` is never called. Progress,
the log, calls and cost go to the Optimization row as they change, so pages poll the database;
DSPy's own prints, progress bars and log lines go to that log too (`capture`), never to stdout.
The two validation passes are compared row by row with a paired test (`decision`), stored with
the program. Every call passes `CallBudget`: cancel and the call cap stop the run within one call, and what
was learned so far is kept (the best program an evaluation saw, or the demos bootstrapped so far).
A run resumed after its process died (`recovery`) starts with the calls and cost already spent,
reuses its baseline scores when that pass had finished, and runs the optimizer again.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import col, select

from workbench import present
from workbench.db import session_scope
from workbench.models import Example, Optimization, PromptVersion, utcnow
from workbench.optimize import optimizers
from workbench.optimize.adapter import WorkbenchAdapter, dspy, make_program, make_shape, predictor_of
from workbench.optimize.capture import captured_output
from workbench.optimize.decision import compare_held_out, describe, pass_fail_metric
from workbench.optimize.engine import CallBudget, StopOptimization, make_lm
from workbench.optimize.metrics import MetricSpec, make_metric
from workbench.optimize.progress import BestSeen, Reporter
from workbench.optimize.results import require_optimization
from workbench.optimize.run import OptimizePlan, plan_of, spec_of


@dataclass
class RowResult:
    """One validation row scored: what the program replied and the metric's score."""

    example_id: int
    inputs: dict[str, Any]
    expected: str | None
    output: str | None
    score: float
    error: str | None = None


def evaluate(
    program: Any, examples: list[Any], ids: list[int], metric: Any, output_name: str, num_threads: int
) -> list[RowResult]:
    """Score `program` on examples; a row that raises scores 0 with its error (StopOptimization passes)."""
    from dspy.utils.parallelizer import ParallelExecutor

    def one(example):
        pred = program(**example.inputs())
        return getattr(pred, output_name, None), float(metric(example, pred))

    executor = ParallelExecutor(
        num_threads=num_threads,
        max_errors=len(examples) + 1,
        disable_progress_bar=True,
        provide_traceback=False,
    )
    outcomes = executor.execute(one, examples)
    rows = []
    for ex_id, example, outcome in zip(ids, examples, outcomes, strict=True):
        inputs = dict(example.inputs().toDict())
        expected = example.get(output_name)
        if isinstance(outcome, BaseException) or outcome is None:
            rows.append(RowResult(ex_id, inputs, expected, None, 0.0, repr(outcome)))
        else:
            rows.append(RowResult(ex_id, inputs, expected, outcome[0], outcome[1]))
    return rows


def mean(rows: list[RowResult]) -> float | None:
    """The mean score of rows (None for no rows)."""
    return sum(r.score for r in rows) / len(rows) if rows else None


def salvage(teleprompter: Any, best: BestSeen, settings: dict[str, Any]) -> Any:
    """What an interrupted optimizer had learned: the best evaluated program, or bootstrapped demos."""
    if best.best is not None:
        return best.best[2]
    traces = getattr(teleprompter, "name2traces", None)
    student = getattr(teleprompter, "student", None)
    if traces and student is not None and any(traces.values()):
        for name, predictor in student.named_predictors():
            predictor.demos = list(traces.get(name, []))[: settings.get("max_bootstrapped_demos", 4)]
        return student
    return None


def _load(optimization_id: int) -> tuple[Optimization, PromptVersion, dict[int, Example]]:
    with session_scope() as s:
        row = require_optimization(s, optimization_id)
        version = s.get(PromptVersion, row.input_version_id)
        plan = plan_of(row)
        ids = plan.train_ids + plan.val_ids
        examples = {e.id: e for e in s.exec(select(Example).where(col(Example.id).in_(ids)))}
        if not row.cancel_requested:
            row.status = "running"
            # Which process runs it: a restarted server resumes (or fails) runs of dead processes.
            from workbench.sweeps.claims import new_worker_id

            row.config = {**(row.config or {}), "runner": new_worker_id()}
            s.add(row)
        return row, version, examples


def run_optimization(optimization_id: int) -> str:
    """Run an optimization to its end; returns its final status (done | cancelled | failed)."""
    row, version, examples = _load(optimization_id)
    reporter = Reporter(optimization_id, log=row.log or "")
    if row.cancel_requested:
        reporter.flush(status="cancelled", finished_at=utcnow())
        return "cancelled"
    try:
        return _run(reporter, row, version, examples)
    except KeyboardInterrupt:
        reporter.log("Interrupted.")
        reporter.flush(status="cancelled", finished_at=utcnow(), error="Interrupted.")
        return "cancelled"
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the row for the user
        reporter.log("".join(traceback.format_exception(exc)).strip())
        reporter.flush(status="failed", finished_at=utcnow(), error=str(exc) or type(exc).__name__)
        return "failed"


def _run(reporter: Reporter, row: Optimization, version: PromptVersion, examples: dict) -> str:
    spec, plan = spec_of(row), plan_of(row)
    metric_spec = MetricSpec.from_dict(spec.metric)
    shape = make_shape(version.messages, plan.input_names)
    # A resumed run starts from the calls and cost already spent: the cap stays the run's total.
    budget = CallBudget(
        cap=plan.call_cap,
        should_cancel=reporter.cancel_requested,
        on_call=reporter.on_call,
        on_acquire=reporter.on_acquire,
        calls=row.lm_calls,
        cost_usd=row.cost_usd or 0.0,
        cost_known=row.cost_usd is not None,
    )
    reporter.budget = budget

    def to_example(ex_id: int) -> Any:
        ex = examples[ex_id]
        fields = {k: ex.inputs.get(k) for k in plan.input_names if ex.inputs.get(k) is not None}
        return dspy.Example(**fields, **{shape.output_name: ex.expected}).with_inputs(*fields)

    train = [to_example(i) for i in plan.train_ids]
    val = [to_example(i) for i in plan.val_ids]
    judge = None
    if metric_spec.name == "judge":
        params = {"temperature": 0, "max_tokens": 16}

        def judge(messages):
            return budget.complete(metric_spec.judge_model, messages, params, role="judge").text

    metric = make_metric(
        metric_spec, output_name=shape.output_name, input_names=plan.input_names, judge=judge
    )
    task_lm = make_lm(spec.model, budget, params=version.params)
    prompt_lm = (
        make_lm(plan.prompt_model, budget, params={"temperature": 1.0, "max_tokens": 1024}, role="prompt")
        if plan.prompt_model
        else None
    )
    kept = (row.config or {}).get("baseline_rows")
    ctx = _Context(reporter, spec, plan, version, shape, budget, metric, metric_spec, train, val, kept)
    try:
        return _optimize(ctx, task_lm, prompt_lm)
    finally:
        budget.close()


@dataclass
class _Context:
    reporter: Reporter
    spec: Any
    plan: OptimizePlan
    version: PromptVersion
    shape: Any
    budget: CallBudget
    metric: Any
    metric_spec: MetricSpec
    train: list[Any]
    val: list[Any]
    kept_baseline: list[dict[str, Any]] | None = None  # baseline rows of an attempt before a restart


def _optimize(ctx: _Context, task_lm: Any, prompt_lm: Any) -> str:
    reporter, spec, plan, shape, budget = ctx.reporter, ctx.spec, ctx.plan, ctx.shape, ctx.budget
    metric, train, val = ctx.metric, ctx.train, ctx.val
    best = BestSeen(reporter)
    with (
        captured_output(reporter) as run_key,
        dspy.context(lm=task_lm, adapter=WorkbenchAdapter(shape), callbacks=[best], **run_key),
    ):
        reporter.log(
            f"{spec.optimizer} on {len(train)} training / {len(val)} validation rows, "
            f"cap {plan.call_cap} calls"
        )
        if budget.calls:
            reporter.log(
                f"resumed with {budget.calls} calls already spent (they count against the cap); DSPy "
                "cannot continue mid-way, so the optimizer starts again"
            )
        if ctx.kept_baseline is not None:
            baseline_rows = [RowResult(**r) for r in ctx.kept_baseline]
            reporter.log("baseline: kept from before the restart")
        else:
            reporter.phase("baseline")
            budget.limit = budget.calls + plan.eval_calls
            try:
                baseline_rows = evaluate(
                    make_program(shape), val, plan.val_ids, metric, shape.output_name, plan.num_threads
                )
            except StopOptimization as stop:
                return _stopped_early(reporter, stop)
            reporter.kept["baseline_rows"] = [asdict(r) for r in baseline_rows]
        baseline = mean(baseline_rows)
        reporter.log(f"baseline: {present.score(baseline)} on {len(val)} validation rows")
        reporter.flush(baseline_score=baseline)

        reporter.phase("optimizing")
        budget.limit = plan.call_cap - plan.eval_calls  # keep the final pass's calls in reserve
        teleprompter = optimizers.build(
            spec.optimizer,
            plan.settings,
            metric=metric,
            threshold=ctx.metric_spec.threshold,
            num_threads=plan.num_threads,
            seed=spec.seed,
            prompt_lm=prompt_lm,
        )
        stop: StopOptimization | None = None
        try:
            program = teleprompter.compile(make_program(shape), trainset=train)
        except StopOptimization as exc:
            stop = exc
            reporter.log(f"optimizer stopped: {exc.message}")
            program = salvage(teleprompter, best, plan.settings)
            reporter.log("kept what it had learned so far" if program is not None else "nothing learned yet")

        final_rows: list[RowResult] | None = None
        if program is not None and _unchanged(shape, ctx.version, program):
            reporter.log("the optimizer proposes no change; the baseline scores stand for it")
            final_rows = baseline_rows
        elif program is not None and (stop is None or stop.reason == "call_cap"):
            reporter.phase("final")
            budget.limit = None
            try:
                final_rows = evaluate(program, val, plan.val_ids, metric, shape.output_name, plan.num_threads)
            except StopOptimization as exc:
                stop = exc
                reporter.log(f"final scoring stopped: {exc.message}")
    pass_fail = pass_fail_metric(ctx.metric_spec.name)
    return _finish(reporter, shape, ctx.version, program, baseline_rows, final_rows, stop, pass_fail)


def _unchanged(shape: Any, version: PromptVersion, program: Any) -> bool:
    predictor = predictor_of(program)
    return shape.messages(predictor.signature.instructions, predictor.demos) == version.messages


def _stopped_early(reporter: Reporter, stop: StopOptimization) -> str:
    status = "cancelled" if stop.reason == "cancelled" else "failed"
    reporter.log(f"stopped before the optimizer ran: {stop.message}")
    reporter.progress["phase"] = status
    reporter.flush(status=status, finished_at=utcnow(), error=None if status == "cancelled" else stop.message)
    return status


def _finish(reporter, shape, version, program, baseline_rows, final_rows, stop, pass_fail) -> str:
    baseline = mean(baseline_rows)
    final = mean(final_rows) if final_rows is not None else None
    payload: dict[str, Any] = {
        "evaluation": {
            "baseline": [asdict(r) for r in baseline_rows],
            "final": [asdict(r) for r in final_rows or []],
        }
    }
    improved = None
    if program is not None:
        predictor = predictor_of(program)
        messages = shape.messages(predictor.signature.instructions, predictor.demos)
        demos = shape.demos_of(predictor.demos)
        payload.update(
            messages=messages,
            params=version.params,
            instructions=predictor.signature.instructions,
            instructions_changed=predictor.signature.instructions != shape.initial_instructions,
            demos=[d.to_dict() for d in demos],
            dspy=_json_safe(program.dump_state()),
            changed=messages != version.messages,
        )
        if final is not None and payload["changed"]:
            payload["paired"] = compare_held_out(
                payload["evaluation"]["baseline"], payload["evaluation"]["final"], pass_fail=pass_fail
            )
            improved = payload["paired"] is not None and payload["paired"]["verdict"] == "better"
    payload["improved"] = improved
    payload["stopped"] = None if stop is None else {"reason": stop.reason, "message": stop.message}
    status = "done"
    error = None
    if stop is not None and stop.reason == "cancelled":
        status = "cancelled"
    elif stop is not None and stop.reason == "provider_error":
        status, error = "failed", stop.message
    if program is None:
        reporter.log("no program to propose: the input version stays as it is")
    elif final is None:
        reporter.log(
            "the proposed version was not scored on the held-out rows (stopped): no paired test backs "
            "it, so saving it is an override"
        )
    elif improved:
        reporter.log(f"better on the held-out rows by a paired test: {describe(payload['paired'])}")
    elif payload.get("paired"):
        reporter.log(
            f"not shown better on the held-out rows (verdict {payload['paired']['verdict']}; "
            f"{describe(payload['paired'])}): the input version stays as it is"
        )
    else:
        reporter.log(
            f"no change to propose ({present.score(baseline)} -> {present.score(final)} on the held-out "
            "rows): the input version stays as it is"
        )
    reporter.progress["phase"] = status
    reporter.flush(status=status, final_score=final, program=payload, error=error, finished_at=utcnow())
    return status


def _json_safe(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
