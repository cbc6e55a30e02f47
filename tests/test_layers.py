"""Architecture rules, checked on the source tree.

- Only workbench/ui (and app.py, pages/) import streamlit.
- Pages hold no provider, DSPy or SQL code: they go through workbench/ui.
- workbench/cli is an adapter: nothing in the library, the UI or the pages imports it back
  (`python -m workbench` reaches it through workbench/__main__.py).
- Every module under workbench/ (migrations aside) can be read in one sitting: at most 450 lines.
"""

import ast

from workbench import config

ROOT = config.PROJECT_ROOT
PACKAGE = ROOT / "workbench"
MAX_MODULE_LINES = 450


def _imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            # `from workbench import cli` imports the package too
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _modules(*, skip=()):
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if parts[0] in skip:
            continue
        yield path


def test_core_never_imports_streamlit():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _modules(skip=("ui",))
        if any(name == "streamlit" or name.startswith("streamlit.") for name in _imports(path))
    ]
    assert offenders == []


def test_pages_go_through_workbench_ui_not_providers():
    """Pages stay thin: no direct LiteLLM/DSPy/SQL calls (they belong in the core)."""
    banned = ("litellm", "dspy", "sqlalchemy", "sqlmodel", "llama_cpp")
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        for name in _imports(path):
            if name.split(".")[0] in banned:
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_nothing_imports_the_cli_back():
    sources = [
        *_modules(skip=("cli", "__main__.py")),
        ROOT / "app.py",
        *sorted((ROOT / "pages").glob("*.py")),
    ]
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if any(name == "workbench.cli" or name.startswith("workbench.cli.") for name in _imports(path))
    ]
    assert offenders == []


def test_modules_stay_small():
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in _modules(skip=("migrations",))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_every_package_maps_its_modules():
    """Each package's __init__ docstring names every module in it, so a newcomer finds their way."""
    missing = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        pkg = init.parent
        if "migrations" in pkg.relative_to(PACKAGE).parts or pkg == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        for mod in sorted(pkg.glob("*.py")):
            if mod.name != "__init__.py" and f"`{mod.stem}`" not in doc:
                missing.append(str(mod.relative_to(ROOT)))
        for sub in sorted(p for p in pkg.iterdir() if (p / "__init__.py").exists()):
            if f"`{sub.name}/`" not in doc:
                missing.append(str(sub.relative_to(ROOT)) + "/")
    assert missing == []
