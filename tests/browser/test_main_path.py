"""The main path in a real browser: Playwright drives Debian's Chromium against `streamlit run`.

Create a prompt, save a second version, run a tiny sweep of both on the embedded local model,
and see the outputs and a chart on the Compare page. Screenshots of every page are written to
test-results/browser/ (override with WORKBENCH_SCREENSHOTS).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, free_port, nav, streamlit_app, wait_idle
from workbench import config

pytestmark = [
    pytest.mark.browser,
    pytest.mark.local_model,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium not installed (./test installs it)"
    ),
]


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "browser.db"


@pytest.fixture
def app_url(tmp_path, db_path):
    database_url = f"sqlite:///{db_path}"
    with streamlit_app(free_port(), database_url=database_url, log_path=tmp_path / "streamlit.log") as url:
        yield url


@pytest.fixture
def shots() -> Path:
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or config.PROJECT_ROOT / "test-results" / "browser")
    out.mkdir(parents=True, exist_ok=True)
    return out


def test_create_version_run_compare(app_url, shots, db_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(app_url)
        # The first run of a session migrates the database and loads the examples: slow on a busy
        # machine, so this wait gets the page's timeout rather than expect's 5 s default.
        expect(page.get_by_text("Prompt Workbench", exact=False).first).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link").first).to_have_text("Home")
        wait_idle(page)
        page.screenshot(path=shots / "01-home.png", full_page=True)

        # Prompts: a new prompt, then a second version.
        nav(page, "Prompts")
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="➕ New prompt").click()
        wait_idle(page)
        page.get_by_role("textbox", name="Name", exact=True).fill("greeter")
        page.get_by_role("textbox", name="Name", exact=True).press("Enter")
        wait_idle(page)
        page.get_by_role("textbox", name="Message 2", exact=True).fill(
            "Greet {{ name }} in one short sentence."
        )
        page.get_by_role("button", name="Save as new version").click()
        wait_idle(page)
        expect(page.get_by_text("Saved greeter@1.")).to_be_visible()
        # Saving the first version re-lays the page out (the editor moves into the Versions tabs);
        # wait until the editor of the previous layout is gone before typing.
        expect(page.get_by_role("textbox", name="Message 1", exact=True)).to_have_count(1)
        page.get_by_role("textbox", name="Message 1", exact=True).fill(
            "You are a cheerful assistant. Keep it short."
        )
        page.get_by_role("textbox", name="Note for the new version", exact=True).fill("cheerful")
        page.get_by_role("button", name="Save as new version").click()
        wait_idle(page)
        expect(page.get_by_text("Saved greeter@2.")).to_be_visible()
        page.get_by_role("textbox", name="name", exact=True).fill("Ada")
        page.get_by_role("textbox", name="name", exact=True).press("Enter")
        wait_idle(page)
        page.screenshot(path=shots / "02-prompts.png", full_page=True)

        nav(page, "Datasets")
        page.screenshot(path=shots / "03-datasets.png", full_page=True)

        # Run: both versions, ad-hoc variables, the local model, two temperatures -> 4 cells.
        nav(page, "Run")
        # The size metrics come last in the form: once they show, the default versions are chosen.
        expect(page.get_by_test_id("stMetric").filter(has_text="Cells").first).to_be_visible()
        versions = page.get_by_test_id("stMultiSelect").first
        # The page preselects one version: wait for its chip (a check made too early missed it and
        # left three versions chosen), clear it, then choose ours.
        clear = versions.get_by_role("button", name="Clear all")
        expect(clear).to_be_visible()
        clear.click()
        wait_idle(page)
        expect(clear).to_have_count(0)
        for ref in ("greeter@1", "greeter@2"):
            versions.locator("input").fill(ref)
            versions.locator("input").press("Enter")
            wait_idle(page)
        page.keyboard.press("Escape")  # close the options list
        wait_idle(page)
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="(type variables)").click()
        wait_idle(page)
        page.get_by_role("textbox", name="name", exact=True).fill("Ada")
        page.get_by_role("textbox", name="name", exact=True).press("Enter")
        wait_idle(page)
        expect(page.get_by_test_id("stMetric").filter(has_text="Cells").first).to_contain_text("4")
        page.get_by_role("button", name="Start sweep").click()
        expect(page.get_by_text("done · 4 of 4 cells finished")).to_be_visible(timeout=180_000)
        page.screenshot(path=shots / "04-run.png", full_page=True)

        # Compare: outputs of the row and a chart.
        nav(page, "Compare")
        page.get_by_text("Row detail and diff").click()
        wait_idle(page)
        outputs = page.get_by_test_id("stCode")  # one finished output per column: a code block
        expect(outputs.first).to_be_visible()
        texts = [t for t in outputs.all_inner_texts() if t.strip()]
        assert len(texts) >= 2, texts
        page.screenshot(path=shots / "05-compare-grid.png", full_page=True)
        page.get_by_role("tab", name="Charts").click()
        wait_idle(page)
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)  # plotly loads first
        # Local models cost $0, so the cost chart is a message: tokens, latency, scores, score vs cost.
        expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=30_000)
        page.screenshot(path=shots / "06-compare-charts.png", full_page=True)

        # Rate: name yourself, then vote with the keyboard (A = the left output is better).
        nav(page, "Rate")
        page.get_by_role("textbox", name="Your name", exact=True).fill("ada")
        page.get_by_role("textbox", name="Your name", exact=True).press("Enter")
        wait_idle(page)
        expect(page.get_by_role("button", name="A is better")).to_be_visible()
        page.locator("h1").first.click()  # shortcuts are ignored while a text box has focus
        page.keyboard.press("a")
        wait_idle(page)
        page.wait_for_timeout(500)
        with sqlite3.connect(db_path) as conn:
            votes = conn.execute("SELECT rater, verdict FROM rating WHERE auto = 0").fetchall()
        assert votes and votes[0][0] == "ada" and votes[0][1] in ("a", "b"), votes

        for i, name in enumerate(("Rate", "Optimize", "Export"), start=7):
            nav(page, name)
            expect(page.locator("h1").filter(has_text=name).first).to_be_visible()
            wait_idle(page)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=shots / f"{i:02d}-{name.lower()}.png", full_page=True)
        browser.close()
