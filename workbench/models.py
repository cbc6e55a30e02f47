"""The whole data model (design.md) as SQLModel tables.

All tables live here so Alembic sees one metadata. The schema changes only through migrations in
`workbench/migrations/versions/`; `tests/test_migrations.py` checks a blank database migrates to
exactly this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


def _json(default_factory: Any = dict, nullable: bool = False) -> Any:
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))


def _text(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Text, nullable=nullable))


class Prompt(SQLModel, table=True):
    """A named prompt; its content lives in immutable versions."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class PromptVersion(SQLModel, table=True):
    """One immutable version: ordered chat messages (role + Jinja source) and default params."""

    __table_args__ = (UniqueConstraint("prompt_id", "number", name="uq_version_prompt_number"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    number: int
    messages: list[dict[str, str]] = _json(list)
    params: dict[str, Any] = _json(dict)
    variables: list[str] = _json(list)
    content_hash: str = Field(index=True, max_length=64)
    # The hash a version had where it came from (an import keeps the exporter's hash).
    original_hash: str | None = Field(default=None, max_length=64)
    parent_id: int | None = Field(default=None, foreign_key="promptversion.id")
    source: str = Field(default="manual", max_length=20)  # manual | dspy | import
    # For an imported version: the source it had where it was exported (migration 0002).
    origin_source: str | None = Field(default=None, max_length=20)
    # Structured output and tools (migration 0003), normalised by `prompts.structured`; None: unset.
    response_format: dict[str, Any] | None = _json(lambda: None, nullable=True)
    tools: list[dict[str, Any]] | None = _json(lambda: None, nullable=True)
    tool_choice: Any = _json(lambda: None, nullable=True)  # "auto" | "none" | "required" | {function}
    note: str = Field(default="", max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Label(SQLModel, table=True):
    """A movable name (production, staging, ...) pointing at one version of a prompt."""

    __table_args__ = (UniqueConstraint("prompt_id", "name", name="uq_label_prompt_name"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    name: str = Field(max_length=100)
    version_id: int = Field(foreign_key="promptversion.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class LabelEvent(SQLModel, table=True):
    """One move of a label, kept so 'who pointed production where, when' can be audited."""

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id", index=True)
    label: str = Field(max_length=100)
    from_version_id: int | None = Field(default=None, foreign_key="promptversion.id")
    to_version_id: int | None = Field(default=None, foreign_key="promptversion.id")
    actor: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Dataset(SQLModel, table=True):
    """A named table of template variables, optionally with an expected answer per row."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    description: str = Field(default="", max_length=2000)
    columns: list[str] = _json(list)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Example(SQLModel, table=True):
    """One dataset row: variables, and the expected answer when the row is labelled."""

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    position: int
    inputs: dict[str, Any] = _json(dict)
    expected: str | None = _text()


class Sweep(SQLModel, table=True):
    """A planned grid of cells; `config` holds what the user asked for."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    config: dict[str, Any] = _json(dict)
    status: str = Field(default="pending", max_length=20, index=True)
    cancel_requested: bool = Field(default=False)
    budget_usd: float | None = None
    estimated_cost_usd: float | None = None
    error: str | None = _text()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Run(SQLModel, table=True):
    """One cell of a sweep: a call (or a cache hit) and everything it produced."""

    __table_args__ = (
        Index("ix_run_sweep_status", "sweep_id", "status"),
        Index("ix_run_cache_key_status", "cache_key", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sweep_id: int = Field(foreign_key="sweep.id")
    version_id: int = Field(foreign_key="promptversion.id", index=True)
    model: str = Field(max_length=200)
    params: dict[str, Any] = _json(dict)
    example_id: int | None = Field(default=None, foreign_key="example.id")
    variables: dict[str, Any] = _json(dict)
    repeat_index: int = 0
    cache_key: str = Field(max_length=64)
    messages: list[dict[str, str]] = _json(list)
    status: str = Field(default="pending", max_length=20)  # pending|running|done|failed|cancelled
    cached: bool = False
    cached_from_id: int | None = Field(default=None, foreign_key="run.id")
    attempts: int = 0
    output: str | None = _text()
    # The function calls the reply made: [{"id", "name", "arguments"}] (arguments parsed when they
    # are JSON, else the raw text); None when it made none (migration 0003).
    tool_calls: list[dict[str, Any]] | None = _json(lambda: None, nullable=True)
    finish_reason: str | None = Field(default=None, max_length=40)
    error_kind: str | None = Field(default=None, max_length=40)
    error_message: str | None = _text()
    request_id: str | None = Field(default=None, max_length=200)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Parts of the two counts above, when the provider reports them (migration 0003): prompt
    # tokens read from the provider's prompt cache, and completion tokens spent on reasoning.
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    claimed_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Score(SQLModel, table=True):
    """An automatic score of one run by one metric."""

    __table_args__ = (UniqueConstraint("run_id", "metric", name="uq_score_run_metric"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    metric: str = Field(max_length=100)
    value: float | None = None
    detail: str | None = _text()
    cost_usd: float | None = None


class Rating(SQLModel, table=True):
    """A blind pairwise vote between two runs of the same row."""

    id: int | None = Field(default=None, primary_key=True)
    sweep_id: int | None = Field(default=None, foreign_key="sweep.id", index=True)
    run_a_id: int = Field(foreign_key="run.id")
    run_b_id: int = Field(foreign_key="run.id")
    left_run_id: int = Field(foreign_key="run.id")  # which run was shown on the left
    verdict: str = Field(max_length=20)  # a | b | tie | both_bad
    dimension: str = Field(default="", max_length=100)
    rater: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=4000)
    auto: bool = False  # identical outputs are recorded as a tie without a human vote
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class Optimization(SQLModel, table=True):
    """A DSPy optimization of one version against labelled rows, kept for lineage."""

    id: int | None = Field(default=None, primary_key=True)
    input_version_id: int = Field(foreign_key="promptversion.id")
    output_version_id: int | None = Field(default=None, foreign_key="promptversion.id")
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id")
    optimizer: str = Field(max_length=100)
    config: dict[str, Any] = _json(dict)
    metric: str = Field(max_length=100)
    task_model: str = Field(max_length=200)
    prompt_model: str | None = Field(default=None, max_length=200)
    status: str = Field(default="pending", max_length=20)
    cancel_requested: bool = False
    baseline_score: float | None = None
    final_score: float | None = None
    lm_calls: int = 0
    call_cap: int | None = None
    cost_usd: float | None = None
    log: str = _text(nullable=True)
    program: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = _text()
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
