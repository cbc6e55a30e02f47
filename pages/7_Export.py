from workbench.ui.common import setup_page
from workbench.ui.export import render

setup_page("Export", "📦")
render()
