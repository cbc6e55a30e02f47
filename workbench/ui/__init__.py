"""The Streamlit layer: the only package (with app.py and pages/) that imports streamlit.

Each page in pages/ is a five-line shim that calls `render()` of its module here.

- `common`: page set-up (config, migrations, background runner) and the one error boundary.
- `background`: the process-wide runner that executes sweeps and optimizations off the script thread.
- `home`: what is in the database, which models work now, a quick start.
- `prompts`: edit messages, preview, save versions, diff, labels.
- `prompts_structured`: the Prompts page's structured output and tools editor (JSON Schema, tools,
  tool choice) and its preview: chat bubbles with conversation placeholders expanded.
- `datasets`: import, edit and export datasets.
- `run`: build a sweep, see its size and cost, watch it run, cancel or resume it.
- `compare`: outputs side by side, the per-column summary and the charts.
- `compare_charts`: Compare's Charts tab: tokens and cost per column, latency boxes, scores (from aggregates).
- `compare_diff`: Compare's Difference tab: paired differences against a baseline column.
- `compare_consistency`: pass^k, pass@k and flaky rows over repeats in Compare's summary.
- `outputs_view`: how Compare and Rate show an output: JSON pretty-printed, tool calls as `name(args)`, the
  per-field table of two JSON outputs.
- `rate`: blind A/B votes and the leaderboard they give.
- `identity`: who rates: a typed name, or the signed-in user when sign-in (`st.login`) is configured.
- `mlflow`: "Send to MLflow" on Compare (a sweep) and Prompts (a version), shown only with a tracking URI.
- `optimize`: plan, run and save a DSPy optimization.
- `export`: download versions, runs and ratings; import an export.
"""
