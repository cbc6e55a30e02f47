from workbench.ui.common import setup_page
from workbench.ui.compare import render

setup_page("Compare", "🔍")
render()
