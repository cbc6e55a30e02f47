"""Fan-out sweeps: plan a grid of cells, execute them reliably, score and summarise them.

- `plan`: validate a SweepSpec and write every cell as a pending Run (with cache hits filled in).
- `claims`: hand pending cells to executors without two executors running one cell.
- `execute`: the async executor (bounded concurrency, retries, cancel, circuit breaker).
- `scoring`: automatic scorers stored as Score rows.
- `summary`: per-column aggregates and progress.
"""
