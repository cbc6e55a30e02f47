from workbench.ui.common import setup_page
from workbench.ui.optimize import render

setup_page("Optimize", "🧬")
render()
