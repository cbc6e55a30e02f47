"""Read prompt definitions from files: JSON or YAML (messages + params) or a `.j2` template.

A JSON / YAML file holds `messages` (Jinja messages and `placeholder` entries), and optionally
`params`, `response_format` (a JSON Schema or a whole response_format object), `tools`,
`tool_choice`, `name` and `note`:

    name: weather
    messages:
      - {role: system, content: "Answer with the city."}
      - placeholder: history
      - {role: user, content: "{{ question }}"}
    response_format: {type: object, properties: {city: {type: string}}, required: [city]}
    tools: [{name: get_weather, parameters: {type: object, properties: {city: {type: string}}}}]
    tool_choice: auto

The structured settings are checked when the version is saved (`store.save_version`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ImportFileError, json_problem


@dataclass
class PromptFile:
    """A prompt definition read from a file."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    note: str = ""
    response_format: Any = None
    tools: Any = None
    tool_choice: Any = None

    def structured(self) -> dict[str, Any]:
        """The file's response_format, tools and tool_choice (as written; None when absent)."""
        return {"response_format": self.response_format, "tools": self.tools, "tool_choice": self.tool_choice}


def _read_text(path: Path) -> str:
    if not path.exists():
        raise ImportFileError(f"No such file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImportFileError(f"{path} is not UTF-8 text.") from None


def load_prompt_file(path: Path) -> PromptFile:
    """Parse a prompt file; a `.j2`/`.jinja`/`.txt` file becomes a single user message."""
    suffix = path.suffix.lower()
    if suffix in (".j2", ".jinja", ".jinja2", ".txt", ".md"):
        text = _read_text(path)
        if not text.strip():
            raise ImportFileError(f"{path} is empty.")
        return PromptFile(messages=[{"role": "user", "content": text}])
    return prompt_from_data(read_data_file(path), str(path))


def read_data_file(path: Path) -> Any:
    """The parsed content of a .json / .yaml file (a JSON Schema, a tool list, a prompt)."""
    text = _read_text(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"{path} is not valid JSON: {json_problem(exc)}.") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ImportFileError(f"{path} is not valid YAML{where}.") from None
    else:
        raise ImportFileError(f"{path}: use a .json, .yaml or .j2 file.")
    return data


def prompt_from_data(data: Any, where: str) -> PromptFile:
    """Build a PromptFile from parsed JSON/YAML ({messages: [...], params: {...}})."""
    if isinstance(data, list):
        data = {"messages": data}
    if not isinstance(data, dict) or "messages" not in data:
        raise ImportFileError(f"{where} must hold an object with a 'messages' list.")
    messages = data["messages"]
    if not isinstance(messages, list) or not messages:
        raise ImportFileError(f"{where}: 'messages' must be a non-empty list of {{role, content}}.")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ImportFileError(f"{where}: 'params' must be an object.")
    for key in ("response_format", "tools"):
        if key in data and data[key] is not None and not isinstance(data[key], dict | list):
            raise ImportFileError(f"{where}: '{key}' must be an object or a list.")
    return PromptFile(
        messages=messages,
        params=params,
        name=data.get("name"),
        note=str(data.get("note") or ""),
        response_format=data.get("response_format"),
        tools=data.get("tools"),
        tool_choice=data.get("tool_choice"),
    )
