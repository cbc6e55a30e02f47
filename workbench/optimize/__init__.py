"""DSPy optimization of a prompt version into a better, plain version.

- `messages`: program -> messages: the proposed version's messages (instructions + a demo block
  around the user's template), built the same way for every call DSPy scores.
- `adapter`: the DSPy signature/program of a version and the adapter that renders it exactly.
- `engine`: the call budget (cap, cancel, cost) and the DSPy engine over the completion layer.
- `metrics`: 0-1 metrics shaped for DSPy (five arguments, no truthy Predictions), each tied to
  the sweep metric (`workbench.metrics`) that re-scores the saved version with the same number.
- `optimizers`: the menu, defaults and call estimates.
- `run`: plan and create an optimization (no DSPy import).
- `worker`: run one optimization (imports DSPy).
- `progress`: the run's reporter (progress, log, calls, cost to the row) and best-program callback.
- `capture`: DSPy's prints, progress bars and log records during a run go to the run's log, never
  to the terminal or stdout.
- `decision`: the paired test of the proposal against its input on the held-out rows, and whether
  the proposal is offered for saving (only when better; otherwise only as a recorded override).
- `recovery`: optimizations of a dead process: resumed with calls and cost carried over (at server
  start, or on request), or failed saying what was lost; start again with the same settings.
- `results`: cancel, read, save as a version (with its lineage record), summary.
- `rescore`: re-score a saved version with a sweep, paired with its input version on the same rows.
- `dspy_env`: import DSPy offline with its cache switched off.
"""
