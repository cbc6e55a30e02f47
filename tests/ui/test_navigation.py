"""The sidebar's navigation (st.navigation in app.py): Home first, then the pages at their old URLs."""

from tests.ui.conftest import page
from workbench.config import PROJECT_ROOT

PAGES = ["Prompts", "Datasets", "Run", "Compare", "Rate", "Optimize", "Export"]


def entries(at) -> list[dict]:
    """The navigation's entries in sidebar order, as the app registered them with st.navigation."""
    return list(at._registered_pages.values())


def test_the_first_entry_is_home_and_the_pages_keep_their_urls(examples_db):
    at = page("app.py")
    assert not at.exception
    nav = entries(at)
    assert nav[0]["page_name"] == "Home" and nav[0]["url_pathname"] == ""  # the app's root URL
    assert [e["page_name"] for e in nav] == ["Home", *PAGES]
    # /Prompts, /Datasets, ...: the paths the pages/ directory gave them before st.navigation.
    assert [e["url_pathname"] for e in nav[1:]] == PAGES
    files = sorted((PROJECT_ROOT / "pages").glob("*.py"))
    assert [e["script_path"] for e in nav[1:]] == [str(f) for f in files]
    assert any("Prompt Workbench" in t.value for t in at.title)  # the home page was drawn


def test_every_page_opens_from_the_navigation(examples_db):
    at = page("app.py")
    for path, title in zip(sorted((PROJECT_ROOT / "pages").glob("*.py")), PAGES, strict=True):
        at.switch_page(f"pages/{path.name}").run()
        assert not at.exception, (path.name, at.exception)
        assert any(title in t.value for t in at.title), (path.name, [t.value for t in at.title])
