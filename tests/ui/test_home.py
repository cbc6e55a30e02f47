"""The home page: counts, models and the quick start, without importing litellm or dspy."""

import subprocess
import sys

from tests.ui.conftest import page
from workbench import config


def test_home_shows_counts_models_and_quick_start(examples_db):
    at = page("app.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Prompts"] == "3" and metrics["Datasets"] == "3" and metrics["Sweeps"] == "0"
    models = at.dataframe[0].value
    ready = dict(zip(models["model"], models["status"], strict=True))
    assert ready["local/smollm2-135m-instruct"] == "ready"
    assert ready["openai/gpt-4o-mini"] == "needs OPENAI_API_KEY"
    assert any("Quick start" in h.value for h in at.subheader)


def test_first_start_loads_examples_into_an_empty_database():
    at = page("app.py")
    assert {m.label: m.value for m in at.metric}["Prompts"] == "3"


def test_home_imports_neither_litellm_nor_dspy(tmp_path):
    code = (
        "import os, sys; os.environ['WORKBENCH_DATABASE_URL']='sqlite:///" + str(tmp_path / "h.db") + "'\n"
        "from streamlit.testing.v1 import AppTest\n"
        "at = AppTest.from_file('app.py', default_timeout=60).run()\n"
        "assert not at.exception, at.exception\n"
        "print(sorted(m for m in ('litellm', 'dspy', 'llama_cpp') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
