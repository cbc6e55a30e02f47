"""What a rating compares: a run's entry along a dimension (version, model, temperature, grid,
column), and which two runs make a clean comparison."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from workbench.errors import ValidationError
from workbench.models import Prompt, PromptVersion, Run
from workbench.sweeps import outputs
from workbench.sweeps.plan import column_label, grid_keys, params_label, require_sweep

DIMENSIONS = ("version", "model", "temperature", "param", "column")


NO_GRID = "(no grid)"


def _get(row: Any, key: str, default: Any = None) -> Any:
    if isinstance(row, (Mapping, pd.Series)):  # a dict or a runs_frame row
        return row.get(key, default)
    return getattr(row, key, default)  # a namedtuple from itertuples, or a _RunInfo


def _check_dimension(by: str) -> str:
    if by not in DIMENSIONS:
        raise ValidationError(f"Unknown dimension {by!r}; compare by one of: {', '.join(DIMENSIONS)}.")
    return by


def _temperature_label(params: Mapping[str, Any] | None) -> str:
    params = params or {}
    return (
        params_label({"temperature": params["temperature"]})
        if "temperature" in params
        else "temperature=default"
    )


def entry_key(run_row: Any, by: str) -> str:
    """The entry a run belongs to when comparing by `by` (a runs_frame row or a mapping alike).

    version -> "prompt@N", model -> model id, temperature -> "temperature=0.7", param -> the grid
    label ("temperature=0.7, top_p=0.9"; "(no grid)" without one), column -> the column label.
    """
    _check_dimension(by)
    if by == "version":
        version = _get(run_row, "version")
        return version or f"{_get(run_row, 'prompt')}@{_get(run_row, 'version_number')}"
    if by == "model":
        return str(_get(run_row, "model"))
    if by == "temperature":
        return _temperature_label(_get(run_row, "params"))
    if by == "param":
        return _get(run_row, "grid") or NO_GRID
    return str(_get(run_row, "column"))


def _context(info: _RunInfo, by: str) -> tuple:
    """The column components that must be equal for a clean comparison along `by`."""
    if by == "version":
        return (info.model, info.grid)
    if by == "model":
        return (info.version, info.grid)
    if by == "param":
        return (info.version, info.model)
    if by == "temperature":
        rest = params_label({k: v for k, v in info.grid_params.items() if k != "temperature"})
        return (info.version, info.model, rest)
    return ()


@dataclass(frozen=True)
class _RunInfo:
    id: int
    version: str
    model: str
    params: dict[str, Any]
    grid_params: dict[str, Any]
    grid: str
    column: str
    row_key: str
    repeat: int
    example_id: int | None
    output: str
    # What the reader compares: the text with any tool calls as `name(args)` (a reply that only
    # calls tools has empty text, and two different calls must not count as identical).
    shown: str


def _done_runs(session: Session, sweep_id: int) -> dict[int, _RunInfo]:
    """Every done run of the sweep with its column components, by run id."""
    sweep = require_sweep(session, sweep_id)
    keys = grid_keys(sweep)
    stmt = (
        select(
            Run.id,
            Prompt.name,
            PromptVersion.number,
            Run.model,
            Run.params,
            Run.example_id,
            Run.variables,
            Run.repeat_index,
            Run.output,
            Run.tool_calls,
        )
        .join(PromptVersion, PromptVersion.id == Run.version_id)
        .join(Prompt, Prompt.id == PromptVersion.prompt_id)
        .where(Run.sweep_id == sweep_id, Run.status == "done")
        .order_by(col(Run.id))
    )
    out: dict[int, _RunInfo] = {}
    for row in session.exec(stmt):
        rid, prompt, number, model, params, example_id, variables, repeat, output, calls = row
        params = params or {}
        grid_params = {k: params.get(k) for k in keys if k in params}
        grid = params_label(grid_params)
        version = f"{prompt}@{number}"
        row_key = (
            f"example:{example_id}"
            if example_id is not None
            else "vars:" + json.dumps(variables or {}, sort_keys=True, default=str)
        )
        out[rid] = _RunInfo(
            id=rid,
            version=version,
            model=model,
            params=params,
            grid_params=grid_params,
            grid=grid,
            column=column_label(version, model, grid),
            row_key=row_key,
            repeat=repeat,
            example_id=example_id,
            output=output or "",
            shown=outputs.view(output, calls).text if calls else (output or ""),
        )
    return out


@dataclass(frozen=True)
class _Candidate:
    a: _RunInfo
    b: _RunInfo
    entry_a: str
    entry_b: str

    @property
    def pair_id(self) -> str:
        return f"{self.a.id}-{self.b.id}"

    @property
    def identical(self) -> bool:
        return self.a.shown.strip() == self.b.shown.strip()


def _candidates(runs: dict[int, _RunInfo], by: str) -> list[_Candidate]:
    groups: dict[tuple, list[_RunInfo]] = {}
    for info in runs.values():  # ids ascending, so each group is too
        groups.setdefault((info.row_key, info.repeat, _context(info, by)), []).append(info)
    out = []
    for members in groups.values():
        for a, b in combinations(members, 2):
            ea, eb = entry_key(a, by), entry_key(b, by)
            if ea != eb:
                out.append(_Candidate(a, b, ea, eb))
    return out


def _comparable(a: _RunInfo, b: _RunInfo, by: str) -> bool:
    return (
        a.row_key == b.row_key
        and a.repeat == b.repeat
        and _context(a, by) == _context(b, by)
        and entry_key(a, by) != entry_key(b, by)
    )


def dimensions_for(session: Session, *, sweep_id: int) -> list[str]:
    """The dimensions along which this sweep has something to compare (two or more entries)."""
    runs = list(_done_runs(session, sweep_id).values())
    grid_keys = {k for r in runs for k in r.grid_params}
    out = []
    for by in DIMENSIONS:
        entries = {entry_key(r, by) for r in runs}
        if by == "param" and grid_keys <= {"temperature"}:
            continue  # the same comparison as "temperature"
        if len(entries) >= 2:
            out.append(by)
    return out
