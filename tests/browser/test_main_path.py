"""The main path in a real browser: Playwright drives Debian's Chromium against `streamlit run`.

Create a prompt, save a second version, run a tiny sweep of both on the embedded local model,
and see the outputs and a chart on the Compare page. Screenshots of every page are written to
test-results/browser/ (override with WORKBENCH_SCREENSHOTS).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from workbench import config

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.local_model,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium not installed (./test installs it)"
    ),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "browser.db"


@pytest.fixture
def app_url(tmp_path, db_path):
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DATABASE_URL": f"sqlite:///{db_path}"}
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=config.PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("streamlit did not start: " + (tmp_path / "streamlit.log").read_text())
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def shots() -> Path:
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or config.PROJECT_ROOT / "test-results" / "browser")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _wait_idle(page) -> None:
    """Wait until Streamlit has finished the current run (no 'Running...' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def _nav(page, name: str) -> None:
    """Go to a page through the sidebar (keeps the browser session and its state), and wait until
    that page is drawn: on a busy machine its run can start after `_wait_idle`'s first look, which
    would then see the previous page."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
    expect(page.locator("h1").filter(has_text=name).first).to_be_visible(timeout=60_000)
    _wait_idle(page)


def test_create_version_run_compare(app_url, shots, db_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(app_url)
        # The first run of a session migrates the database and loads the examples: slow on a busy
        # machine, so this wait gets the page's timeout rather than expect's 5 s default.
        expect(page.get_by_text("Prompt Workbench", exact=False).first).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stSidebarNav").get_by_role("link").first).to_have_text("Home")
        _wait_idle(page)
        page.screenshot(path=shots / "01-home.png", full_page=True)

        # Prompts: a new prompt, then a second version.
        _nav(page, "Prompts")
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="➕ New prompt").click()
        _wait_idle(page)
        page.get_by_role("textbox", name="Name", exact=True).fill("greeter")
        page.get_by_role("textbox", name="Name", exact=True).press("Enter")
        _wait_idle(page)
        page.get_by_role("textbox", name="Message 2", exact=True).fill(
            "Greet {{ name }} in one short sentence."
        )
        page.get_by_role("button", name="Save as new version").click()
        _wait_idle(page)
        expect(page.get_by_text("Saved greeter@1.")).to_be_visible()
        # Saving the first version re-lays the page out (the editor moves into the Versions tabs);
        # wait until the editor of the previous layout is gone before typing.
        expect(page.get_by_role("textbox", name="Message 1", exact=True)).to_have_count(1)
        page.get_by_role("textbox", name="Message 1", exact=True).fill(
            "You are a cheerful assistant. Keep it short."
        )
        page.get_by_role("textbox", name="Note for the new version", exact=True).fill("cheerful")
        page.get_by_role("button", name="Save as new version").click()
        _wait_idle(page)
        expect(page.get_by_text("Saved greeter@2.")).to_be_visible()
        page.get_by_role("textbox", name="name", exact=True).fill("Ada")
        page.get_by_role("textbox", name="name", exact=True).press("Enter")
        _wait_idle(page)
        page.screenshot(path=shots / "02-prompts.png", full_page=True)

        _nav(page, "Datasets")
        page.screenshot(path=shots / "03-datasets.png", full_page=True)

        # Run: both versions, ad-hoc variables, the local model, two temperatures -> 4 cells.
        _nav(page, "Run")
        # The size metrics come last in the form: once they show, the default versions are chosen.
        expect(page.get_by_test_id("stMetric").filter(has_text="Cells").first).to_be_visible()
        versions = page.get_by_test_id("stMultiSelect").first
        # The page preselects one version: wait for its chip (a check made too early missed it and
        # left three versions chosen), clear it, then choose ours.
        clear = versions.get_by_role("button", name="Clear all")
        expect(clear).to_be_visible()
        clear.click()
        _wait_idle(page)
        expect(clear).to_have_count(0)
        for ref in ("greeter@1", "greeter@2"):
            versions.locator("input").fill(ref)
            versions.locator("input").press("Enter")
            _wait_idle(page)
        page.keyboard.press("Escape")  # close the options list
        _wait_idle(page)
        page.get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name="(type variables)").click()
        _wait_idle(page)
        page.get_by_role("textbox", name="name", exact=True).fill("Ada")
        page.get_by_role("textbox", name="name", exact=True).press("Enter")
        _wait_idle(page)
        expect(page.get_by_test_id("stMetric").filter(has_text="Cells").first).to_contain_text("4")
        page.get_by_role("button", name="Start sweep").click()
        expect(page.get_by_text("done · 4 of 4 cells finished")).to_be_visible(timeout=180_000)
        page.screenshot(path=shots / "04-run.png", full_page=True)

        # Compare: outputs of the row and a chart.
        _nav(page, "Compare")
        page.get_by_text("Row detail and diff").click()
        _wait_idle(page)
        outputs = page.get_by_test_id("stCode")  # one finished output per column: a code block
        expect(outputs.first).to_be_visible()
        texts = [t for t in outputs.all_inner_texts() if t.strip()]
        assert len(texts) >= 2, texts
        page.screenshot(path=shots / "05-compare-grid.png", full_page=True)
        page.get_by_role("tab", name="Charts").click()
        _wait_idle(page)
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)  # plotly loads first
        # Local models cost $0, so the cost chart is a message: tokens, latency, scores, score vs cost.
        expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=30_000)
        page.screenshot(path=shots / "06-compare-charts.png", full_page=True)

        # Rate: name yourself, then vote with the keyboard (A = the left output is better).
        _nav(page, "Rate")
        page.get_by_role("textbox", name="Your name", exact=True).fill("ada")
        page.get_by_role("textbox", name="Your name", exact=True).press("Enter")
        _wait_idle(page)
        expect(page.get_by_role("button", name="A is better")).to_be_visible()
        page.locator("h1").first.click()  # shortcuts are ignored while a text box has focus
        page.keyboard.press("a")
        _wait_idle(page)
        page.wait_for_timeout(500)
        with sqlite3.connect(db_path) as conn:
            votes = conn.execute("SELECT rater, verdict FROM rating WHERE auto = 0").fetchall()
        assert votes and votes[0][0] == "ada" and votes[0][1] in ("a", "b"), votes

        for i, name in enumerate(("Rate", "Optimize", "Export"), start=7):
            _nav(page, name)
            expect(page.locator("h1").filter(has_text=name).first).to_be_visible()
            _wait_idle(page)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.screenshot(path=shots / f"{i:02d}-{name.lower()}.png", full_page=True)
        browser.close()
