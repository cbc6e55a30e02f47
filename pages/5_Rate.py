from workbench.ui.common import setup_page
from workbench.ui.rate import render

setup_page("Rate", "⚖️")
render()
