"""The "Send to MLflow" actions: shown only when a tracking server is configured; an unreachable
server is an error on the page and changes nothing. (Sending to a real server: tests/test_mlflow.py.)"""

import socket

from tests.ui.conftest import page
from workbench.db import session_scope
from workbench.prompts import store

PUSH = "mlflow.push.{}.send"


def _dead_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _version_id() -> int:
    with session_scope() as s:
        return store.resolve(s, "capital").id


def test_prompts_page_has_no_mlflow_button_without_a_tracking_uri(examples_db, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    at = page("pages/1_Prompts.py")
    assert not at.exception
    assert not [b for b in at.button if b.key == PUSH.format(_version_id())]
    assert not any("MLflow" in b.label for b in at.button)


def test_prompts_page_shows_the_button_with_a_tracking_uri_and_reports_an_unreachable_server(
    examples_db, monkeypatch
):
    port = _dead_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    at = page("pages/1_Prompts.py")
    button = at.button(key=PUSH.format(_version_id()))
    assert button.label == "Send to MLflow"
    button.click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(f"Cannot reach the MLflow tracking server at http://127.0.0.1:{port}" in e for e in errors), (
        errors
    )
    assert not at.success and not at.get("link_button")
    with session_scope() as s:  # nothing changed here either
        assert len(store.versions_of(s, store.get_prompt(s, "capital").id)) == 1


def test_compare_page_offers_the_sweep_to_mlflow_only_with_a_tracking_uri(fake_models, monkeypatch):
    from tests.sweep_helpers import plan, run, seed

    seed(2)
    sweep_id = plan()
    run(sweep_id)
    key = f"mlflow.sweep.{sweep_id}.send"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    at = page("pages/4_Compare.py")
    assert not at.exception and not [b for b in at.button if b.key == key]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_dead_port()}")
    at = page("pages/4_Compare.py")
    at.button(key=key).click().run()
    assert not at.exception
    assert any("Cannot reach the MLflow tracking server" in e.value for e in at.error)
