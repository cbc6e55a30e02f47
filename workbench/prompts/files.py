"""Read prompt definitions from files: JSON or YAML (messages + params) or a `.j2` template."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ImportFileError


@dataclass
class PromptFile:
    """A prompt definition read from a file."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    note: str = ""


def load_prompt_file(path: Path) -> PromptFile:
    """Parse a prompt file; a `.j2`/`.jinja`/`.txt` file becomes a single user message."""
    if not path.exists():
        raise ImportFileError(f"No such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImportFileError(f"{path} is not UTF-8 text.") from None
    suffix = path.suffix.lower()
    if suffix in (".j2", ".jinja", ".jinja2", ".txt", ".md"):
        if not text.strip():
            raise ImportFileError(f"{path} is empty.")
        return PromptFile(messages=[{"role": "user", "content": text}])
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(
                f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
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
    return prompt_from_data(data, str(path))


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
    return PromptFile(
        messages=messages, params=params, name=data.get("name"), note=str(data.get("note") or "")
    )
