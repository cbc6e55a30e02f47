from workbench.ui.common import setup_page
from workbench.ui.run import render

setup_page("Run", "🚀")
render()
