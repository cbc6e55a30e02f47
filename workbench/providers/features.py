"""Structured output and tools on the completion path: can this model do it, and what did it call.

Before a call that asks for a JSON Schema reply or offers tools, `check_support` refuses a model
that cannot do it with a clear, fatal `ProviderError` (kind "unsupported"), so the cell fails once
with a message instead of returning free text. What a model supports comes from the models file
(`supports_tools`, `supports_response_schema`), else from LiteLLM's model table for the models it
knows; a model it does not know (a custom endpoint) is called, and a 400 that names the feature is
reported the same way (`unsupported_error`).

`ToolCallParts` puts the streamed pieces of tool calls back together; `tool_calls_of` reads them
from a whole message. A call is stored as {"id", "name", "arguments"}, arguments parsed when they
are JSON (else the raw text, so nothing the model said is lost).
"""

from __future__ import annotations

import json
from typing import Any

from workbench.errors import ProviderError
from workbench.providers.catalog import ModelEntry

# Words in a provider's 400 message that say the request used a feature the model lacks: one
# naming the feature and one saying it is not there ("'tools' is not supported with this model").
_TOOL_WORDS = ("tool", "function call", "function_call", "functions")
_SCHEMA_WORDS = ("response_format", "json_schema", "structured output", "response format", "json mode")
_LACKING = ("support", "not available", "not enabled", "not allowed")


def asks_for_tools(params: dict[str, Any]) -> bool:
    """True when a call offers the model tools it may call."""
    return bool(params.get("tools")) and params.get("tool_choice") != "none"


def asks_for_schema(params: dict[str, Any]) -> bool:
    """True when a call asks for a reply that follows a JSON Schema."""
    rf = params.get("response_format")
    return isinstance(rf, dict) and rf.get("type") == "json_schema"


def supports(entry: ModelEntry, feature: str) -> bool | None:
    """Whether a model supports "tools" or "response_schema": True, False, or None (unknown)."""
    declared = entry.supports_tools if feature == "tools" else entry.supports_response_schema
    if declared is not None:
        return declared
    from workbench.providers.completion import ensure_litellm

    litellm = ensure_litellm()
    try:
        litellm.get_model_info(entry.id)  # raises for a model LiteLLM's table does not know
    except Exception:  # noqa: BLE001 - several exception types for an unmapped model
        return None
    check = litellm.supports_function_calling if feature == "tools" else litellm.supports_response_schema
    try:
        return bool(check(model=entry.id))
    except Exception:  # noqa: BLE001
        return None


def unsupported(entry: ModelEntry, feature: str, detail: str = "") -> ProviderError:
    """The fatal error of a cell whose model cannot do what its version asks."""
    what = "call tools" if feature == "tools" else "reply in a JSON Schema (structured output)"
    asks = "offers tools" if feature == "tools" else "asks for a JSON Schema reply"
    extra = f" ({detail})" if detail else ""
    return ProviderError(
        f"{entry.id} cannot {what}, and this version {asks}: pick a model that supports it, or remove "
        f"it from the version{extra}.",
        kind="unsupported",
        transient=False,
        status_code=400,
    )


def check_support(entry: ModelEntry, params: dict[str, Any]) -> None:
    """Refuse (ProviderError, fatal) a call asking for a feature the model is known to lack."""
    if asks_for_tools(params) and supports(entry, "tools") is False:
        raise unsupported(entry, "tools")
    if asks_for_schema(params) and supports(entry, "response_schema") is False:
        raise unsupported(entry, "response_schema")


def unsupported_error(entry: ModelEntry, params: dict[str, Any], error: ProviderError) -> ProviderError:
    """A provider's 400 that names a feature this call asked for, reported as "unsupported"."""
    if error.transient or error.status_code not in (400, 422):
        return error
    lower = str(error).lower()
    if not any(w in lower for w in _LACKING):
        return error  # e.g. a malformed conversation: a 400 about tool messages, not about support
    for feature, asked, words in (
        ("tools", asks_for_tools(params), _TOOL_WORDS),
        ("response_schema", asks_for_schema(params), _SCHEMA_WORDS),
    ):
        if asked and any(w in lower for w in words):
            out = unsupported(entry, feature, str(error))
            out.request_id = error.request_id
            return out
    return error


def parse_arguments(text: str | None) -> Any:
    """A tool call's arguments: the parsed JSON, or the text as is when it is not JSON."""
    if text is None or not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def tool_calls_of(message: Any) -> list[dict[str, Any]]:
    """The tool calls of a whole (non-streamed) reply message, as stored on a Run."""
    out = []
    for call in _field(message, "tool_calls") or []:
        fn = _field(call, "function")
        out.append(
            {
                "id": _field(call, "id"),
                "name": _field(fn, "name"),
                "arguments": parse_arguments(_field(fn, "arguments")),
            }
        )
    return out


class ToolCallParts:
    """Tool calls reassembled from streamed deltas (id and name first, arguments in pieces)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: Any) -> bool:
        """Take a chunk's `delta.tool_calls`; True when it held any."""
        if not deltas:
            return False
        for i, delta in enumerate(deltas):
            index = _field(delta, "index")
            call = self._calls.setdefault(i if index is None else index, {"id": None, "name": "", "args": []})
            call["id"] = call["id"] or _field(delta, "id")
            fn = _field(delta, "function")
            if fn is not None:
                call["name"] = call["name"] or _field(fn, "name") or ""  # sent once, with the id
                call["args"].append(_field(fn, "arguments") or "")
        return True

    def calls(self) -> list[dict[str, Any]]:
        """The calls so far, in index order, as stored on a Run."""
        return [
            {"id": c["id"], "name": c["name"], "arguments": parse_arguments("".join(c["args"]))}
            for _, c in sorted(self._calls.items())
        ]
