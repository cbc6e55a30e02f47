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


# What to do on a page about an error that names the setting it is about (`WorkbenchError.field`).
# In the words of the widgets, never a command-line flag; a field without advice shows the message alone.
FIELD_ADVICE = {
    "variables": "Fill it in under Variables, or pick a dataset that has this column.",
    "regex": "Enter a pattern in the Regex field.",
    "judge_model": "Pick a model in the Judge model field.",
    "judge_rubric": "Fix the text in the Judge rubric field.",
    "sweep": "Pick a sweep from the list.",
    "prompts": "Pick at least one prompt version.",
    "models": "Pick at least one model.",
    "dataset": "Pick a dataset from the list, or import one on the Datasets page.",
    "template": "Fix the template on the Prompts page and save it as a new version.",
    "score": "Choose the scorers under 'More parameters, scorers, budget' on the Run page.",
    "budget_usd": "Change the Budget in USD field (0 means no budget).",
    "max_calls": "Raise the Call cap, or set it to 0 for twice the estimate.",
    "train_fraction": "Move the Train share slider.",
    "response_format": "Fix the JSON Schema box under 'Structured output and tools' and save a new version.",
    "tools": "Fix the Tools box under 'Structured output and tools' and save a new version.",
    "tool_choice": "Pick another Tool choice under 'Structured output and tools', or add that tool.",
    "override": "Tick the Override box under the proposal to save it anyway.",
    "tracking_uri": "Check that the MLflow server named by MLFLOW_TRACKING_URI is running, then send again.",
}


def advice_for(exc: BaseException) -> str | None:
    """What the user can do on a page about this error, from the setting it names (or None)."""
    return FIELD_ADVICE.get(getattr(exc, "field", None) or "")


def error_text(exc: BaseException) -> str:
    """The error's message followed by the page's advice for its field, when there is some."""
    advice = advice_for(exc)
    return f"{exc} {advice}" if advice else str(exc)


def show_error(exc: BaseException, *, warning: bool = False) -> None:
    """Render an error in one consistent way (the UI's single error boundary).

    A WorkbenchError shows its message and the advice for its field; `warning=True` shows it as a
    warning (something to fill in rather than something that went wrong). Anything else is a bug and
    is shown with its traceback rather than as a blank page.
    """
    if isinstance(exc, ProviderError):
        st.error(f"**Provider error ({exc.kind})**: {error_text(exc)}", icon="🛑")
    elif isinstance(exc, WorkbenchError):
        (st.warning if warning else st.error)(error_text(exc), icon="⚠️")
    else:
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
