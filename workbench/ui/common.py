"""Page set-up shared by every screen: config, database readiness, error rendering."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from workbench import config
from workbench.errors import ProviderError, WorkbenchError


@st.cache_resource(show_spinner="Preparing the database ...")
def _migrated(url: str) -> str:
    """Run the migrations once per process and database URL (the app upgrades on start)."""
    from workbench.db import migrate, session_scope
    from workbench.prompts.examples import load_examples

    revision = migrate(url)
    with session_scope() as s:
        from workbench.status import counts

        if counts(s).prompts == 0 and counts(s).datasets == 0:
            load_examples(s)  # a first start shows something to run
    return revision


def setup_page(title: str, icon: str = "🧪") -> None:
    """Configure the page and make sure the database is migrated."""
    config.apply_offline_env()
    st.set_page_config(page_title=f"{title} · Prompt Workbench", page_icon=icon, layout="wide")
    _migrated(config.database_url())
    # The first page any session opens starts the background runner, which resumes sweeps and
    # closes optimizations that a previous server process left unfinished.
    from workbench.ui.background import runner

    runner()


def show_error(exc: BaseException) -> None:
    """Render a workbench error in one consistent way (the UI's single error boundary)."""
    if isinstance(exc, ProviderError):
        st.error(f"**Provider error ({exc.kind})**: {exc}", icon="🛑")
    elif isinstance(exc, WorkbenchError):
        st.error(str(exc), icon="⚠️")
    else:  # a bug: show it plainly rather than a blank page
        st.exception(exc)


@contextmanager
def errors_shown() -> Iterator[None]:
    """`with errors_shown(): ...` renders WorkbenchErrors instead of raising them."""
    try:
        yield
    except WorkbenchError as exc:
        show_error(exc)


@contextmanager
def db() -> Iterator:
    """A Session for one unit of work in a page."""
    from workbench.db import session_scope

    with session_scope() as s:
        yield s
