"""Plain-text tables for the CLI (no dependencies beyond `workbench.present`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workbench import present


def fmt(value: Any) -> str:
    """A cell as text: a missing value as a dash, floats trimmed to six significant digits."""
    if value is None or isinstance(value, float):
        return present.number(value, ".6g")
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """Left-aligned columns separated by two spaces; long cells are cut with an ellipsis."""
    cells = [[fmt(c).replace("\n", " ") for c in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
