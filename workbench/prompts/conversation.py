"""Conversations in a prompt: a `placeholder` message expands to the messages a variable holds.

A version's message list may hold, besides Jinja messages, an entry `{"placeholder": "history"}`
(stored as `{"role": "placeholder", "content": "history"}`). At render time it becomes the
messages in the variable `history`: a list (or its JSON text, as a dataset column holds it) of

    {"role": "system" | "user" | "assistant", "content": "..."}
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "name": "f", "arguments": {...}}]}
    {"role": "tool", "tool_call_id": "call_1", "content": "..."}

Tool calls may also be written in OpenAI's shape (`{"id", "type": "function", "function": {"name",
"arguments": "<json>"}}`); they are normalised to it. The messages are data: they are never rendered
as Jinja. A malformed list is a `TemplateError` naming the variable, the row (the render context)
and the item.
"""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.errors import MissingVariableError, TemplateError, json_problem

PLACEHOLDER = "placeholder"
HISTORY_ROLES = ("system", "user", "assistant", "tool")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ALLOWED_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls"},
    "tool": {"role", "content", "tool_call_id", "name"},
}


def is_placeholder(message: dict[str, Any]) -> bool:
    """True for a placeholder entry (stored form)."""
    return message.get("role") == PLACEHOLDER


def placeholder_entry(raw: dict[str, Any], index: int) -> dict[str, str] | None:
    """The stored form of a placeholder entry written either way, or None when `raw` is no placeholder.

    Raises ValueError with the problem when the variable name is not a plain identifier.
    """
    if PLACEHOLDER in raw and "role" not in raw:
        name = raw[PLACEHOLDER]
    elif str(raw.get("role", "")).strip().lower() == PLACEHOLDER:
        name = raw.get("content")
    else:
        return None
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"Message {index + 1} is a placeholder; its variable name {name!r} must be a plain name "
            "(letters, digits and '_', not starting with a digit)."
        )
    return {"role": PLACEHOLDER, "content": name}


def placeholder_names(messages: list[dict[str, Any]]) -> list[str]:
    """The variables the placeholders of a message list read, in order."""
    return [m["content"] for m in messages if is_placeholder(m)]


def expand(
    name: str, variables: dict[str, Any], *, message_index: int | None = None, context: str = ""
) -> list[dict[str, Any]]:
    """The messages variable `name` holds, checked and normalised (see the module doc)."""
    if name not in variables:
        raise MissingVariableError(name, context=context)
    return history_messages(variables[name], name=name, message_index=message_index, context=context)


def history_messages(
    value: Any, *, name: str = "history", message_index: int | None = None, context: str = ""
) -> list[dict[str, Any]]:
    """Check a conversation (a list, or JSON text of one) and return it as chat messages."""
    where = f"The variable '{name}'" + (f" {context}" if context else "")

    def fail(problem: str) -> TemplateError:
        return TemplateError(f"{where} {problem}", message_index=message_index)

    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise fail(f"is not a JSON list of messages: {json_problem(exc)}.") from None
    if not isinstance(value, list):
        raise fail(f"must hold a list of messages, not {type(value).__name__}.")
    out: list[dict[str, Any]] = []
    pending: dict[str, str] = {}  # tool call id -> function name, waiting for its result
    for i, item in enumerate(value):
        item_where = f"item {i + 1}"
        if not isinstance(item, dict):
            raise fail(f"{item_where} must be an object with 'role' and 'content'.")
        role = item.get("role")
        if role not in HISTORY_ROLES:
            raise fail(f"{item_where} has role {role!r}; use one of {', '.join(HISTORY_ROLES)}.")
        extra = sorted(set(item) - _ALLOWED_KEYS[role])
        if extra:
            raise fail(f"{item_where} ({role}) has unknown key(s) {', '.join(extra)}.")
        if pending and role != "tool":
            raise fail(f"{item_where}: {_unanswered(pending)} before this {role} message.")
        msg: dict[str, Any] = {"role": role}
        if role == "tool":
            call_id = item.get("tool_call_id")
            if call_id is None and pending:  # hand-written rows: the oldest waiting call (of that name)
                named = [cid for cid, fn in pending.items() if fn == item.get("name")]
                call_id = (named or list(pending))[0]
            if not isinstance(call_id, str) or call_id not in pending:
                known = f" (waiting: {', '.join(pending)})" if pending else " (no tool call is waiting)"
                raise fail(
                    f"{item_where} answers tool call {call_id!r}, which no earlier assistant made{known}."
                )
            pending.pop(call_id)
            msg["tool_call_id"] = call_id
            msg["content"] = _tool_content(item.get("content"))
        elif role == "assistant" and item.get("tool_calls"):
            calls = _tool_calls(item["tool_calls"], i, fail)
            pending.update({c["id"]: c["function"]["name"] for c in calls})
            content = item.get("content")
            if content is not None and not isinstance(content, str):
                raise fail(f"{item_where}: content must be text or null.")
            msg["content"] = content or None
            msg["tool_calls"] = calls
        else:
            content = item.get("content")
            if not isinstance(content, str):
                raise fail(f"{item_where} ({role}) needs text content.")
            msg["content"] = content
        if isinstance(item.get("name"), str):
            msg["name"] = item["name"]
        out.append(msg)
    if pending:
        raise fail(f"ends while {_unanswered(pending)}.")
    return out


def _unanswered(pending: dict[str, str]) -> str:
    calls = ", ".join(f"{name} ({cid})" for cid, name in pending.items())
    return f"the tool call(s) {calls} have no tool result"


def _tool_content(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def _tool_calls(raw: Any, index: int, fail) -> list[dict[str, Any]]:
    where = f"item {index + 1}"
    if not isinstance(raw, list):
        raise fail(f"{where}: tool_calls must be a list.")
    calls = []
    for k, call in enumerate(raw):
        if not isinstance(call, dict):
            raise fail(f"{where}, tool call {k + 1} must be an object with a name and arguments.")
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise fail(f"{where}, tool call {k + 1} has no function name.")
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                json.loads(args or "{}")
            except json.JSONDecodeError:
                raise fail(f"{where}, tool call {k + 1} ({name}): arguments are not valid JSON.") from None
            text = args or "{}"
        elif isinstance(args, dict):
            text = json.dumps(args, ensure_ascii=False)
        else:
            raise fail(f"{where}, tool call {k + 1} ({name}): arguments must be an object.")
        call_id = call.get("id")
        if call_id is None:
            call_id = f"call_{index + 1}_{k + 1}"  # stable, so the cache key of a cell is too
        if not isinstance(call_id, str):
            raise fail(f"{where}, tool call {k + 1} ({name}): id must be text.")
        calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": text}})
    return calls
