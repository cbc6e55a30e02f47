"""A blank database migrates to exactly the schema in workbench/models.py."""

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import workbench.models  # noqa: F401 - tables on the metadata
from workbench.db import current_revision, get_engine, migrate

TABLES = {
    "prompt",
    "promptversion",
    "label",
    "labelevent",
    "dataset",
    "example",
    "sweep",
    "run",
    "score",
    "rating",
    "optimization",
    "alembic_version",
}


def test_blank_database_migrates_to_the_model_schema(db_url):
    assert current_revision(db_url) is None
    revision = migrate(db_url)
    assert revision == current_revision(db_url) and revision
    engine = get_engine(db_url)
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) == TABLES
    for table in SQLModel.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    run_indexes = {ix["name"] for ix in inspector.get_indexes("run")}
    assert {"ix_run_sweep_status", "ix_run_cache_key_status"} <= run_indexes


def test_migrations_match_models_exactly(db_url):
    """Alembic's autogenerate finds nothing to change: models and migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate(db_url)
    with get_engine(db_url).connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata
        )
    assert diffs == []


def test_migrate_is_idempotent(db_url):
    first = migrate(db_url)
    assert migrate(db_url) == first


def test_sqlite_uses_wal_and_busy_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    migrate(url)
    with get_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_upgrade_keeps_the_data_of_an_older_schema(db_url):
    """A database made by revision 0001 keeps its rows when it is upgraded to the newest schema."""
    from alembic import command

    from workbench.db import alembic_config, session_scope
    from workbench.prompts import store

    engine = get_engine(db_url)
    cfg = alembic_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO prompt (name, description, created_at) VALUES ('old', '', :t)"),
            {"t": "2026-01-01 00:00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO promptversion (prompt_id, number, messages, params, variables, content_hash,"
                " source, note, created_at) VALUES (1, 1, :m, '{}', '[]', 'abc', 'manual', '', :t)"
            ),
            {"m": '[{"role": "user", "content": "hi"}]', "t": "2026-01-01 00:00:00"},
        )
    assert current_revision(db_url) == "0001"
    assert migrate(db_url) != "0001"
    with session_scope() as s:
        v = store.resolve(s, "old@1")
        assert v.messages == [{"role": "user", "content": "hi"}] and v.origin_source is None
