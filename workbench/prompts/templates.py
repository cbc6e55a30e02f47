"""Jinja chat templates: sandboxed rendering, variable detection, syntax checking.

Rendering uses an immutable sandbox with `StrictUndefined`: a template cannot reach Python
internals, a missing variable is an error that names it, and a variable's *value* is only ever
data (Jinja never renders a value again, so `{{ ... }}` inside a value stays literal). Every render
spends a budget of steps, wall time and size (`sandbox`), so no template can hang the server: every
caller (preview, sweeps, judge rubrics, optimizer, import, gate) renders through `render_text`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError

from workbench.errors import (
    MissingVariableError,
    SandboxError,
    TemplateError,
    ValidationError,
    WorkbenchError,
)
from workbench.prompts import conversation
from workbench.prompts.sandbox import PromptSandbox, RenderLimit, guard, render_budget

ROLES = ("system", "user", "assistant")
MAX_RENDERED_CHARS = 1_000_000  # the text one message may render to

_env = PromptSandbox()
_UNDEFINED_RE = re.compile(r"^'([^']+)' is undefined$")
_TAG_RE = re.compile(r"\{\{.*?(\}\}|$)|\{%.*?(%\}|$)")


@dataclass(frozen=True)
class Message:
    """One chat message: a role and its Jinja source (or rendered text)."""

    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def normalize_messages(messages: list[dict[str, Any]] | list[Message]) -> list[dict[str, str]]:
    """Check roles and content types; return plain dicts. Raises ValidationError.

    A placeholder entry (`{"placeholder": "history"}`, see `conversation`) is kept as
    `{"role": "placeholder", "content": "history"}`.
    """
    out: list[dict[str, str]] = []
    if not messages:
        raise ValidationError("A prompt needs at least one message.")
    for i, msg in enumerate(messages):
        if isinstance(msg, Message):
            msg = msg.to_dict()
        if not isinstance(msg, dict):
            raise ValidationError(f"Message {i + 1} must be an object with 'role' and 'content'.")
        try:
            placeholder = conversation.placeholder_entry(msg, i)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if placeholder is not None:
            out.append(placeholder)
            continue
        role = str(msg.get("role", "")).strip().lower()
        content = msg.get("content", "")
        if role not in ROLES:
            raise ValidationError(
                f"Message {i + 1} has role '{role}'; use one of {', '.join(ROLES)} "
                "(or a placeholder entry for a conversation held by a variable)."
            )
        if not isinstance(content, str):
            raise ValidationError(f"Message {i + 1} content must be text.")
        out.append({"role": role, "content": content})
    return out


def _column_of(source: str, line: int | None) -> int | None:
    """Best-effort column for a syntax error: Jinja reports only the line.

    Takes the first tag on that line that does not compile on its own (or is unclosed),
    else the first tag on the line.
    """
    if not line:
        return None
    lines = source.splitlines()
    if line - 1 >= len(lines):
        return None
    text = lines[line - 1]
    first = None
    for m in _TAG_RE.finditer(text):
        first = m.start() + 1 if first is None else first
        tag = m.group(0)
        if tag.startswith("{{"):
            try:
                _env.parse(tag)
            except TemplateSyntaxError:
                return m.start() + 1
        elif not tag.endswith("%}"):
            return m.start() + 1
    return first or 1


def _syntax_error(source: str, exc: TemplateSyntaxError, message_index: int | None) -> TemplateError:
    return TemplateError(
        exc.message or str(exc),
        line=exc.lineno,
        column=_column_of(source, exc.lineno),
        message_index=message_index,
    )


def parse(source: str, *, message_index: int | None = None) -> nodes.Template:
    """Parse one Jinja source; raise TemplateError with line and column on bad syntax."""
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise _syntax_error(source, exc, message_index) from None


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    """The source parsed, guarded and compiled once: a sweep renders the same template per row."""
    return _env.from_string(guard(_env.parse(source)))


def variables_of(sources: list[str | None]) -> list[str]:
    """Variables the sources read, in order of first appearance (across sources in order).

    A None source reads nothing (it keeps the message numbers of errors right).
    """
    from jinja2 import meta

    seen: list[str] = []
    for i, source in enumerate(sources):
        if source is None:
            continue
        ast = parse(source, message_index=i)
        undeclared = meta.find_undeclared_variables(ast)
        names = sorted(
            (n for n in ast.find_all(nodes.Name) if n.ctx == "load" and n.name in undeclared),
            key=lambda n: n.lineno,  # find_all walks in field order; sort is stable within a line
        )
        for n in names:
            if n.name not in seen:
                seen.append(n.name)
    return seen


def required_variables(sources: list[str]) -> list[str]:
    """The variables the sources cannot render without, in order of first appearance.

    A variable read only under `is defined` (or through `default`) is optional. Each variable is
    tried absent with every other one set to "". A template that fails for another reason (a filter
    that needs a number, a loop over its budget) counts every variable as required, so the answer
    errs towards asking for a column, and a hostile template is rendered once, not once per variable.
    """
    names = variables_of(sources)
    required: list[str] = []
    for name in names:
        try:
            for source in sources:
                render_text(source, {n: "" for n in names if n != name})
        except MissingVariableError as exc:
            if exc.name != name:
                return names
            required.append(name)
        except WorkbenchError:
            return names
    return required


def check_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Validate roles and Jinja syntax of every message; return normalised messages."""
    msgs = normalize_messages(messages)
    for i, msg in enumerate(msgs):
        if not conversation.is_placeholder(msg):
            parse(msg["content"], message_index=i)
    return msgs


def message_variables(messages: list[dict[str, Any]]) -> list[str]:
    """Variables a message list reads, in order: its templates' and its placeholders'."""
    seen: list[str] = []
    for i, msg in enumerate(messages):
        if conversation.is_placeholder(msg):
            names = [msg["content"]]
        else:
            names = variables_of([None] * i + [msg["content"]])  # errors name message i + 1
        seen += [n for n in names if n not in seen]
    return seen


def required_message_variables(messages: list[dict[str, Any]]) -> list[str]:
    """The variables a message list cannot render without: see `required_variables`; a
    placeholder's variable is always required."""
    sources = [m["content"] for m in messages if not conversation.is_placeholder(m)]
    required = set(required_variables(sources)) | set(conversation.placeholder_names(messages))
    return [n for n in message_variables(messages) if n in required]


def render_text(
    source: str, variables: dict[str, Any], *, message_index: int | None = None, context: str = ""
) -> str:
    """Render one source with `variables` in the sandbox, within the render budget (steps, time, size)."""
    try:
        with render_budget():
            template = _compiled(source)
            # Stream the output so an over-long result stops at the limit instead of being built whole.
            parts: list[str] = []
            size = 0
            for chunk in template.generate(**variables):
                size += len(chunk)
                if size > MAX_RENDERED_CHARS:
                    raise TemplateError(
                        f"The rendered text is longer than {MAX_RENDERED_CHARS:,} characters; "
                        "check loops in the template.",
                        message_index=message_index,
                    )
                parts.append(chunk)
            return "".join(parts)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found when compiling
        raise _syntax_error(source, exc, message_index) from None
    except RenderLimit as exc:
        raise TemplateError(str(exc), message_index=message_index) from None
    except SecurityError as exc:
        raise SandboxError(
            f"The template tried something the sandbox forbids ({exc}). Templates may read "
            "variables, filters and tests, not Python internals."
        ) from None
    except UndefinedError as exc:
        m = _UNDEFINED_RE.match(str(exc))
        if m:
            raise MissingVariableError(m.group(1), context=context) from None
        raise TemplateError(str(exc), message_index=message_index) from None
    except (TypeError, ValueError, ArithmeticError, OverflowError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}", message_index=message_index) from None
    except RecursionError:
        raise TemplateError(
            "The template calls itself without end (a recursive macro).", message_index=message_index
        ) from None
    except MemoryError:
        raise TemplateError(
            "Rendering ran out of memory; check loops in the template.", message_index=message_index
        ) from None


def render_messages(
    messages: list[dict[str, str]], variables: dict[str, Any], *, context: str = ""
) -> list[dict[str, Any]]:
    """Render every message of a chat template; the result is what a model receives.

    A placeholder expands to the conversation its variable holds (`conversation.expand`): those
    messages are data, never rendered. The messages share one render budget: a chat is stopped as
    soon as a single message would be.
    """
    out: list[dict[str, Any]] = []
    with render_budget():
        for i, m in enumerate(messages):
            if conversation.is_placeholder(m):
                out += conversation.expand(m["content"], variables, message_index=i, context=context)
            else:
                text = render_text(m["content"], variables, message_index=i, context=context)
                out.append({"role": m["role"], "content": text})
    return out


def content_hash(
    messages: list[dict[str, str]],
    params: dict[str, Any],
    *,
    response_format: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
) -> str:
    """A stable hash of a version's content: messages, default params, and (when set) its response
    format, tools and tool choice. Unset ones are left out of the payload, so a version without
    them keeps the hash it had before versions could carry them."""
    content: dict[str, Any] = {"messages": messages, "params": params}
    extra = {"response_format": response_format, "tools": tools, "tool_choice": tool_choice}
    content.update({k: v for k, v in extra.items() if v is not None})
    payload = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
