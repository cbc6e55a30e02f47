"""Statistics for decisions: is one column really better than another on the same rows?

Pure numpy/scipy/pandas and no UI or LLM library; only `sizing` reads the database (a prompt's
finished sweeps).

- `paired`: compare two aligned per-row columns (exact McNemar + Tango interval for 0/1 values,
  sign-flip permutation + t interval otherwise), Holm adjustment, the gate verdict (better / not
  worse / worse / inconclusive) and the Compare tab's word.
- `consistency`: pass^k, pass@k and flaky rows of one column over repeats.
- `power`: rows needed to detect a given difference, from observed discordance or spread.
- `columns`: the bridge from a sweep's runs frame (summary.runs_frame) to per-row means per column,
  column lookup by label, consistency per column and all-against-a-baseline comparisons.
- `sizing`: the rows a sweep needs, from a finished sweep of the same prompt (the Run page's
  "your dataset has 12 rows; a 5-point difference needs about 140").
"""
