"""The Optimize page: plan a DSPy optimization, run it in the background, compare, save.

Before starting, the page shows the split, the estimated calls and cost, and the hard call cap.
The run happens in the background runner; a fragment polls the Optimization row for progress,
the log tail (DSPy's own output included) and Cancel. A finished run shows baseline vs optimized
validation scores, the paired test of the two on the held-out rows, the rows side by side, and the
proposed version as a diff. Save creates version N+1 (source dspy) and re-scores it, paired with the
input version, with a normal sweep in the background. Save is offered only when the paired test says
"better"; otherwise a clearly labelled override saves it, and the version's lineage records that.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench import datasets, present
from workbench.optimize.metrics import METRICS
from workbench.optimize.optimizers import OPTIMIZERS
from workbench.prompts import store
from workbench.providers import catalog
from workbench.ui.background import runner
from workbench.ui.common import db, errors_shown

LOCAL_HINT = "local/"


def render() -> None:
    """Draw the Optimize page."""
    st.session_state.setdefault("optimize.current", None)
    st.title("🧬 Optimize")
    st.caption(
        "DSPy tunes a version's instructions and few-shot demos against labelled rows. The result is a "
        "plain version: your template stays as it is, and the saved version renders exactly what was scored."
    )
    new_tab, runs_tab = st.tabs(["New optimization", "Runs"])
    with new_tab, errors_shown():
        _new()
    with runs_tab, errors_shown():
        _runs()


# -- new optimization ---------------------------------------------------------------------------


def _choices() -> dict[str, Any]:
    with db() as s:
        refs = []
        for p in store.list_prompts(s):
            refs += [f"{p.name}@{v.number}" for v in reversed(store.versions_of(s, p.id))]
        counts = datasets.row_counts(s)
        labelled = [d.name for d in datasets.list_datasets(s) if counts.get(d.id, (0, 0))[1] >= 2]
    models = [m.id for m in catalog.list_models() if m.available]
    return {"refs": refs, "datasets": labelled, "models": models}


def _spec_from_widgets(choices: dict[str, Any]):
    from workbench.optimize.run import OptimizeSpec

    c1, c2, c3 = st.columns(3)
    prompt = c1.selectbox("Prompt version", choices["refs"], key="optimize.prompt")
    dataset = c2.selectbox("Labelled dataset", choices["datasets"], key="optimize.dataset")
    model = c3.selectbox("Task model", choices["models"], key="optimize.model")
    c1, c2 = st.columns(2)
    metric_name = c1.selectbox("Metric", list(METRICS), format_func=METRICS.get, key="optimize.metric")
    optimizer = c2.selectbox(
        "Optimizer",
        list(OPTIMIZERS),
        format_func=lambda k: OPTIMIZERS[k].label,
        key="optimize.optimizer",
        index=1,
    )
    metric: dict[str, Any] = {"name": metric_name}
    if metric_name == "regex":
        metric["regex"] = st.text_input("Regular expression the reply must match", key="optimize.regex")
    elif metric_name == "numeric":
        metric["tolerance"] = st.number_input("Tolerance", min_value=0.0, value=0.0, key="optimize.tolerance")
    elif metric_name == "judge":
        metric["judge_model"] = st.selectbox("Judge model", choices["models"], key="optimize.judge_model")
        metric["judge_rubric"] = (
            st.text_area("Rubric (optional Jinja: input, output, expected)", key="optimize.judge_rubric")
            or None
        )
        metric["threshold"] = st.slider(
            "Score a demo must reach", 0.25, 1.0, 0.75, 0.25, key="optimize.threshold"
        )
    info = OPTIMIZERS[optimizer]
    st.caption(f"**Changes:** {info.changes}. {info.description}")
    prompt_model = None
    if info.uses_prompt_model:
        prompt_model = st.selectbox(
            "Prompt / reflection model", choices["models"], key="optimize.prompt_model"
        )
        if prompt_model and prompt_model.startswith(LOCAL_HINT):
            st.warning(
                "A stronger prompt model is recommended: a small local model rarely writes useful "
                "instructions.",
                icon="💡",
            )
    settings = {}
    cols = st.columns(max(1, len(info.defaults)))
    for col, (key, default) in zip(cols, info.defaults.items(), strict=False):
        if isinstance(default, int):
            settings[key] = int(
                col.number_input(
                    key.replace("_", " "), min_value=0, value=default, key=f"optimize.set.{optimizer}.{key}"
                )
            )
    c1, c2, c3, c4 = st.columns(4)
    train_fraction = c1.slider("Train share", 0.1, 0.9, 0.5, 0.05, key="optimize.train_fraction")
    seed = int(c2.number_input("Split seed", value=0, step=1, key="optimize.seed"))
    max_rows = int(
        c3.number_input("Use first N rows (0 = all)", min_value=0, value=0, key="optimize.max_rows")
    )
    max_calls = int(
        c4.number_input("Call cap (0 = twice the estimate)", min_value=0, value=0, key="optimize.max_calls")
    )
    return OptimizeSpec(
        prompt=prompt,
        dataset=dataset,
        model=model,
        metric=metric,
        optimizer=optimizer,
        settings=settings,
        train_fraction=train_fraction,
        seed=seed,
        max_rows=max_rows or None,
        max_calls=max_calls or None,
        prompt_model=prompt_model,
    )


def _new() -> None:
    from workbench.optimize.run import create_optimization, plan_optimization

    choices = _choices()
    if not choices["refs"] or not choices["datasets"]:
        st.info(
            "Optimization needs a prompt and a dataset with at least two labelled rows (an expected "
            "column). Add them on the Prompts and Datasets pages."
        )
        return
    spec = _spec_from_widgets(choices)
    with db() as s:
        plan = plan_optimization(s, spec)
    c = plan.calls
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Train / validation rows", f"{len(plan.train_ids)} / {len(plan.val_ids)}")
    m2.metric("Estimated calls", plan.estimated_calls)
    m3.metric("Hard call cap", plan.call_cap)
    m4.metric("Estimated cost", present.money(plan.estimated_cost_usd))
    st.caption(
        f"Estimated calls: baseline {c['baseline']}, optimizer {c['optimizer_task']}"
        + (f" + {c['optimizer_prompt']} prompt-model" if c["optimizer_prompt"] else "")
        + (f", judge {c['judge']}" if c["judge"] else "")
        + f", final {c['final']}. The run never makes more than {plan.call_cap} calls."
    )
    for warning in plan.warnings:
        st.warning(warning, icon="💡")
    if st.button("Start optimization", type="primary", key="optimize.start"):
        with db() as s:
            row, _ = create_optimization(s, spec)
        _start(row.id)
        st.session_state["optimize.current"] = row.id
        st.success(f"Optimization #{row.id} started: follow it on the Runs tab.")


def _start(optimization_id: int) -> None:
    from workbench.optimize.worker import run_optimization

    runner().submit(f"optimize-{optimization_id}", run_optimization, optimization_id)


# -- runs ---------------------------------------------------------------------------------------


def _runs() -> None:
    from workbench.optimize.results import list_optimizations

    with db() as s:
        rows = [(o.id, f"#{o.id} {o.status} · {o.optimizer} · {o.task_model}") for o in list_optimizations(s)]
    if not rows:
        st.info("No optimizations yet: start one on the New optimization tab.")
        return
    ids = [r[0] for r in rows]
    labels = dict(rows)
    current = st.session_state.get("optimize.current")
    index = ids.index(current) if current in ids else 0
    jump = st.session_state.pop("optimize.jump_to", None)
    if jump in ids:  # a run started from another run's results: show it
        st.session_state["optimize.pick"] = jump
        index = 0  # the value comes from the session state
    picked = st.selectbox("Optimization", ids, index=index, format_func=labels.get, key="optimize.pick")
    st.session_state["optimize.current"] = picked
    if _busy(picked):
        _live(picked)
    else:
        from workbench.optimize.results import require_optimization

        with db() as s:
            row = require_optimization(s, picked)
        _finished(row)


def _busy(optimization_id: int) -> bool:
    """True while the run, or the re-scoring of its saved version, is still going."""
    from workbench.optimize.results import FINISHED, require_optimization

    with db() as s:
        row = require_optimization(s, optimization_id)
    return row.status not in FINISHED or runner().running(f"optimize-rescore-{optimization_id}")


@st.fragment(run_every=1.0)
def _live(optimization_id: int) -> None:
    from workbench.optimize.results import FINISHED, require_optimization

    with db() as s:
        row = require_optimization(s, optimization_id)
    if row.status in FINISHED:
        if not _busy(optimization_id):
            st.rerun()  # draw the results with the whole page
        st.caption("Re-scoring the saved version with a sweep on the validation rows ...")
        return
    _running(row)


def _running(row) -> None:
    from workbench.optimize.results import request_cancel

    progress = row.config.get("progress", {})
    cap = row.call_cap or 1
    st.progress(
        min(1.0, row.lm_calls / cap),
        text=f"{row.status} · phase {progress.get('phase', '?')} · {row.lm_calls} of at most {cap} calls",
    )
    m1, m2, m3 = st.columns(3)
    m1.metric("Baseline (validation)", present.score(row.baseline_score))
    m2.metric("Best so far (optimizer's own evaluation)", present.score(progress.get("best_score")))
    m3.metric("Cost so far", present.money(row.cost_usd))
    _restarts(row)
    st.code("\n".join((row.log or "").splitlines()[-15:]) or "starting ...", language=None)
    if row.cancel_requested:
        st.info("Cancel requested: stopping before the next call.")
    elif st.button("Cancel", key="optimize.cancel"):
        with db() as s:
            request_cancel(s, optimization_id=row.id)
        st.info("Cancel requested: stopping before the next call; what was learned so far is kept.")


def _finished(row) -> None:
    from workbench.optimize.results import diff_text, proposal_of, row_comparison

    prop = proposal_of(row)
    if row.status == "failed":
        st.error(f"The run failed: {row.error}", icon="🛑")
    elif row.status == "cancelled":
        st.warning("Cancelled. What the optimizer had learned so far is shown below.", icon="⏹️")
    _restarts(row)
    if row.status in ("failed", "cancelled") and st.button(
        "Start again with the same settings", key="optimize.again"
    ):
        from workbench.optimize.recovery import start_again

        with db() as s:
            new_id = start_again(s, row.id).id
        _start(new_id)
        st.session_state["optimize.current"] = st.session_state["optimize.jump_to"] = new_id
        st.rerun()
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Baseline (validation)", present.score(row.baseline_score))
    delta = (
        None
        if row.final_score is None or row.baseline_score is None
        else present.number(row.final_score - row.baseline_score, "+.3f")
    )
    m2.metric("Optimized (validation)", present.score(row.final_score), delta=delta)
    m3.metric("Calls used", f"{row.lm_calls} / {row.call_cap}")
    m4.metric("Cost", present.money(row.cost_usd))
    _paired(prop.paired)
    (st.success if prop.can_save else st.info)(prop.reason)
    table = row_comparison(row)
    if table:
        st.dataframe(
            [
                {
                    "inputs": ", ".join(f"{k}={v}" for k, v in r["inputs"].items()),
                    "expected": r["expected"],
                    "baseline": r["baseline_output"],
                    "baseline score": r["baseline_score"],
                    "optimized": r["optimized_output"],
                    "optimized score": r["optimized_score"],
                }
                for r in table
            ],
            width="stretch",
            hide_index=True,
            key="optimize.rows",
        )
    with db() as s:
        diff = diff_text(s, row)
    if diff:
        st.subheader("Proposed version")
        st.code(diff, language="diff")
    _save_section(row, prop)
    with st.expander("Log"):
        st.code(row.log or "", language=None)


def _paired(paired: dict[str, Any] | None) -> None:
    """The held-out paired test of the proposal against its input: verdict, difference, interval, p."""
    if not paired:
        return
    from workbench.optimize.decision import describe

    st.markdown("**Held-out rows: optimized against input, paired by row**")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Verdict", paired["verdict"])
    c2.metric("Difference (optimized − input)", present.number(paired["diff"], "+.3f"))
    c3.metric(
        f"{1 - paired['alpha']:.0%} interval",
        f"{present.number(paired['ci_low'], '+.2f')} to {present.number(paired['ci_high'], '+.2f')}",
    )
    c4.metric("p-value", present.number(paired["p_value"], ".3g"))
    st.caption(describe(paired) + ".")


def _restarts(row) -> None:
    """Say what each restart after a dead process carried over, so the calls and cost add up."""
    from workbench.optimize.recovery import restarts_of

    for lost in restarts_of(row):
        st.info(
            f"Resumed after the process running it stopped: {lost.describe()} count against the cap of "
            f"{row.call_cap}. DSPy cannot continue mid-way, so the optimizer started again.",
            icon="🔁",
        )


def _save_section(row, prop) -> None:
    from workbench.optimize.rescore import summary_line
    from workbench.optimize.results import saved_record

    rescored = row.config.get("rescore")
    job = f"optimize-rescore-{row.id}"
    if row.output_version_id is not None:
        with db() as s:
            from workbench.models import PromptVersion

            ref = store.resolve_name(s, s.get(PromptVersion, row.output_version_id))
        record = saved_record(row) or {}
        how = (
            " It was saved by override: the held-out paired test did not say better, and its lineage "
            "records that with the evidence."
            if record.get("override")
            else ""
        )
        st.success(f"Saved as {ref} (source dspy, parent = the input version).{how}")
        if rescored:
            st.info(summary_line(rescored))
        elif runner().error(job) is not None:
            st.error(f"Re-scoring failed: {runner().error(job)}")
        return
    override = False
    if prop.can_override:
        override = st.checkbox(
            "Override: save it although the paired test on the held-out rows does not say it is better "
            "(the version's lineage records the override and the evidence)",
            key="optimize.override",
        )
    allowed = prop.can_save or override
    if st.button("Save as new version", type="primary", disabled=not allowed, key="optimize.save"):
        from workbench.optimize.rescore import rescore
        from workbench.optimize.results import save_result

        with db() as s:
            version, _ = save_result(s, optimization_id=row.id, override=override and not prop.can_save)
        runner().submit(job, rescore, row.id)
        st.success(f"Saved as version {version.number}; re-scoring it with a sweep ...")
