"""Program -> messages: what DSPy learned, written as the plain chat messages of a new version.

DSPy tunes two things, and both end up as ordinary template text around the input version's own
messages:

- the instructions, which replace the version's leading system message (or become a new one);
- few-shot demos, inserted as user/assistant pairs just before the final user turn. A demo's
  user message is the version's final user template rendered with the demo's variables, stored
  as literal text, so demo text such as "{{" is never interpreted again.

The adapter used while optimizing builds every call with these same functions, so the saved
version renders to exactly the messages that were scored. Nothing here imports DSPy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import ValidationError, WorkbenchError
from workbench.prompts import templates


@dataclass(frozen=True)
class Demo:
    """One few-shot example: the variables it renders with and the answer shown after it."""

    inputs: dict[str, Any]
    output: str

    def to_dict(self) -> dict[str, Any]:
        """The demo as stored in an optimization's program JSON."""
        return {"inputs": dict(self.inputs), "output": self.output}


@dataclass(frozen=True)
class BaseTemplate:
    """The input version's messages, split where the optimizer's changes go."""

    messages: list[dict[str, str]]
    system_index: int | None  # the leading system message DSPy's instructions replace
    final_user_index: int  # demos go right before this message

    @property
    def instructions(self) -> str:
        """The input version's instructions: its leading system message source ('' if none)."""
        return "" if self.system_index is None else self.messages[self.system_index]["content"]

    @property
    def user_template(self) -> str:
        """The Jinja source of the final user turn (demo inputs are rendered with it)."""
        return self.messages[self.final_user_index]["content"]


def split_template(messages: list[dict[str, Any]]) -> BaseTemplate:
    """Find the leading system message and the final user turn of a version's messages."""
    msgs = templates.check_messages(messages)
    users = [i for i, m in enumerate(msgs) if m["role"] == "user"]
    if not users:
        raise ValidationError("Optimization needs a prompt with a user message (the turn DSPy fills in).")
    system_index = 0 if msgs[0]["role"] == "system" else None
    return BaseTemplate(messages=msgs, system_index=system_index, final_user_index=users[-1])


def literal(text: str) -> str:
    """Jinja source that renders to exactly `text` (plain text when that is already true)."""
    text = "" if text is None else str(text)
    try:
        if templates.render_text(text, {}) == text:
            return text
    except WorkbenchError:
        pass
    # A string literal inside one expression. Jinja's lexer reads it with Python's unicode-escape
    # rules, so escaping backslashes, quotes and control characters round-trips any text.
    return "{{ '" + "".join(_escape_char(c) for c in text) + "' }}"


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    return f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c


def instructions_source(instructions: str, variables: list[str]) -> str:
    """Instructions as template source: Jinja when they parse and use only known variables, else literal."""
    try:
        used = templates.variables_of([instructions])
    except WorkbenchError:
        return literal(instructions)
    return instructions if set(used) <= set(variables) else literal(instructions)


def render_demo_user(base: BaseTemplate, demo: Demo) -> str:
    """The final user template rendered with a demo's variables."""
    return templates.render_text(base.user_template, demo.inputs, context="(a few-shot demo)")


def build_messages(
    base: BaseTemplate, *, instructions: str | None = None, demos: list[Demo] | None = None
) -> list[dict[str, str]]:
    """The proposed version's messages: base messages + new instructions + demo pairs."""
    msgs = [dict(m) for m in base.messages]
    variables = templates.variables_of([m["content"] for m in base.messages])
    pairs: list[dict[str, str]] = []
    for demo in demos or []:
        pairs.append({"role": "user", "content": literal(render_demo_user(base, demo))})
        pairs.append({"role": "assistant", "content": literal(demo.output)})
    out = msgs[: base.final_user_index] + pairs + msgs[base.final_user_index :]
    if instructions is not None and instructions != base.instructions:
        source = instructions_source(instructions, variables)
        if base.system_index is not None:
            out[base.system_index] = {"role": "system", "content": source}
        elif instructions.strip():
            out.insert(0, {"role": "system", "content": source})
    return out


def render(messages: list[dict[str, str]], inputs: dict[str, Any]) -> list[dict[str, str]]:
    """Render a proposed version's messages for one row (the same renderer sweeps use)."""
    return templates.render_messages(messages, inputs)
