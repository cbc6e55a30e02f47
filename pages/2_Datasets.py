from workbench.ui.common import setup_page
from workbench.ui.datasets import render

setup_page("Datasets", "🗂️")
render()
