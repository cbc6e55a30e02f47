"""The registry of automatic metrics: what each score means and what it may decide.

A sweep stores a `Score(metric=name, value=...)` per scored cell. Tables carry a metric's values
in a column named by `Metric.column` (per run) and its aggregates in `Metric.mean_column` /
`Metric.std_column` (per sweep column). This module is the only place that builds or reads those
names; everything else asks it (`metric_of`, `score_columns`, `mean_columns`).

"Which metric can pick a winner" is `Metric.can_pick_winner` (higher is better), and "which
metric can gate a release" is `Metric.can_gate` (also needs no per-sweep settings, so a gate run
can compute it from a dataset alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workbench.errors import ValidationError

SCORE_PREFIX = "score_"


@dataclass(frozen=True)
class Metric:
    """One automatic metric: its name, how to read it, and what it may decide."""

    name: str
    label: str
    higher_is_better: bool | None  # None: no better direction (length rewards verbosity)
    pass_fail: bool  # values are 0 or 1 (paired tests treat them as right/wrong)
    needs_expected: bool = False  # only scored on rows with an expected answer
    needs_settings: tuple[str, ...] = ()  # scoring settings the metric cannot run without

    @property
    def can_pick_winner(self) -> bool:
        """Higher is better, so the best value names a winner."""
        return self.higher_is_better is True

    @property
    def can_gate(self) -> bool:
        """Can decide a release gate: picks winners and needs no extra settings."""
        return self.can_pick_winner and not self.needs_settings

    @property
    def column(self) -> str:
        """The per-run column holding this metric's value."""
        return f"{SCORE_PREFIX}{self.name}"

    @property
    def mean_column(self) -> str:
        """The per-column aggregate holding the mean."""
        return f"{self.column}_mean"

    @property
    def std_column(self) -> str:
        """The per-column aggregate holding the standard deviation."""
        return f"{self.column}_std"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("exact", "exact match (normalised)", True, True, needs_expected=True),
        Metric("exact_raw", "exact match (byte for byte)", True, True, needs_expected=True),
        Metric("contains", "contains the expected answer", True, True, needs_expected=True),
        Metric("contains_raw", "contains the expected answer (raw)", True, True, needs_expected=True),
        Metric("regex", "matches the pattern", True, True, needs_settings=("regex",)),
        Metric("json", "valid JSON", True, True),
        Metric("json_schema", "matches the JSON Schema", True, True, needs_settings=("json_schema",)),
        # The version's own schema (its response_format); without one, "parses as JSON".
        Metric("json_valid", "valid JSON for the version's schema", True, True),
        # The share of the expected JSON's fields the output matches (per field in the score's detail).
        Metric("json_match", "JSON fields matching the expected (0-1)", True, False, needs_expected=True),
        Metric("tool_call", "makes the expected tool call(s)", True, True, needs_expected=True),
        Metric("length", "output length (characters)", None, False),
        Metric("judge", "LLM judge (0-1)", True, False, needs_settings=("judge_model",)),
    )
}


def get(name: str) -> Metric:
    """The metric called `name`; a ValidationError naming the known ones otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValidationError(f"Unknown metric '{name}'. Known metrics: {', '.join(METRICS)}.") from None


def metric_of(column: str) -> Metric | None:
    """The metric a score column belongs to (`score_exact`, `score_exact_mean`, ...), else None."""
    if not column.startswith(SCORE_PREFIX):
        return None
    rest = column[len(SCORE_PREFIX) :]
    for suffix in ("_mean", "_std", ""):
        if suffix and not rest.endswith(suffix):
            continue
        name = rest[: len(rest) - len(suffix)] if suffix else rest
        if name in METRICS:
            return METRICS[name]
    return None


def score_columns(columns: Iterable[str]) -> list[Metric]:
    """The metrics that have a per-run column among `columns`, in registry order."""
    present = set(columns)
    return [m for m in METRICS.values() if m.column in present]


def mean_columns(columns: Iterable[str]) -> list[Metric]:
    """The metrics that have a mean column among `columns`, in registry order."""
    present = set(columns)
    return [m for m in METRICS.values() if m.mean_column in present]


def winner_metrics(names: Iterable[str]) -> list[Metric]:
    """Of the metric names given, those that can pick a winner, in registry order."""
    wanted = set(names)
    return [m for m in METRICS.values() if m.name in wanted and m.can_pick_winner]


def gate_metrics() -> list[Metric]:
    """Metrics a release gate can decide on."""
    return [m for m in METRICS.values() if m.can_gate]
