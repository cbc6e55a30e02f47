"""The home page: what is in the database, which models work now, and a quick start."""

from __future__ import annotations

import streamlit as st

from workbench import config
from workbench.errors import WorkbenchError
from workbench.providers.catalog import list_models
from workbench.status import counts
from workbench.ui.common import db, show_error

QUICK_START = """
1. **Prompts** — open `sentiment` (a bundled example). Change the system message, check the
   preview with a review typed in (or taken from a dataset row), and **Save as new version**.
2. **Datasets** — `sentiment` has 36 labelled reviews (`review` → `expected`); import your own
   CSV, JSON or JSONL there.
3. **Run** — pick `sentiment@1` and `sentiment@2`, the dataset `sentiment` (first 10 rows is
   plenty), the local model, temperatures `0, 0.7`, and start: it runs in the background.
4. **Compare** — outputs side by side, exact-match scores, tokens and latency per column.
5. **Rate** the outputs blind, **Optimize** a version with DSPy, **Export** the winner — or do
   all of it from the command line: `python -m workbench --help`.
"""


def render_home() -> None:
    """Draw the home page."""
    st.title("🧪 Prompt Workbench")
    st.caption("Versioned Jinja prompts, datasets and model runs — local-first, no account needed.")
    try:
        with db() as s:
            c = counts(s)
    except WorkbenchError as exc:
        show_error(exc)
        return
    cols = st.columns(5)
    cols[0].metric("Prompts", c.prompts, help=f"{c.versions} versions in all")
    cols[1].metric("Datasets", c.datasets, help=f"{c.examples} rows in all")
    cols[2].metric("Sweeps", c.sweeps, help=f"{c.runs} runs in all")
    cols[3].metric("Ratings", c.ratings)
    cols[4].metric("Optimizations", c.optimizations)

    st.subheader("Models")
    try:
        models = list_models()
    except WorkbenchError as exc:
        show_error(exc)
        models = []
    rows = [
        {
            "model": m.id,
            "kind": m.kind,
            "type": "chat" if m.chat else "base completion",
            "status": "ready" if m.available else m.unavailable_reason,
            "concurrency": m.max_concurrency,
        }
        for m in models
    ]
    st.dataframe(rows, hide_index=True, width="stretch", key="home.models")
    missing = sorted({m.api_key_env for m in models if not m.available and m.api_key_env})
    if missing:
        st.caption(
            "Cloud models become callable when their key is set in the environment before "
            f"starting the app: {', '.join(missing)}. Edit the list in `{config.models_file()}`."
        )

    st.subheader("Quick start")
    st.markdown(QUICK_START)
    st.caption(f"Database: `{config.database_url().split('@')[-1]}`")
