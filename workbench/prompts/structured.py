"""Structured output and tools of a version: its `response_format`, `tools` and `tool_choice`.

A version may ask for a JSON reply (`response_format`: a JSON Schema, strict or not, or plain JSON
mode) and offer the model functions to call (`tools`, each a name, a description and JSON-Schema
parameters, with `tool_choice`). They are stored normalised in OpenAI's shape, which LiteLLM
translates for every provider:

    response_format = {"type": "json_schema",
                       "json_schema": {"name": "reply", "schema": {...}, "strict": true}}
                    | {"type": "json_object"}
    tools = [{"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}]
    tool_choice = "auto" | "none" | "required" | {"type": "function", "function": {"name": ...}}

The `check_*` functions accept the shorter spellings people write (a bare JSON Schema, a tool without
the `function` wrapper, a tool's name as `tool_choice`) and return the normal form; the `*_from_text`
functions parse an editor's JSON text first. Every problem is a `StructuredError` that names the
setting (`field`), where in it the problem is (`path`, and `line`/`column` for JSON that does not
parse) and what is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from workbench.errors import ValidationError, json_problem

FIELDS = ("response_format", "tools", "tool_choice")
TOOL_CHOICES = ("auto", "none", "required")
DEFAULT_SCHEMA_NAME = "response"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class StructuredError(ValidationError):
    """A response format, tool list or tool choice that does not fit.

    `field` is "response_format", "tools" or "tool_choice"; `path` locates the problem inside the
    value (`$.json_schema.schema.properties.city`); `line`/`column` locate a JSON syntax error.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        path: str = "$",
        line: int | None = None,
        column: int | None = None,
    ):
        self.path = path
        self.line = line
        self.column = column
        self.detail = message
        where = f" at {path}" if path != "$" else ""
        super().__init__(f"{_TITLES[field]}{where}: {message}", field=field)


_TITLES = {"response_format": "Response format", "tools": "Tools", "tool_choice": "Tool choice"}


@dataclass(frozen=True)
class Structured:
    """A version's structured-output settings, normalised; all None when it has none."""

    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    @classmethod
    def check(cls, response_format: Any = None, tools: Any = None, tool_choice: Any = None) -> Structured:
        """Validate and normalise the three settings together (tool_choice must name a tool)."""
        checked_tools = check_tools(tools)
        return cls(
            check_response_format(response_format),
            checked_tools,
            check_tool_choice(tool_choice, checked_tools),
        )

    @property
    def empty(self) -> bool:
        """True when the version asks for neither structured output nor tools."""
        return self.response_format is None and self.tools is None and self.tool_choice is None

    @property
    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema replies must follow, or None (no format, or JSON mode without a schema)."""
        return schema_of(self.response_format)

    def request_params(self) -> dict[str, Any]:
        """The completion keyword arguments these settings add (none for an empty one)."""
        return {k: v for k, v in self.to_dict().items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The three settings by name (None when unset)."""
        return {"response_format": self.response_format, "tools": self.tools, "tool_choice": self.tool_choice}


def of_version(version: Any) -> Structured:
    """The settings a stored PromptVersion carries (already normalised when it was saved)."""
    return Structured(
        getattr(version, "response_format", None),
        getattr(version, "tools", None),
        getattr(version, "tool_choice", None),
    )


def schema_of(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON Schema inside a (normalised or stored) response_format, or None."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


# --- parsing editor text ------------------------------------------------------------------------


def parse_json_text(text: str | None, *, field: str) -> Any:
    """Parse JSON text from an editor; None for blank text; a syntax error gives line and column."""
    if text is None or not str(text).strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StructuredError(
            f"not valid JSON: {json_problem(exc)}.",
            field=field,
            line=exc.lineno,
            column=exc.colno,
        ) from None


def response_format_from_text(
    text: str | None, *, strict: bool | None = None, name: str | None = None
) -> dict[str, Any] | None:
    """A response_format from editor text: a JSON Schema or a whole response_format object.

    `strict` and `name`, when given, override what the text says. Blank text means no format.
    """
    value = parse_json_text(text, field="response_format")
    if value is None:
        return None
    return check_response_format(value, strict=strict, name=name)


def tools_from_text(text: str | None) -> list[dict[str, Any]] | None:
    """Tools from editor text: a JSON list of functions (or one function). Blank text means none."""
    return check_tools(parse_json_text(text, field="tools"))


# --- response_format ----------------------------------------------------------------------------


def check_response_format(
    value: Any, *, strict: bool | None = None, name: str | None = None
) -> dict[str, Any] | None:
    """Validate and normalise a response_format (see the module doc); None stays None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StructuredError(
            "give a JSON Schema object (or a response_format object).", field="response_format"
        )
    kind = value.get("type")
    if kind == "json_object" and "json_schema" not in value and "schema" not in value:
        if strict:
            raise StructuredError(
                "strict needs a schema; JSON mode without a schema cannot be strict.", field="response_format"
            )
        return {"type": "json_object"}
    if kind == "json_schema":
        inner = value.get("json_schema")
        if not isinstance(inner, dict):
            raise StructuredError(
                "'json_schema' must be an object with a 'schema'.",
                field="response_format",
                path="$.json_schema",
            )
        base, where = inner, "$.json_schema"
    elif "schema" in value and not _looks_like_schema(value):
        base, where = value, "$"  # {"name": ..., "schema": {...}, "strict": ...}
    else:
        base, where = {"schema": value}, None  # a bare JSON Schema
    schema = base.get("schema")
    schema_path = f"{where}.schema" if where else "$"
    if not isinstance(schema, dict):
        raise StructuredError("the schema must be a JSON object.", field="response_format", path=schema_path)
    _check_schema(schema, field="response_format", path=schema_path)
    chosen_name = name if name is not None else base.get("name", DEFAULT_SCHEMA_NAME)
    if not isinstance(chosen_name, str) or not _NAME_RE.match(chosen_name):
        raise StructuredError(
            f"the schema name {chosen_name!r} must be 1-64 letters, digits, '_' or '-'.",
            field="response_format",
            path=f"{where or '$'}.name",
        )
    is_strict = strict if strict is not None else base.get("strict", False)
    if not isinstance(is_strict, bool):
        raise StructuredError(
            "strict must be true or false.", field="response_format", path=f"{where or '$'}.strict"
        )
    if is_strict:
        problem = strict_problem(schema)
        if problem:
            path, message = problem
            raise StructuredError(message, field="response_format", path=schema_path + path[1:])
    out: dict[str, Any] = {"name": chosen_name, "schema": schema, "strict": is_strict}
    description = base.get("description")
    if isinstance(description, str) and description:
        out["description"] = description
    return {"type": "json_schema", "json_schema": out}


def _looks_like_schema(value: dict[str, Any]) -> bool:
    return any(k in value for k in ("properties", "$schema", "items", "anyOf", "oneOf", "$defs"))


def _check_schema(schema: dict[str, Any], *, field: str, path: str) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        raise StructuredError(
            f"not a valid JSON Schema: {exc.message}.", field=field, path=path + inner
        ) from None


def strict_problem(schema: Any, path: str = "$") -> tuple[str, str] | None:
    """The first rule of strict structured outputs a schema breaks, as (path, message), or None.

    Strict mode (OpenAI's, which other providers follow) needs every object to list all of its
    properties in `required` and to set `additionalProperties: false`.
    """
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            found = strict_problem(item, f"{path}[{i}]")
            if found:
                return found
        return None
    if not isinstance(schema, dict):
        return None
    is_object = (
        schema.get("type") == "object"
        or (isinstance(schema.get("type"), list) and "object" in schema["type"])
        or "properties" in schema
    )
    if is_object:
        if schema.get("additionalProperties") is not False:
            return path, 'a strict schema needs "additionalProperties": false on every object.'
        props = list((schema.get("properties") or {}).keys())
        missing = [p for p in props if p not in (schema.get("required") or [])]
        if missing:
            return path, f'a strict schema lists every property in "required"; missing: {", ".join(missing)}.'
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            found = strict_problem(sub, f"{path}.{key}.{name}")
            if found:
                return found
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if key in schema:
            found = strict_problem(schema[key], f"{path}.{key}")
            if found:
                return found
    return None


# --- tools --------------------------------------------------------------------------------------


def check_tools(value: Any) -> list[dict[str, Any]] | None:
    """Validate and normalise a tool list; None or an empty list means no tools."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise StructuredError("give a list of functions.", field="tools")
    if not value:
        return None
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(value):
        where = f"$[{i}]"
        if not isinstance(raw, dict):
            raise StructuredError("each tool must be an object with a name.", field="tools", path=where)
        if raw.get("type", "function") != "function":
            raise StructuredError(
                f"tool type {raw.get('type')!r} is not supported; use functions.",
                field="tools",
                path=f"{where}.type",
            )
        fn = raw.get("function", raw) if "function" in raw else raw
        fn_where = f"{where}.function" if "function" in raw else where
        if not isinstance(fn, dict):
            raise StructuredError("'function' must be an object.", field="tools", path=fn_where)
        name = fn.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise StructuredError(
                f"the function name {name!r} must be 1-64 letters, digits, '_' or '-'.",
                field="tools",
                path=f"{fn_where}.name",
            )
        if name in seen:
            raise StructuredError(
                f"the function '{name}' is defined twice (also at $[{seen[name]}]).",
                field="tools",
                path=f"{fn_where}.name",
            )
        seen[name] = i
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict) or (params.get("type", "object") != "object"):
            raise StructuredError(
                "parameters must be a JSON Schema of type object.",
                field="tools",
                path=f"{fn_where}.parameters",
            )
        _check_schema(params, field="tools", path=f"{fn_where}.parameters")
        function: dict[str, Any] = {"name": name}
        description = fn.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise StructuredError(
                    "description must be text.", field="tools", path=f"{fn_where}.description"
                )
            function["description"] = description
        function["parameters"] = params
        if fn.get("strict") is not None:
            if not isinstance(fn["strict"], bool):
                raise StructuredError(
                    "strict must be true or false.", field="tools", path=f"{fn_where}.strict"
                )
            if fn["strict"]:
                problem = strict_problem(params)
                if problem:
                    raise StructuredError(
                        problem[1], field="tools", path=f"{fn_where}.parameters" + problem[0][1:]
                    )
            function["strict"] = fn["strict"]
        out.append({"type": "function", "function": function})
    return out


def tool_names(tools: list[dict[str, Any]] | None) -> list[str]:
    """The function names of a (normalised) tool list."""
    return [t["function"]["name"] for t in tools or []]


def check_tool_choice(value: Any, tools: list[dict[str, Any]] | None) -> str | dict[str, Any] | None:
    """Validate a tool_choice against the (normalised) tools: auto, none, required or a tool's name."""
    if value is None or value == "":
        return None
    names = tool_names(tools)
    if not names:
        raise StructuredError("a tool choice needs tools to choose from.", field="tool_choice")
    if isinstance(value, str):
        if value in TOOL_CHOICES:
            return value
        name = value
    elif isinstance(value, dict) and isinstance(value.get("function"), dict):
        name = value["function"].get("name")
    elif isinstance(value, dict) and "name" in value:
        name = value.get("name")
    else:
        raise StructuredError(f"use {', '.join(TOOL_CHOICES)} or the name of a tool.", field="tool_choice")
    if name not in names:
        raise StructuredError(
            f"no tool is called {name!r}; the tools are {', '.join(names)}.", field="tool_choice"
        )
    return {"type": "function", "function": {"name": name}}
