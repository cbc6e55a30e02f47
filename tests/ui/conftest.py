"""Page tests: each runs a page script with AppTest on its own migrated database."""

import pytest
from streamlit.testing.v1 import AppTest

from workbench.config import PROJECT_ROOT
from workbench.db import migrate, session_scope
from workbench.prompts.examples import load_examples


@pytest.fixture
def examples_db():
    """A migrated database with the bundled example prompts and datasets."""
    migrate()
    with session_scope() as s:
        load_examples(s)


def page(path: str) -> AppTest:
    """Run a page script once and return the AppTest."""
    return AppTest.from_file(str(PROJECT_ROOT / path), default_timeout=60).run()
