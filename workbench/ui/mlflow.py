"""MLflow actions on the Compare and Prompts pages: "Send to MLflow", shown only when a tracking
server is configured (`MLFLOW_TRACKING_URI`), with a link to what was written.

`send_sweep_button` logs a sweep (a parent run, a child run per column; again updates them);
`push_version_button` registers a version in the Prompt Registry (labels as aliases). The work is
`workbench.mlflow_sync`; errors go through `common.show_error`. The outcome of the last click is
kept in session state, so its link survives the page's reruns.
"""

from __future__ import annotations

import streamlit as st

from workbench.errors import WorkbenchError
from workbench.mlflow_sync import client as mlc
from workbench.ui.common import db, show_error


def _show(key: str) -> None:
    done = st.session_state.get(key)
    if not done:
        return
    text, url = done
    st.success(text, icon="✅")
    if url:
        st.link_button("Open in MLflow", url, key=f"{key}.link")


def send_sweep_button(sweep_id: int) -> None:
    """A button that logs this sweep to MLflow (nothing when no tracking server is configured)."""
    if not mlc.configured():
        return
    key = f"mlflow.sweep.{sweep_id}"
    if st.button(
        "Send to MLflow",
        key=f"{key}.send",
        help="Log this sweep to the MLflow server: one parent run, one child run per column with its "
        "params, scores, tokens, cost and latency. Sending again updates those runs.",
    ):
        from workbench.mlflow_sync.sweeps import log_sweep

        try:
            with st.spinner("Logging to MLflow ..."), db() as s:
                result = log_sweep(s, sweep_id)
        except WorkbenchError as exc:
            st.session_state.pop(key, None)
            show_error(exc)
            return
        verb = "Logged" if result.parent.created else "Updated"
        text = (
            f"{verb} sweep {sweep_id} in MLflow experiment '{result.experiment}': "
            f"{len(result.columns)} column runs under one parent run."
        )
        st.session_state[key] = (text, result.parent.url)
        for warning in result.warnings:
            st.warning(warning)
    _show(key)


def push_version_button(version_id: int) -> None:
    """A button that registers this version in MLflow's Prompt Registry (nothing when not configured)."""
    if not mlc.configured():
        return
    key = f"mlflow.push.{version_id}"
    if st.button(
        "Send to MLflow",
        key=f"{key}.send",
        help="Register this version in the MLflow Prompt Registry as a chat prompt; its labels "
        "become aliases. A version MLflow already has is not registered twice.",
    ):
        from workbench.mlflow_sync.prompts import push
        from workbench.models import PromptVersion
        from workbench.prompts import store

        try:
            with st.spinner("Registering in MLflow ..."), db() as s:
                ref = store.resolve_name(s, s.get(PromptVersion, version_id))
                (result,) = push(s, ref)
        except WorkbenchError as exc:
            st.session_state.pop(key, None)
            show_error(exc)
            return
        verb = "Registered" if result.created else "Already registered:"
        text = f"{verb} {ref} as MLflow prompt {result.mlflow_name} version {result.mlflow_version}."
        if result.aliases:
            text += f" Aliases: {', '.join(result.aliases)}."
        if result.skipped_labels:
            text += " Not aliases: " + "; ".join(result.skipped_labels) + "."
        st.session_state[key] = (text, result.url)
    _show(key)
