"""Prompt Workbench (`streamlit run app.py`): the navigation, Home first, then the pages in pages/.

Each page file keeps its URL path (pages/1_Prompts.py is /Prompts) and sets itself up.
"""

from pathlib import Path

import streamlit as st

from workbench.ui.common import setup_page
from workbench.ui.home import render_home


def home() -> None:
    """The home page: counts, models and the quick start."""
    setup_page("Home")
    render_home()


pages = sorted((Path(__file__).parent / "pages").glob("[0-9]*_*.py"), key=lambda p: int(p.name.split("_")[0]))
st.navigation([st.Page(home, title="Home", default=True), *(st.Page(p) for p in pages)]).run()
