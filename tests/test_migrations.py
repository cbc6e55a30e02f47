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
