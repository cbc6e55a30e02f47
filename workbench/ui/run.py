"""The Run page: build a sweep, see its size and cost before starting, watch it run.

The sweep runs in the server's background runner, never in the script thread, so leaving the
page or closing the tab does not stop it. The progress panel is a fragment that polls the
database every second while the sweep is active.
"""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from workbench import config, datasets, metrics, present
from workbench.errors import ValidationError, WorkbenchError
from workbench.prompts import store, templates
from workbench.providers import catalog
from workbench.stats import sizing
from workbench.sweeps.lifecycle import prepare_resume, request_cancel
from workbench.sweeps.plan import SweepSpec, create_sweep, parse_param_values, preview, require_sweep
from workbench.sweeps.scoring import SCORERS
from workbench.sweeps.summary import data_version, latest_runs, list_sweeps, progress
from workbench.ui.background import start_sweep, warm_workers
from workbench.ui.common import db, errors_shown, show_error

AD_HOC = "(type variables)"


def _version_options() -> dict[str, str]:
    """'name@N' -> display text with labels."""
    out: dict[str, str] = {}
    with db() as s:
        for p in store.list_prompts(s):
            labels = store.labels_by_version(s, p.id)
            for v in reversed(store.versions_of(s, p.id)):
                tag = f"  [{', '.join(labels[v.id])}]" if v.id in labels else ""
                out[f"{p.name}@{v.number}"] = f"{p.name}@{v.number}{tag}"
    return out


def render() -> None:
    """Draw the Run page."""
    st.title("🚀 Run")
    state = st.session_state
    state.setdefault("run.sweep_id", None)
    tab_new, tab_past = st.tabs(["New sweep", "Sweeps"])
    with tab_new, errors_shown():
        _render_builder()
    with tab_past, errors_shown():
        _render_past()
    if state["run.sweep_id"] is not None:
        st.divider()
        _render_progress(state["run.sweep_id"])


def _render_builder() -> None:
    state = st.session_state
    options = _version_options()
    if not options:
        st.info("Create a prompt on the Prompts page first.")
        return
    versions = st.multiselect(
        "Prompt versions",
        list(options),
        default=list(options)[:1],
        format_func=options.get,
        key="run.versions",
    )
    with db() as s:
        all_sets = datasets.list_datasets(s)
        counts = datasets.row_counts(s)
        fits = {f.name: f for f in datasets.fit_for_variables(s, _needed_variables(s, versions))}
    labelled = {d.name for d in all_sets if counts.get(d.id, (0, 0))[1] > 0}
    choices = [*fits, AD_HOC]  # datasets that cover the versions' variables first
    if not state.get("run.dataset_picked") or state.get("run.dataset") not in choices:
        # Until the user picks one, the rows follow the versions: the first dataset that covers them.
        first = next(iter(fits.values()), None)
        state["run.dataset"] = first.name if first and first.covers else AD_HOC
    c1, c2 = st.columns([3, 1])
    source = c1.selectbox(
        "Rows",
        choices,
        key="run.dataset",
        format_func=lambda name: _dataset_label(fits.get(name), name),
        on_change=lambda: state.update({"run.dataset_picked": True}),
    )
    limit = c2.number_input("Use first N rows (0 = all)", 0, 1_000_000, 0, key="run.limit")
    variables = None
    if source == AD_HOC:
        variables = _ad_hoc_variables(versions)

    models = catalog.list_models()
    ready = [m.id for m in models if m.available]
    chosen = st.multiselect("Models", ready, default=ready[:1], key="run.models")
    blocked = [f"{m.id} ({m.unavailable_reason})" for m in models if not m.available]
    if blocked:
        st.caption(
            "Not callable now: " + "; ".join(blocked) + ". Set the key in the environment and restart."
        )

    c1, c2, c3, c4 = st.columns(4)
    temps = c1.text_input("Temperatures", "0, 0.7", key="run.temperatures", help="Comma-separated values.")
    max_tokens = c2.number_input("max_tokens (0 = version default)", 0, 32_000, 0, key="run.max_tokens")
    repeats = c3.number_input("Repeats", 1, 100, 1, key="run.repeats")
    concurrency = c4.number_input("Concurrency", 1, 512, 8, key="run.concurrency")
    with st.expander("More parameters, scorers, budget"):
        extra = st.text_area(
            "Other parameter grids, one per line: name=v1,v2",
            key="run.params",
            placeholder="top_p=0.9,1\nseed=1,2",
        )
        c1, c2 = st.columns(2)
        # The default follows the dataset: exact/contains need expected answers.
        scorers = c1.multiselect(
            "Scorers",
            list(SCORERS),
            format_func=lambda name: f"{name}: {metrics.get(name).label}",
            default=["exact", "contains"] if source in labelled else ["length"],
            key=f"run.scorers.{source}",
        )
        regex = c2.text_input("Regex (for the regex scorer)", key="run.regex")
        judge = c1.selectbox("Judge model (for the judge scorer)", ["", *ready], key="run.judge")
        rubric = c2.text_area("Judge rubric (Jinja: input, output, expected)", key="run.rubric")
        budget = c1.number_input("Budget in USD (0 = none)", 0.0, 1e6, 0.0, step=0.5, key="run.budget")
        use_cache = c2.checkbox("Reuse identical finished cells (cache)", True, key="run.cache")
        stream = c2.checkbox("Stream (measures time to first token)", True, key="run.stream")
        name = c1.text_input("Sweep name (optional)", key="run.name")

    try:
        params: dict[str, list[Any]] = {}
        if temps.strip():
            params["temperature"] = parse_param_values(temps)
        if max_tokens:
            params["max_tokens"] = [int(max_tokens)]
        for line in (extra or "").splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise ValidationError(f"'{line}' must look like name=v1,v2.")
            key, values = line.split("=", 1)
            params[key.strip()] = parse_param_values(values)
        spec = SweepSpec(
            prompts=versions,
            models=chosen,
            dataset=None if source == AD_HOC else source,
            variables=variables,
            params=params,
            repeats=int(repeats),
            concurrency=int(concurrency),
            budget_usd=float(budget) or None,
            use_cache=use_cache,
            stream=stream,
            max_rows=int(limit) or None,
            name=name,
            scoring={
                "metrics": scorers,
                "regex": regex or None,
                "judge_model": judge or None,
                "judge_rubric": rubric or None,
            },
        )
        with db() as s:
            plan = preview(s, spec)
    except WorkbenchError as exc:
        show_error(exc)
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(
        "Cells",
        f"{plan.cells:,}",
        help=f"{len(plan.versions)} versions x {len(plan.models)} models x "
        f"{len(plan.param_combos)} parameter sets x {plan.rows} rows x {spec.repeats} repeats",
    )
    c2.metric("To call", f"{plan.to_call:,}")
    c3.metric("From cache", f"{plan.cached:,}")
    c4.metric(
        "Estimated cost (max)",
        present.money(plan.estimated_cost_usd),
        help="Prompt tokens counted, completion tokens at max_tokens; cache hits are free.",
    )
    if plan.unpriced_models:
        st.caption(f"No price known for {', '.join(plan.unpriced_models)}: its cost shows as unknown.")
    warm_workers(plan.to_call, plan.models)
    subject = (
        "Typed variables make" if source == AD_HOC else "This sweep uses" if limit else "Your dataset has"
    )
    _rows_before(versions, plan.rows, subject)
    if st.button("Start sweep", type="primary", key="run.start"):
        try:
            with db() as s:
                sweep, _ = create_sweep(s, spec)
                sweep_id = sweep.id
        except WorkbenchError as exc:
            show_error(exc)
            return
        state["run.sweep_id"] = sweep_id
        start_sweep(sweep_id)
        st.rerun()


@st.cache_data(max_entries=32, show_spinner="Estimating the rows needed ...")
def _estimate(url: str, sweep_ids: tuple[int, ...], seen: tuple, versions: tuple[str, ...]):
    """sizing.estimate_from_sweeps, once per database, sweeps (and their data) and chosen versions."""
    with db() as s:
        return sizing.estimate_from_sweeps(s, list(sweep_ids), versions=list(versions))


def _estimate_for(sweep_ids: list[int], versions: list[str]) -> sizing.RowsEstimate | None:
    with db() as s:
        seen = tuple(data_version(s, i) for i in sweep_ids)  # a re-scored sweep is estimated again
    return _estimate(config.database_url(), tuple(sweep_ids), seen, tuple(versions))


def _show_estimate(found: sizing.RowsEstimate, rows: int, subject: str, *, this_sweep: bool = False) -> None:
    text = found.sentence(rows, subject=subject, this_sweep=this_sweep)
    if found.rows_needed is None:
        st.caption(text)
        return
    st.info(text, icon="📏")
    st.caption(found.detail())


def _rows_before(versions: list[str], rows: int, subject: str) -> None:
    """Before a sweep: the rows a 5-point difference needs, from the last finished sweep of the prompt."""
    with db() as s:
        sweep_ids = sizing.finished_sweeps(s, versions)
    if not sweep_ids:
        names = sorted({v.rsplit("@", 1)[0] for v in versions})
        st.caption(
            f"No finished sweep of {', '.join(names)} yet: after one, this shows how many rows it takes "
            "to tell two versions apart."
        )
        return
    found = _estimate_for(sweep_ids, versions)
    if found is not None:
        _show_estimate(found, rows, subject)


def _rows_after(sweep_id: int) -> None:
    """After a sweep: the same figure, measured on the sweep itself."""
    with db() as s:
        rows = int((require_sweep(s, sweep_id).config.get("plan") or {}).get("rows") or 0)
    found = _estimate_for([sweep_id], [])
    if found is not None and rows:
        _show_estimate(found, rows, "This sweep used", this_sweep=True)


def _needed_variables(session: Any, versions: list[str]) -> list[str]:
    """The variables the chosen versions cannot render without."""
    names: list[str] = []
    for ref in versions:
        try:
            v = store.resolve(session, ref)
        except WorkbenchError:
            continue
        names += [n for n in templates.required_message_variables(v.messages) if n not in names]
    return names


def _dataset_label(fit: datasets.DatasetFit | None, name: str) -> str:
    if fit is None or fit.covers:
        return name
    return f"{name} (no column for {', '.join(fit.missing)})"


def _ad_hoc_variables(versions: list[str]) -> dict[str, Any]:
    names: list[str] = []
    with db() as s:
        for ref in versions:
            try:
                v = store.resolve(s, ref)
            except WorkbenchError:
                continue
            names += [n for n in templates.message_variables(v.messages) if n not in names]
    if not names:
        st.caption("These versions use no variables.")
        return {}
    return {n: st.text_input(n, key=f"run.var.{n}") for n in names}


def _cost(priced_usd: float, unpriced: int) -> str:
    """What the priced cells cost, and how many cells have no price (so a total is never a silent $0)."""
    return present.money(priced_usd) + (f" + {unpriced} unpriced" if unpriced else "")


def _render_progress(sweep_id: int) -> None:
    with db() as s:
        p = progress(s, sweep_id)
    active = p.status in ("pending", "running") and p.remaining > 0
    st.session_state["run.panel_active"] = active
    st.fragment(run_every=1.0 if active else None)(_progress_panel)(sweep_id)


def _progress_panel(sweep_id: int) -> None:
    try:
        with db() as s:
            p = progress(s, sweep_id)
            sweep_name = require_sweep(s, sweep_id).name
    except WorkbenchError as exc:
        show_error(exc)
        return
    st.subheader(f"Sweep {sweep_id}: {sweep_name}")
    st.progress(
        p.finished / p.total if p.total else 1.0,
        text=f"{p.status} · {p.finished:,} of {p.total:,} cells finished",
    )
    c = st.columns(6)
    c[0].metric("Done", f"{p.done:,}")
    c[1].metric("Failed", f"{p.failed:,}")
    c[2].metric("Cached", f"{p.cached:,}")
    c[3].metric("Remaining", f"{p.remaining:,}")
    c[4].metric(
        "Cost so far",
        _cost(p.cost_usd + p.scoring_cost_usd, p.unpriced),
        help=f"Calls {present.money(p.cost_usd)} + judge {present.money(p.scoring_cost_usd)}"
        if p.scoring_cost_usd
        else None,
    )
    c[5].metric("ETA", present.seconds(p.eta_s) if p.remaining else "done")
    if p.error:
        st.warning(p.error)
    b1, b2, _ = st.columns([1, 1, 4])
    if p.remaining and not p.cancel_requested and b1.button("Cancel", key="run.cancel"):
        request_cancel(sweep_id)
        st.rerun()
    if (
        p.status in ("cancelled", "done", "failed")
        and (p.failed or p.cancelled or p.remaining)
        and b2.button("Resume (retry failed and cancelled)", key="run.resume")
    ):
        prepare_resume(sweep_id, retry_failed=True)
        start_sweep(sweep_id)
        st.rerun(scope="app")
    if p.status == "pending" and p.remaining and not p.cancel_requested:
        # Planned but no executor here (e.g. created from the CLI): run it in the background.
        start_sweep(sweep_id)
    if p.status == "done" and not p.remaining:
        _rows_after(sweep_id)
    with db() as s:
        latest = latest_runs(s, sweep_id)
    if latest:
        st.caption("Latest results")
        st.dataframe(latest, hide_index=True, width="stretch", key=f"run.latest.{sweep_id}")
    if st.session_state.get("run.panel_active") and not (p.status in ("pending", "running") and p.remaining):
        st.session_state["run.panel_active"] = False
        st.rerun(scope="app")  # finished: redraw the page once so the panel stops polling


def _render_past() -> None:
    state = st.session_state
    with db() as s:
        items = list_sweeps(s, 100)
    if not items:
        st.caption("No sweeps yet.")
        return
    rows = [
        {
            "id": sw.id,
            "name": sw.name,
            "status": sw.status,
            "cells": p.total,
            "done": p.done,
            "failed": p.failed,
            "cached": p.cached,
            "cost": _cost(p.cost_usd, p.unpriced),
            "created": sw.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for sw, p in items
    ]
    st.dataframe(rows, hide_index=True, width="stretch", key="run.sweeps_table")
    ids = [r["id"] for r in rows]
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    picked = c1.selectbox(
        "Open sweep",
        ids,
        key="run.open_id",
        format_func=lambda i: f"{i}: {next(r['name'] for r in rows if r['id'] == i)}",
    )
    if c2.button("Open", key="run.open"):
        state["run.sweep_id"] = picked
        st.rerun()
    with st.expander("Configuration of the selected sweep"), db() as s:
        st.code(json.dumps(require_sweep(s, picked).config.get("spec", {}), indent=2), language="json")
