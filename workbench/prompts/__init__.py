"""Prompts: Jinja chat templates saved as immutable, labelled versions.

- `store`: prompts, versions (content hash, lineage), labels with history, `NAME@N` / `NAME:label` refs.
- `templates`: the sandboxed Jinja renderer (StrictUndefined, size limits, line/column errors).
- `sandbox`: the render budget (steps, wall time, sizes) every render spends; a hostile template stops.
- `conversation`: `placeholder` messages that expand to a conversation held by a variable (with
  tool calls and tool results), checked item by item.
- `structured`: a version's response format (JSON Schema), tools and tool choice: checked, normalised.
- `diff`: side-by-side and unified diffs between two versions.
- `files`: prompt files (JSON / YAML messages + params + structured settings, or a `.j2` template).
- `examples`: the bundled example prompts and datasets under `data/examples/`.
"""
