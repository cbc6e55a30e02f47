"""The process-wide background runner for the Streamlit server."""

from __future__ import annotations

import streamlit as st

from workbench.background import (
    BackgroundRunner,
    resume_orphaned_optimizations,
    resume_unfinished_sweeps,
    run_sweep_job,
)


@st.cache_resource(show_spinner=False)
def runner() -> BackgroundRunner:
    """One runner per server process; on first use it resumes what a previous server left running."""
    r = BackgroundRunner()
    resume_unfinished_sweeps(r)
    resume_orphaned_optimizations(r)
    return r


def start_sweep(sweep_id: int) -> bool:
    """Run a sweep in the background (no-op if it is already running here)."""
    return runner().submit(f"sweep-{sweep_id}", run_sweep_job, sweep_id)


def warm_workers(to_call: int, models: list[str]) -> None:
    """Start the worker processes a sweep of this size would use, while the user reads the
    preview, so a started sweep runs on every core from its first cell (workbench.sweeps.standby).

    Not while a sweep runs here: it took the standbys and uses the cores (the page reruns after
    Start, with the preview still drawn); the next preview after it starts them.
    """
    from workbench.db import get_engine
    from workbench.sweeps.processes import warm

    if runner().any_running("sweep-"):
        return
    warm(get_engine(), to_call, models)
