"""Prompt Workbench home page (`streamlit run app.py`)."""

from workbench.ui.common import setup_page
from workbench.ui.home import render_home

setup_page("Home")
render_home()
