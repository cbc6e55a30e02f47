"""MLflow, optional: sweeps as runs and prompt versions in the Prompt Registry, where MLflow users look.

Nothing here runs unless a tracking URI is given or `MLFLOW_TRACKING_URI` is set; mlflow itself
(the client side needs only `mlflow-skinny`) is imported when a connection is made, never at import.

- `client`: the tracking URI, the reachability check, the MlflowClient, errors in workbench words,
  links into the MLflow UI, and table / text artifacts written in place.
- `sweep_data`: a sweep read from the database as plain data: the parent run, one record per column
  (params, summary metrics, outputs table, messages), leaderboards and paired comparisons.
- `sweeps`: `log_sweep`, which writes that record as a parent run with one child run per column and
  finds those runs again by tags, so logging twice updates instead of duplicating.
- `convert`: versions <-> MLflow chat prompts: templates kept as Jinja (and the marker that makes
  MLflow render expressions with Jinja), params <-> model config, prompt names, label aliases.
- `prompts`: `push` (a version as a registered prompt version, labels as aliases, lineage and
  evidence as tags) and `pull` (a registered version as a workbench version, source "mlflow").
"""
