"""AppTest of who rates on the Rate page: a typed name on a laptop, the signed-in user with [auth].

The real sign-in flow (Streamlit's `st.login` against an OIDC provider) is driven in Chromium by
tests/browser/test_oidc_login.py; here the page runs with or without an [auth] section.
"""

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from tests.test_ratings import setup_rating_env, version_sweep
from workbench import config
from workbench.db import session_scope
from workbench.models import Rating

PAGE = str(config.PROJECT_ROOT / "pages" / "5_Rate.py")
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-test-cookie-secret-of-some-length",
    "client_id": "workbench",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


@pytest.fixture
def sweep_id(fake_server, tmp_path, monkeypatch):
    setup_rating_env(fake_server, tmp_path, monkeypatch)
    return version_sweep()


def human_raters() -> list[str]:
    with session_scope() as s:
        return [r.rater for r in s.exec(select(Rating).where(Rating.auto == False).order_by(Rating.id))]  # noqa: E712


def keys(at: AppTest, kind: str) -> set[str]:
    return {w.key for w in at.get(kind) if w.key}


def test_without_auth_the_rater_types_a_name_as_before(sweep_id):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    field = at.text_input(key="rate.rater")
    assert field.label == "Your name" and not field.disabled
    assert not any(k.startswith("rate.login") for k in keys(at, "button")) and "rate.logout" not in keys(
        at, "button"
    )
    assert any("Enter your name" in i.value for i in at.info)
    field.input("ann").run()
    at.button(key="rate.left").click().run()
    assert not at.exception
    assert human_raters() == ["ann"]


def test_with_auth_and_nobody_signed_in_there_is_a_sign_in_button_and_no_voting(sweep_id):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.run()
    assert not at.exception
    assert "rate.rater" not in keys(at, "text_input")  # no name to type
    assert at.button(key="rate.login.default").label == "Sign in"
    assert not {"rate.left", "rate.right", "rate.tie", "rate.both_bad"} & keys(at, "button")
    assert any("Sign in above to start rating" in i.value for i in at.info)


def test_with_auth_named_providers_get_one_button_each(sweep_id):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": AUTH["cookie_secret"],
        "google": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
        "okta": {k: AUTH[k] for k in ("client_id", "client_secret", "server_metadata_url")},
    }
    at.run()
    assert not at.exception
    labels = {b.key: b.label for b in at.button if b.key and b.key.startswith("rate.login")}
    assert labels == {"rate.login.google": "Sign in with google", "rate.login.okta": "Sign in with okta"}


def test_a_signed_in_rater_votes_as_themselves_only(sweep_id):
    # The identity Streamlit read from its signed cookie (AppTest seeds it as `at.user`).
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "alice@example.com", "name": "Alice", "sub": "a-1"}
    at.session_state["rate.rater"] = "mallory"  # a name typed before sign-in is ignored
    at.run()
    assert not at.exception
    shown = at.text_input(key="rate.signed_in_as")
    assert shown.value == "alice@example.com" and shown.disabled
    assert "rate.rater" not in keys(at, "text_input")
    assert "rate.logout" in keys(at, "button")
    at.button(key="rate.left").click().run()
    assert not at.exception
    assert human_raters() == ["alice@example.com"]
    # The session's state cannot change who votes either.
    at.session_state["rate.signed_in_as"] = "mallory"
    at.session_state["rate.rater"] = "mallory"
    at.run()
    at.button(key="rate.right").click().run()
    assert not at.exception
    assert human_raters() == ["alice@example.com", "alice@example.com"]
    assert at.text_input(key="rate.signed_in_as").value == "alice@example.com"


def test_an_unverified_email_is_not_taken_as_the_rater(sweep_id):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "bob@example.com", "email_verified": False, "sub": "u-42"}
    at.run()
    assert not at.exception
    assert at.text_input(key="rate.signed_in_as").value == "u-42"
