"""Who is rating: the signed-in user when the app is deployed with sign-in, else a typed name.

Sign-in is Streamlit's built-in OpenID Connect authentication (`st.login`), switched on by an
`[auth]` section in `.streamlit/secrets.toml`. With it, a vote is stored under the identity the
provider vouched for (read from Streamlit's signed cookie, never from a widget), so nobody can
vote as someone else. Without it everything stays as on a laptop: the rater types a name.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from workbench.rating.pairs import MAX_RATER

# The claims tried in order for the name a vote is stored under: the e-mail address is what a
# team recognises (unless the provider says it is unverified); `sub` is the provider's stable id.
RATER_CLAIMS = ("email", "preferred_username", "name", "sub")


def auth_configured() -> bool:
    """True when secrets.toml has an [auth] section (the app is deployed with sign-in)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all, or one that does not parse
        return False


def providers() -> list[str | None]:
    """The providers to offer: None for the one configured directly in [auth], then named ones."""
    section = st.secrets["auth"]
    found: list[str | None] = [None] if "client_id" in section else []
    found += [k for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v]
    return found or [None]  # misconfigured: st.login() then explains what is missing


def current_rater() -> str | None:
    """The signed-in user's e-mail (or other name claim) when sign-in is configured, else None."""
    if not auth_configured():
        return None
    user = st.user
    if user.get("is_logged_in") is not True:
        return None
    unverified = str(user.get("email_verified", "")).lower() == "false"
    for claim in RATER_CLAIMS:
        if claim == "email" and unverified:
            continue
        value = user.get(claim)
        if isinstance(value, str) and value.strip():
            return value.strip()[:MAX_RATER]
    return None


def rater_for_vote(typed: str) -> str | None:
    """The name a vote is stored under: the signed-in user with sign-in configured (None when
    nobody is signed in), the typed name without."""
    return current_rater() if auth_configured() else typed


def _authlib_missing() -> bool:
    try:
        import authlib  # noqa: F401
    except ImportError:
        return True
    return False


def rater_box(container, typed_key: str, on_typed) -> str:
    """Draw who is rating in `container`; return the rater ('' while there is none).

    Without sign-in this is the free-text name field (`typed_key`, calling `on_typed` on change).
    With sign-in it is a Sign in button, or the signed-in user, shown but not editable, with a
    Sign out button.
    """
    if not auth_configured():
        container.text_input(
            "Your name",
            key=typed_key,
            max_chars=MAX_RATER,
            placeholder="e.g. ann",
            help="Stored with every vote, so agreement between raters can be measured.",
            on_change=on_typed,
        )
        return st.session_state[typed_key].strip()
    if _authlib_missing():
        container.error(
            "Sign-in is configured in secrets.toml, but the Authlib package it needs is not "
            "installed. Install the project's requirements on the server and restart it."
        )
        return ""
    rater = current_rater()
    if rater is None:
        for provider in providers():
            label = "Sign in" if provider is None else f"Sign in with {provider}"
            if container.button(
                label,
                key=f"rate.login.{provider or 'default'}",
                type="primary",
                help="Votes are stored under the account you sign in with.",
            ):
                st.login(provider)  # None: the provider configured directly in [auth]
        return ""
    st.session_state["rate.signed_in_as"] = rater  # always the signed-in user, never typed
    container.text_input(
        "Rating as",
        key="rate.signed_in_as",
        disabled=True,
        help="You are signed in; votes are stored under this account.",
    )
    if container.button("Sign out", key="rate.logout"):
        st.logout()
    return rater
