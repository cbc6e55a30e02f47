"""Prompt versions as released artifacts.

- `winners`: the winning versions of a sweep (leaderboard, else the best column on a metric that
  can pick a winner and every column not significantly worse, tied) and the evidence they carry.
- `export`: the one way out: versions, runs and ratings as JSON (schema in `schemas/`) or CSV,
  with API keys redacted and formula-like CSV cells neutralised.
- `sweep_rows`: a sweep as flat rows, one per cell and one per vote (what `export` writes).
- `imports`: read a JSON export back, all or nothing, never overwriting.
- `gate`: the CI release gate: a paired test with a margin of a candidate against a baseline on a
  dataset (better / not worse / worse / inconclusive).
"""
