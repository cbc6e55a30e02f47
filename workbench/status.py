"""What is in the database, for the home page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, func, select

from workbench.models import Dataset, Example, Optimization, Prompt, PromptVersion, Rating, Run, Sweep


@dataclass(frozen=True)
class Counts:
    """Row counts of the main tables."""

    prompts: int
    versions: int
    datasets: int
    examples: int
    sweeps: int
    runs: int
    ratings: int
    optimizations: int


def counts(session: Session) -> Counts:
    """Count prompts, versions, datasets, rows, sweeps, runs, ratings and optimizations."""

    def n(model: type) -> int:
        return int(session.exec(select(func.count()).select_from(model)).one())

    return Counts(
        prompts=n(Prompt),
        versions=n(PromptVersion),
        datasets=n(Dataset),
        examples=n(Example),
        sweeps=n(Sweep),
        runs=n(Run),
        ratings=n(Rating),
        optimizations=n(Optimization),
    )
