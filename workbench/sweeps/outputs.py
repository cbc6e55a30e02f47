"""How a run's output reads: JSON pretty-printed, tool calls as `name(args)`, per-field JSON diffs.

Pure functions of a run's `output` text and `tool_calls` (see `models.Run`), shared by the scorers
(`scoring`), the summaries and the UI's Compare and rating screens, so every place shows and
compares an output the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
MISSING = object()  # a field one side does not have


def strip_fences(text: str) -> str:
    """The text inside a ```json ... ``` fence, or the text itself."""
    m = _FENCE.match(text or "")
    return m.group(1) if m else (text or "")


@dataclass(frozen=True)
class ParsedJSON:
    """An output read as JSON: ok with its value, or the parse error."""

    ok: bool
    value: Any = None
    error: str | None = None


def parse_json(text: str | None) -> ParsedJSON:
    """Parse an output as JSON (inside a Markdown fence or not)."""
    if text is None or not text.strip():
        return ParsedJSON(False, error="empty output")
    try:
        return ParsedJSON(True, json.loads(strip_fences(text)))
    except (json.JSONDecodeError, ValueError) as exc:
        msg = getattr(exc, "msg", None) or str(exc)
        return ParsedJSON(False, error=msg)


def pretty_json(value: Any) -> str:
    """Indented JSON text with keys in their own order (non-ASCII kept)."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def tool_call_args(call: dict[str, Any]) -> Any:
    """A stored tool call's arguments (a dict when they were JSON, else the raw text)."""
    return call.get("arguments")


def format_tool_call(call: dict[str, Any]) -> str:
    """`name(args)`: `get_weather({"city": "Paris"})`; arguments that are not JSON are shown raw."""
    args = tool_call_args(call)
    if isinstance(args, str):
        shown = args
    elif args in (None, {}):
        shown = ""
    else:
        shown = json.dumps(args, ensure_ascii=False, separators=(", ", ": "))
    return f"{call.get('name', '?')}({shown})"


def format_tool_calls(calls: list[dict[str, Any]] | None, sep: str = "\n") -> str:
    """Every tool call of a run as `name(args)`, one per line (or joined by `sep`); '' when none."""
    return sep.join(format_tool_call(c) for c in calls or [])


def message_text(message: dict[str, Any]) -> str:
    """A rendered chat message as text for a chat bubble: its content, then its tool calls as
    `name(args)` lines (a tool result is its content; see `prompts.conversation` for the shapes)."""
    calls = [
        format_tool_call({"name": c["function"]["name"], "arguments": c["function"].get("arguments")})
        for c in message.get("tool_calls") or []
    ]
    text = message.get("content") or ""
    return "\n".join([text, *calls] if text else calls)


@dataclass(frozen=True)
class OutputView:
    """What to show for one run: `kind` is "json" (text pretty-printed), "tool_calls" or "text".

    `text` is the display text (pretty JSON, the `name(args)` lines after any text, or the text as
    is); `value` holds the parsed JSON for kind "json".
    """

    kind: str
    text: str
    value: Any = None


def view(output: str | None, tool_calls: list[dict[str, Any]] | None = None) -> OutputView:
    """The display form of a run's output: tool calls first, then JSON, else plain text."""
    if tool_calls:
        calls = format_tool_calls(tool_calls)
        text = (output or "").strip()
        return OutputView("tool_calls", f"{text}\n{calls}" if text else calls)
    if output is not None and output.lstrip()[:1] in ("{", "[", "`"):
        parsed = parse_json(output)
        if parsed.ok and isinstance(parsed.value, dict | list):
            return OutputView("json", pretty_json(parsed.value), parsed.value)
    return OutputView("text", output or "")


# --- fields -------------------------------------------------------------------------------------


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf fields of a JSON value by path: {"a": {"b": 1}, "c": [1]} -> {"a.b": 1, "c": [1]}.

    Objects are walked; lists and scalars are leaves (a list is compared as a whole). A value that
    is not an object is one field with the path "$".
    """
    if not isinstance(value, dict):
        return {prefix or "$": value}
    if not value and prefix:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, sub in value.items():
        out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
    return out


@dataclass(frozen=True)
class FieldDiff:
    """One field of a two-sided JSON comparison: status is same | changed | only_a | only_b."""

    path: str
    status: str
    a: Any = None
    b: Any = None


def json_field_diff(a: Any, b: Any) -> list[FieldDiff]:
    """Field-by-field differences between two JSON values, in a's field order then b's new ones.

    Takes parsed values or output texts (a text that does not parse is one field "$").
    """
    fa, fb = flatten(_as_json(a)), flatten(_as_json(b))
    out = []
    for path in list(fa) + [p for p in fb if p not in fa]:
        va, vb = fa.get(path, MISSING), fb.get(path, MISSING)
        if va is MISSING:
            out.append(FieldDiff(path, "only_b", None, vb))
        elif vb is MISSING:
            out.append(FieldDiff(path, "only_a", va, None))
        else:
            out.append(FieldDiff(path, "same" if values_equal(va, vb, loose=False) else "changed", va, vb))
    return out


def _as_json(value: Any) -> Any:
    if isinstance(value, str):
        parsed = parse_json(value)
        return parsed.value if parsed.ok else value
    return value


def values_equal(a: Any, b: Any, *, loose: bool = True) -> bool:
    """JSON equality; numbers compare by value (1 == 1.0, not True). `loose` also compares strings
    after normalising case, accents' compatibility forms, punctuation and spacing."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        if loose:
            from workbench.sweeps.scoring import normalize

            return normalize(a) == normalize(b)
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y, loose=loose) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], loose=loose) for k in a)
    return a == b


def field_scores(actual: Any, expected: Any) -> dict[str, float]:
    """Per expected field: 1.0 when the actual value equals it (loosely, see `values_equal`), else 0.

    Fields the actual value has beyond the expected ones do not count.
    """
    fa = flatten(actual)
    return {
        path: float(path in fa and values_equal(fa[path], value)) for path, value in flatten(expected).items()
    }
