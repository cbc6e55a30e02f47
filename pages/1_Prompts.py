from workbench.ui.common import setup_page
from workbench.ui.prompts import render

setup_page("Prompts", "📝")
render()
