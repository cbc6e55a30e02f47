"""Team sign-in in a real browser: Streamlit's `st.login` against a local OpenID provider.

The test starts `oidc-provider-mock` and `streamlit run` with an [auth] section pointing at it,
then Chromium opens the Rate page, signs in through the provider's form as alice@example.com,
votes, and the stored vote's rater is that account; after signing out the page asks to sign in
again. Nothing about the user is patched: the identity comes back from the provider.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    nav,
    oidc_provider,
    streamlit_app,
    wait_idle,
    write_secrets,
)
from tests.test_ratings import setup_rating_env, version_sweep
from workbench import config

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium not installed (./test installs it)"
    ),
]
pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is in requirements-dev.txt")
pytest.importorskip("authlib", reason="Authlib (st.login needs it) is in requirements.txt")

ALICE = "alice@example.com"


@pytest.fixture
def db_path(fake_server, tmp_path, monkeypatch) -> Path:
    """A database with a finished sweep of two prompt versions to rate (made before the app starts)."""
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    version_sweep()
    return tmp_path / "workbench.db"  # the file tests/conftest.py points WORKBENCH_DATABASE_URL at


@pytest.fixture
def app_url(tmp_path, db_path):
    port = free_port()
    with oidc_provider(tmp_path / "oidc.log") as issuer:
        secrets_file = write_secrets(tmp_path / "secrets", app_port=port, issuer=issuer)
        with streamlit_app(
            port,
            database_url=f"sqlite:///{db_path}",
            secrets_file=secrets_file,
            log_path=tmp_path / "streamlit.log",
        ) as url:
            yield url


def human_votes(db_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT rater, verdict FROM rating WHERE auto = 0 ORDER BY id").fetchall()


def test_sign_in_with_the_provider_then_votes_are_the_signed_in_users(app_url, db_path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the first visit of a page imports a lot on a busy machine
    try:
        with sync_playwright() as p:
            _walk(p, expect, app_url, db_path)
    finally:
        expect.set_options(timeout=None)  # back to Playwright's default for other tests


def _walk(p, expect, app_url: str, db_path: Path) -> None:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    shots = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or config.PROJECT_ROOT / "test-results" / "browser")
    shots.mkdir(parents=True, exist_ok=True)
    page.set_default_timeout(60_000)
    page.goto(app_url)
    wait_idle(page)
    nav(page, "Rate")

    # Not signed in: a Sign in button, no name to type and nothing to vote on.
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Your name", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="A is better")).to_have_count(0)
    page.screenshot(path=shots / "oidc-1-rate-signed-out.png", full_page=True)

    # The provider's own form: type the subject to sign in as (its e-mail claim is the subject).
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(lambda url: "/oauth2/authorize" in url)
    page.locator("input[name=sub]").fill(ALICE)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda url: url.startswith(app_url) and "oauth2callback" not in url)
    wait_idle(page)

    # Streamlit returns to the home page; on Rate the rater is now the account, not editable.
    nav(page, "Rate")
    shown = page.get_by_role("textbox", name="Rating as", exact=True)
    expect(shown).to_have_value(ALICE)
    expect(shown).to_be_disabled()
    expect(page.get_by_role("textbox", name="Your name", exact=True)).to_have_count(0)
    page.screenshot(path=shots / "oidc-2-rate-signed-in.png", full_page=True)
    page.get_by_role("button", name="A is better").click()
    wait_idle(page)
    expect(page.get_by_text("You: 1 votes", exact=False)).to_be_visible()
    votes = human_votes(db_path)
    assert [rater for rater, _ in votes] == [ALICE] and votes[0][1] in ("a", "b"), votes

    # Signing out goes through the provider's end-session page and back: sign in again to vote.
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(lambda url: "/oauth2/end_session" in url)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(lambda url: url.startswith(app_url) and "oauth2callback" not in url)
    wait_idle(page)
    nav(page, "Rate")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Rating as", exact=True)).to_have_count(0)
    assert human_votes(db_path) == votes
    browser.close()
