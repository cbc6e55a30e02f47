"""Fan-out sweeps: plan a grid of cells, execute them reliably, score and summarise them.

- `plan`: validate a SweepSpec and write every cell as a pending Run (with cache hits filled in);
  `require_sweep` is the one place that says a sweep does not exist.
- `claims`: hand pending cells to executors without two executors running one cell.
- `execute`: the async executor: claims cells, runs them with bounded concurrency per model,
  scores them and reports what it did.
- `processes`: one sweep on several processes (worker processes started and supervised by the
  sweep's own process), so a big sweep uses every core; `run_sweep` is the entry point.
- `worker`: a worker process's side of that (`python -m workbench worker --standby`).
- `standby`: worker processes started before their sweep (while it is planned or previewed), so
  their slow start overlaps other work; `WorkerProcess` is the one handle on a worker process.
- `limits`: the sweep's concurrency limits, split into shares that add up to them across processes.
- `retry`: the one retry loop every provider call of a sweep goes through (cells and judge calls):
  backoff and Retry-After, the circuit breaker, cancel and request counting.
- `circuit`: the auth circuit breaker (stop calling a model whose key is refused).
- `writes`: batched writes of results and scores, flushed as soon as a result exists.
- `scoring`: the automatic scorers (pure functions) and the judge's rubric and reply parsing.
- `outputs`: how an output reads: JSON pretty-printed, tool calls as `name(args)`, per-field
  JSON diffs and scores (shared by the scorers, summaries and the UI).
- `judge`: LLM-judge scoring calls of a running sweep.
- `lifecycle`: a sweep's states: start, finish, cancel, resume, recovery after a crash.
- `summary`: progress, per-cell frames and per-column aggregates.
"""
