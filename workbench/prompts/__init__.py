"""Prompts: Jinja chat templates saved as immutable, labelled versions.

- `store`: prompts, versions (content hash, lineage), labels with history, `NAME@N` / `NAME:label` refs.
- `templates`: the sandboxed Jinja renderer (StrictUndefined, size limits, line/column errors).
- `sandbox`: the render budget (steps, wall time, sizes) every render spends; a hostile template stops.
- `diff`: side-by-side and unified diffs between two versions.
- `files`: prompt files (JSON / YAML messages + params, or a `.j2` template).
- `examples`: the bundled example prompts and datasets under `data/examples/`.
"""
