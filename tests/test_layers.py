"""Architecture rules: only workbench/ui (and app.py, pages/) import streamlit."""

import ast

from workbench import config

ROOT = config.PROJECT_ROOT


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_never_imports_streamlit():
    offenders = []
    for path in (ROOT / "workbench").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "workbench").parts:
            continue
        if any(name == "streamlit" or name.startswith("streamlit.") for name in _imports(path)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_pages_go_through_workbench_ui_not_providers():
    """Pages stay thin: no direct LiteLLM/DSPy/SQL calls (they belong in the core)."""
    banned = ("litellm", "dspy", "sqlalchemy", "sqlmodel", "llama_cpp")
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        if not path.exists():
            continue
        for name in _imports(path):
            if name.split(".")[0] in banned:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []
