"""Prompt versions as released artifacts.

- `winners`: the winning version of a sweep and the evidence a release carries.
- `export`: versions, runs and ratings as JSON (schema in `schemas/`) or CSV.
- `imports`: read a JSON export back, all or nothing, never overwriting.
- `gate`: the CI release gate (candidate vs baseline on a dataset).
"""
