"""Browser-test helpers: `streamlit run` of the app, Chromium's flags, waiting on Streamlit runs,
and a local OpenID Connect provider for the sign-in test.

The provider is the `oidc-provider-mock` package run as its own process on 127.0.0.1: it accepts
any client id and secret and shows a form where the tester types the subject (the user) to sign in
as; its users' e-mail claim is that subject. The app gets an [auth] section in a secrets.toml of its
own (`--secrets.files`), so a developer's .streamlit/secrets.toml is never read or touched.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench import config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
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
HOST = "127.0.0.1"  # the browser, the app's redirect_uri and the provider all use this host


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what} did not start: {log.read_text()}")


@contextmanager
def _process(cmd: list[str], log_path: Path, ready_url: str, what: str, **kwargs) -> Iterator[None]:
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        try:
            _wait_for(ready_url, proc, log_path, what)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@contextmanager
def oidc_provider(log_path: Path) -> Iterator[str]:
    """Run the mock OpenID provider; yield its issuer URL (http://127.0.0.1:PORT)."""
    port = free_port()
    issuer = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "oidc_provider_mock", "--host", HOST, "--port", str(port)]
    with _process(cmd, log_path, f"{issuer}/.well-known/openid-configuration", "oidc-provider-mock"):
        yield issuer


def write_secrets(directory: Path, *, app_port: int, issuer: str) -> Path:
    """A secrets.toml whose [auth] section signs in against `issuer`; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    auth = {
        "redirect_uri": f"http://{HOST}:{app_port}/oauth2callback",
        "cookie_secret": secrets.token_hex(32),
        "client_id": "prompt-workbench",
        "client_secret": secrets.token_hex(16),
        "server_metadata_url": f"{issuer}/.well-known/openid-configuration",
    }
    path = directory / "secrets.toml"
    path.write_text("[auth]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in auth.items()))
    return path


@contextmanager
def streamlit_app(
    port: int, *, database_url: str, log_path: Path, secrets_file: Path | None = None
) -> Iterator[str]:
    """`streamlit run app.py` on 127.0.0.1:port (reading only `secrets_file` when given); yield its URL."""
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        HOST,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        *(["--secrets.files", str(secrets_file)] if secrets_file else []),
    ]
    env = {**os.environ, "WORKBENCH_DATABASE_URL": database_url}
    url = f"http://{HOST}:{port}"
    with _process(cmd, log_path, f"{url}/_stcore/health", "streamlit", cwd=config.PROJECT_ROOT, env=env):
        yield url


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the current run (no 'Running...' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def nav(page, name: str) -> None:
    """Go to a page through the sidebar (keeps the browser session and its state), and wait until
    that page is drawn: on a busy machine its run can start after `wait_idle`'s first look, which
    would then see the previous page."""
    from playwright.sync_api import expect

    heading = page.locator("h1").filter(has_text=name).first
    # A click can be lost to a rerun the page asked for itself at that moment (the Run page's
    # progress panel redraws the whole page once when a sweep finishes): click again.
    for attempt in range(3):
        page.get_by_test_id("stSidebarNav").get_by_text(name, exact=True).click()
        try:
            expect(heading).to_be_visible(timeout=20_000)
            break
        except AssertionError:
            if attempt == 2:
                raise
    wait_idle(page)
