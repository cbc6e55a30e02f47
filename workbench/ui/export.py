"""The Export page: download versions (or a sweep's winners), runs and ratings; import an export file."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench import metrics, present
from workbench.release import export
from workbench.release.imports import ImportSchemaError, import_file
from workbench.ui.common import db, errors_shown, show_error

MODES = ("Prompts and versions", "Winners of a sweep", "A label")
PREVIEW_COLUMNS = ["prompt", "version", "labels", "source", "parent", "winner_rule", "sweep_id", "n"]


def render() -> None:
    """Draw the Export page."""
    st.title("📦 Export & import")
    st.caption(
        "Ship winning prompt versions as files: JSON is lossless and importable (with the evidence "
        "that made a version win), CSV opens in a spreadsheet. No API keys or environment values "
        "are ever written."
    )
    with db() as s:
        options = export.choices(s)
    versions_tab, runs_tab, import_tab = st.tabs(["Versions", "Runs & ratings", "Import"])
    # One error boundary per tab, so a sweep without a winner does not hide the import.
    with versions_tab, errors_shown():
        _versions(options)
    with runs_tab, errors_shown():
        _runs(options)
    with import_tab:
        _import()


def _sweep_label(options: dict[str, Any]):
    names = dict(options["sweeps"])
    return lambda sid: f"#{sid} {names.get(sid, '')}".strip()


def _selection(options: dict[str, Any]) -> export.Selection | None:
    mode = st.radio("Export", MODES, key="export.mode", horizontal=True)
    if mode == MODES[0]:
        names = list(options["prompts"])
        chosen = st.multiselect(
            "Prompts (all their versions; leave empty for every prompt)", names, key="export.prompts"
        )
        refs = [f"{n}@{v}" for n in names for v in options["prompts"][n]]
        picked = st.multiselect("Or only these versions", refs, key="export.versions")
        return export.Selection(prompts=picked or chosen)
    if mode == MODES[1]:
        if not options["sweeps"]:
            st.info("There are no sweeps yet: run one on the Run page, then export its winner here.")
            return None
        sweep_id = st.selectbox(
            "Sweep",
            [sid for sid, _ in options["sweeps"]],
            format_func=_sweep_label(options),
            key="export.winners_sweep",
        )
        return export.Selection(winners=sweep_id)
    if not options["labels"]:
        st.info("No version carries a label yet: set one (production, staging, ...) on the Prompts page.")
        return None
    label = st.selectbox("Label", options["labels"], key="export.label")
    return export.Selection(label=label)


def _versions(options: dict[str, Any]) -> None:
    if not options["prompts"]:
        st.info(
            "There are no prompts yet. Create one on the Prompts page, or import a file in the Import tab."
        )
        return
    selection = _selection(options)
    if selection is None:
        return
    with db() as s:
        doc = export.versions_document(s, selection=selection)
    records = doc["versions"]
    rows = [export.version_row(r) for r in records]
    winners = [
        (r, (r["evidence"] or {}).get("winner")) for r in records if (r["evidence"] or {}).get("winner")
    ]
    if winners:
        _winners(winners)
    if not rows:
        st.info("Nothing matches this selection.")
        return
    scores = [m.mean_column for m in metrics.mean_columns(c for r in rows for c in r)]
    shown = [{k: r.get(k) for k in PREVIEW_COLUMNS + scores} for r in rows]
    st.dataframe(shown, hide_index=True, width="stretch", key="export.preview")
    st.caption(f"{len(rows)} version{'s' if len(rows) != 1 else ''} selected.")
    cols = st.columns(2)
    cols[0].download_button(
        "Download CSV",
        export.rows_to_csv(rows),
        file_name="versions.csv",
        mime="text/csv",
        key="export.download_csv",
        on_click="ignore",
    )
    cols[1].download_button(
        "Download JSON",
        export.to_json(doc),
        file_name="versions.json",
        mime="application/json",
        key="export.download_json",
        on_click="ignore",
        type="primary",
    )


def _interval(test: dict[str, Any]) -> str:
    return f"[{present.number(test.get('ci_low'), '+.3f')}, {present.number(test.get('ci_high'), '+.3f')}]"


def _winners(winners: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Say which versions won a sweep and why: the best, and the tied ones with their tests."""
    winners = sorted(winners, key=lambda pair: not pair[1].get("best", True))  # the best first
    rule = winners[0][1]
    names = [f"**{r['prompt']}@{r['version']}**" for r, _ in winners]
    if rule["rule"] == "leaderboard":
        st.success(
            f"Winner of sweep #{rule['sweep_id']}: {names[0]}, "
            "by the top of the leaderboard of rated outputs."
        )
        return
    how = f"the best mean '{rule['metric']}' score"
    if len(names) == 1:
        st.success(f"Winner of sweep #{rule['sweep_id']}: {names[0]}, by {how}.")
    else:
        st.success(
            f"Winners of sweep #{rule['sweep_id']}: {names[0]}, by {how}, tied with {', '.join(names[1:])}: "
            "the rows cannot tell them apart from the best (not significantly worse)."
        )
    level = f"{1 - float(rule.get('alpha') or 0.05):.0%}"
    evidence = []
    for record, won in winners:
        for c in won.get("columns") or []:
            t = c.get("comparison") or {}
            p = t.get("p_adjusted") if t.get("p_adjusted") is not None else t.get("p_value")
            evidence.append(
                {
                    "version": f"{record['prompt']}@{record['version']}",
                    "column": c["column"],
                    "mean": present.score(c.get("mean")),
                    "Δ vs best": present.number(t.get("diff"), "+.3f", dash="best") if t else "best",
                    f"{level} interval": _interval(t) if t else "",
                    "p (Holm)": present.number(p, ".3g") if t else "",
                    "rows": str(t.get("n", "")),
                    "only best / only this right": (
                        f"{t['a_only']} / {t['b_only']}" if t.get("a_only") is not None else ""
                    ),
                    "test": t.get("test", ""),
                }
            )
    if len(evidence) > 1:
        st.dataframe(evidence, hide_index=True, width="stretch", key="export.winner_evidence")
        st.caption(
            f"Each column against the best column ({rule['best_column']}) on the rows both have; "
            "a column is a winner unless it is significantly worse (Holm-adjusted p and interval)."
        )


def _deferred(kind: str, sweep_id: int, fmt: str):
    """Build a file only when its button is clicked (runs of a big sweep take a moment)."""

    def build() -> str:
        with db() as s:
            if kind == "runs":
                return export.export_runs(s, sweep_id=sweep_id, fmt=fmt)
            return export.export_ratings(s, sweep_id=sweep_id, fmt=fmt)

    return build


def _runs(options: dict[str, Any]) -> None:
    if not options["sweeps"]:
        st.info("There are no sweeps yet.")
        return
    sweep_id = st.selectbox(
        "Sweep", [sid for sid, _ in options["sweeps"]], format_func=_sweep_label(options), key="export.sweep"
    )
    st.caption("Runs: one row per cell (output, tokens, cost, latency, scores). Ratings: one row per vote.")
    cols = st.columns(4)
    for i, (kind, fmt) in enumerate(
        (("runs", "csv"), ("runs", "json"), ("ratings", "csv"), ("ratings", "json"))
    ):
        cols[i].download_button(
            f"{kind.capitalize()} {fmt.upper()}",
            _deferred(kind, sweep_id, fmt),
            file_name=f"sweep-{sweep_id}-{kind}.{fmt}",
            mime="text/csv" if fmt == "csv" else "application/json",
            key=f"export.{kind}_{fmt}",
            on_click="ignore",
        )


def _import() -> None:
    st.caption(
        "Import a JSON export: new content becomes new versions (source 'import'), identical content "
        "is recognised, and nothing existing is overwritten. A file with any problem is refused whole."
    )
    upload = st.file_uploader("Export file", type=["json"], key="export.import_file")
    done = st.session_state.get("export.import_report")
    if done:
        st.success("Imported. " + done[0])
        for line in done[1:]:
            st.write(f"- {line}")
    if upload is None:
        return
    data = upload.getvalue()
    try:
        with db() as s:
            preview = import_file(s, data, filename=upload.name, dry_run=True)
    except ImportSchemaError as exc:
        st.error(f"**{upload.name}** was not imported: {exc.detail}", icon="⚠️")
        st.markdown(f"Problem at `{exc.path}`")
        return
    except Exception as exc:  # noqa: BLE001 - the page's error boundary
        show_error(exc)
        return
    st.subheader("What the import will do")
    for line in preview.lines():
        st.write(f"- {line}")
    if st.button(
        "Import", key="export.import", type="primary", disabled=not preview.added and not preview.labels_set
    ):
        with errors_shown():
            with db() as s:
                result = import_file(s, data, filename=upload.name)
            st.session_state["export.import_report"] = result.lines()
            st.rerun()
