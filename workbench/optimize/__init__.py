"""DSPy optimization of a prompt version into a better, plain version.

- `export`: the exported version's messages (instructions + demo block around the user's template).
- `adapter`: the DSPy signature/program of a version and the adapter that renders it exactly.
- `engine`: the call budget (cap, cancel, cost) and the DSPy engine over the completion layer.
- `metrics`: 0-1 metrics shaped for DSPy (five arguments, no truthy Predictions).
- `optimizers`: the menu, defaults and call estimates.
- `run`: plan and create an optimization (no DSPy import).
- `worker`: run one optimization (imports DSPy).
- `results`: cancel, read, save as a version, re-score through a sweep.
"""
