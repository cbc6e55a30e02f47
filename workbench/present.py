"""How numbers read, in the CLI and the UI alike: one place for money, counts, times and "unknown".

The rule these functions keep: a missing price is "unknown", never a silent $0, and a missing
number (None or NaN) is a dash, never "None" or "nan".
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

DASH = "–"
UNKNOWN = "unknown"


def is_missing(value: Any) -> bool:
    """None, NaN or an infinity: a value that has no number to show."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def number(value: Any, spec: str = ".3f", *, prefix: str = "", suffix: str = "", dash: str = DASH) -> str:
    """A number formatted with `spec`; missing values show as `dash`, text as itself."""
    if is_missing(value):
        return dash
    try:
        return f"{prefix}{float(value):{spec}}{suffix}"
    except (TypeError, ValueError):
        return str(value)


def money(value: Any, digits: int = 4) -> str:
    """USD with `digits` decimals; an unknown price reads "unknown" (never $0)."""
    return UNKNOWN if is_missing(value) else f"${float(value):.{digits}f}"


def ms(value: Any, *, dash: str = DASH) -> str:
    """Milliseconds as a whole number."""
    return number(value, ".0f", dash=dash)


def seconds(value: Any, *, dash: str = DASH) -> str:
    """A duration in seconds, or minutes and seconds past a minute."""
    if is_missing(value):
        return dash
    s = float(value)
    return f"{s:.0f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


def percent(value: Any, digits: int = 0, *, dash: str = DASH) -> str:
    """A share (0-1) as a percentage."""
    return number(None if is_missing(value) else float(value) * 100, f".{digits}f", suffix="%", dash=dash)


def score(value: Any, *, dash: str = DASH) -> str:
    """A metric value or mean (three decimals)."""
    return number(value, ".3f", dash=dash)


def json_safe(value: Any) -> Any:
    """A value fit for JSON: numpy scalars become Python numbers, NaN and infinities null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def iso_utc(moment: datetime | None) -> str | None:
    """A timestamp as ISO 8601 in UTC (what every export writes); None stays None.

    SQLite hands back naive datetimes; the workbench stores UTC, so a naive value is read as UTC.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()
