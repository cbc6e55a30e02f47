"""Shared fixtures: an isolated database per test (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from workbench import config

config.apply_offline_env()

POSTGRES_ADMIN_URL = os.environ.get("WORKBENCH_TEST_POSTGRES_URL")  # set by ./test

try:  # the fake provider fixtures, when present
    from tests.fakeserver import fake_server, fake_server_session  # noqa: F401
except ImportError:  # pragma: no cover - during bootstrap of the test suite
    pass


def _backends() -> list:
    params = [pytest.param("sqlite", id="sqlite")]
    params.append(pytest.param("postgres", id="postgres", marks=pytest.mark.postgres))
    return params


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch) -> Iterator[None]:
    """Every test gets its own SQLite file and no stray keys; engines are closed after."""
    from workbench.db import dispose_engines

    monkeypatch.setenv("WORKBENCH_DATABASE_URL", f"sqlite:///{tmp_path / 'workbench.db'}")
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    yield
    import sys

    if "streamlit" in sys.modules:  # st.cache_resource is process-global: it leaks between tests
        import streamlit as st

        st.cache_resource.clear()
        st.cache_data.clear()
    dispose_engines()


def _postgres_database() -> Iterator[str]:
    import psycopg

    if not POSTGRES_ADMIN_URL:
        pytest.skip("PostgreSQL not available: ./test starts one when the server binaries exist")
    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        from workbench.db import dispose_engines

        dispose_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=_backends())
def db_url(request, tmp_path, monkeypatch) -> Iterator[str]:
    """A blank database URL on each backend; WORKBENCH_DATABASE_URL points at it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'backend.db'}"
        monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
        yield url
    else:
        for url in _postgres_database():
            monkeypatch.setenv("WORKBENCH_DATABASE_URL", url)
            yield url


@pytest.fixture
def migrated(db_url) -> str:
    """A database URL migrated to the newest schema."""
    from workbench.db import migrate

    migrate(db_url)
    return db_url


@pytest.fixture
def session(migrated):
    """A Session on a migrated database (each backend), committed at the end of the test."""
    from workbench.db import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def fake_models(fake_server, tmp_path, monkeypatch):
    """A migrated database and a models file with two priced models served by the fake server."""
    from tests.sweep_helpers import write_models_file
    from workbench.db import migrate

    monkeypatch.setenv(
        "WORKBENCH_MODELS", str(write_models_file(tmp_path / "models.toml", fake_server.base_url))
    )
    monkeypatch.setenv("WB_FAKE_KEY", "sk-fake")
    migrate()
    return fake_server


@pytest.fixture
def sqlite_session():
    """A Session on the per-test SQLite database (for tests that need one backend only)."""
    from workbench.db import migrate, session_scope

    migrate()
    with session_scope() as s:
        yield s
