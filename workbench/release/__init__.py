"""Prompt versions as released artifacts.

- `winners`: the winning version of a sweep (leaderboard, else the best mean of a metric that can
  pick a winner) and the evidence a release carries.
- `export`: the one way out: versions, runs and ratings as JSON (schema in `schemas/`) or CSV,
  with API keys redacted and formula-like CSV cells neutralised.
- `sweep_rows`: a sweep as flat rows, one per cell and one per vote (what `export` writes).
- `imports`: read a JSON export back, all or nothing, never overwriting.
- `gate`: the CI release gate (candidate vs baseline on a dataset).
"""
