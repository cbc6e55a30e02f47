"""Jinja chat templates: sandboxed rendering, variable detection, syntax checking.

Rendering uses an immutable sandbox with `StrictUndefined`: a template cannot reach Python
internals, a missing variable is an error that names it, and a variable's *value* is only ever
data (Jinja never renders a value again, so `{{ ... }}` inside a value stays literal).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workbench.errors import MissingVariableError, SandboxError, TemplateError, ValidationError

ROLES = ("system", "user", "assistant")
MAX_RENDERED_CHARS = 1_000_000  # a loop in a template must not eat the machine's memory
MAX_RANGE = 10_000  # items one range() may produce
MAX_RANGE_STEPS = 1_000_000  # items all range() calls of one render may produce together


class TemplateTooLarge(SecurityError):
    """A template would build a value or an output beyond the limits."""


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus limits on what a template can build: `'x' * 10**9`, a huge
    `**`, or a range loop inside a range loop are refused before they exhaust memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(n, int)
                    and not isinstance(n, bool)
                    and len(seq) * n > MAX_RENDERED_CHARS
                ):
                    raise TemplateTooLarge(f"'*' would build {len(seq) * n:,} items")
        big_power = isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1
        if operator == "**" and big_power and right * abs(left).bit_length() > 100_000:
            raise TemplateTooLarge("'**' would build a number of more than 100,000 bits")
        return super().call_binop(context, operator, left, right)


_steps: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("template_steps", default=None)


def _bounded_range(*args: int) -> Any:
    """range() that counts the items every range of one render yields (nested loops multiply)."""
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateTooLarge(f"range() of {len(r):,} items; the limit is {MAX_RANGE:,}")
    budget = _steps.get()

    def counted() -> Any:
        for item in r:
            if budget is not None:
                budget[0] += 1
                if budget[0] > MAX_RANGE_STEPS:
                    raise TemplateTooLarge(f"loops over range() ran more than {MAX_RANGE_STEPS:,} times")
            yield item

    return counted()


_env = _PromptSandbox(
    undefined=StrictUndefined,
    # Jinja's defaults otherwise, so an exported template renders the same in plain jinja2.
    autoescape=False,
)
_env.globals["range"] = _bounded_range
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
    """Check roles and content types; return plain dicts. Raises ValidationError."""
    out: list[dict[str, str]] = []
    if not messages:
        raise ValidationError("A prompt needs at least one message.")
    for i, msg in enumerate(messages):
        if isinstance(msg, Message):
            msg = msg.to_dict()
        if not isinstance(msg, dict):
            raise ValidationError(f"Message {i + 1} must be an object with 'role' and 'content'.")
        role = str(msg.get("role", "")).strip().lower()
        content = msg.get("content", "")
        if role not in ROLES:
            raise ValidationError(f"Message {i + 1} has role '{role}'; use one of {', '.join(ROLES)}.")
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


def parse(source: str, *, message_index: int | None = None) -> nodes.Template:
    """Parse one Jinja source; raise TemplateError with line and column on bad syntax."""
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(
            exc.message or str(exc),
            line=exc.lineno,
            column=_column_of(source, exc.lineno),
            message_index=message_index,
        ) from None


def variables_of(sources: list[str]) -> list[str]:
    """Variables the sources read, in order of first appearance (across sources in order)."""
    from jinja2 import meta

    seen: list[str] = []
    for i, source in enumerate(sources):
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


def check_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Validate roles and Jinja syntax of every message; return normalised messages."""
    msgs = normalize_messages(messages)
    for i, msg in enumerate(msgs):
        parse(msg["content"], message_index=i)
    return msgs


def render_text(
    source: str, variables: dict[str, Any], *, message_index: int | None = None, context: str = ""
) -> str:
    """Render one source with `variables` in the sandbox."""
    template_ast = parse(source, message_index=message_index)
    token = _steps.set([0])
    try:
        template = _env.from_string(template_ast)
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
        text = "".join(parts)
    except TemplateTooLarge as exc:
        raise TemplateError(
            f"The template would build too much: {exc}.", message_index=message_index
        ) from None
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
    finally:
        _steps.reset(token)
    return text


def render_messages(
    messages: list[dict[str, str]], variables: dict[str, Any], *, context: str = ""
) -> list[dict[str, str]]:
    """Render every message of a chat template; the result is what a model receives."""
    return [
        {"role": m["role"], "content": render_text(m["content"], variables, message_index=i, context=context)}
        for i, m in enumerate(messages)
    ]


def content_hash(messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """A stable hash of a version's content (messages and default params)."""
    payload = json.dumps(
        {"messages": messages, "params": params}, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode()).hexdigest()
