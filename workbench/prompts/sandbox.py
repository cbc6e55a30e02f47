"""The render sandbox: Jinja's immutable sandbox with a budget of steps, wall time and size.

A template is code a user wrote, and one render runs inside the app's server, so every render gets a
budget, checked cooperatively at each step:

- every loop iteration, call (macros, methods), filter and item a lazy filter yields is a *step*; one
  render may take `MAX_STEPS` of them and `MAX_SECONDS` of wall time, so nested loops over a long
  string or a macro that calls itself twice stop within about a second;
- an operation that could build a huge value in one go (`*`, `+`, `%`, `replace`, `join`, `center`,
  format widths, ...) is checked before it runs, every value a call or filter returns is checked after,
  and the text a render writes (output, macro bodies, `{% set %}` blocks) is counted, so no value
  grows beyond `MAX_VALUE_CHARS`.

Loops and output are reached by rewriting the parsed template (`guard`): a loop's iterable and each
output piece pass through internal filters that count.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.runtime import LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, generate_lorem_ipsum, pass_context
from jinja2.visitor import NodeTransformer

MAX_STEPS = 1_000_000  # loop iterations, calls and filters of one render
MAX_SECONDS = 1.0  # wall time of one render
MAX_VALUE_CHARS = 10_000_000  # characters (or items) any value or written text inside one render may hold
MAX_RANGE = 10_000  # items one range() may produce
MAX_INT_BITS = 100_000  # size of a number `*` or `**` may build

# Internal filter names: not identifiers, so a template cannot call them itself.
_ITER, _OUT, _PIECE, _BUILT = "wb:iter", "wb:out", "wb:piece", "wb:built"


class RenderLimit(Exception):
    """A render went over its budget; the message names the limit."""


class Budget:
    """What one render has spent: steps, text written, and the sizes of values it has measured."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.steps = 0
        self.written = 0
        self._weights: dict[int, tuple[Any, int]] = {}  # keeps the value alive so its id stays unique

    def step(self) -> None:
        """Count one step; stop the render when it has taken too many or run too long."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise RenderLimit(
                f"The template does too much work: more than {MAX_STEPS:,} steps (loop iterations, "
                "calls and filters) in one render."
            )
        if time.monotonic() > self.deadline:
            raise RenderLimit(
                f"The template does too much work: one render may take {MAX_SECONDS:g} second and "
                "this one took longer."
            )

    def write(self, text: str) -> str:
        """Count text the template writes (into the output, a macro or a set block)."""
        self.written += len(text)
        if self.written > MAX_VALUE_CHARS:
            refuse("the text written by the template (with macros and set blocks)", self.written)
        return text

    def weight(self, value: Any) -> int:
        """About how many characters `str(value)` would build, counting shared parts each time."""
        if isinstance(value, (str, bytes)):
            return len(value)
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            return value.bit_length() // 3 + 1
        if isinstance(value, Namespace):
            value = object.__getattribute__(value, "_Namespace__attrs")
        if not isinstance(value, (list, tuple, set, frozenset, Mapping)):
            return 24  # numbers, generators, macros: a short repr
        hit = self._weights.get(id(value))
        if hit is not None:
            return hit[1]
        self._weights[id(value)] = (value, 0)  # a value that contains itself counts once
        total = len(value)
        # A mapping's keys and values are measured one by one: items() would make new tuples to remember.
        pairs = value.items() if isinstance(value, Mapping) else ((item, "") for item in value)
        for key, item in pairs:
            total += self.weight(key) + self.weight(item)
            if total > MAX_VALUE_CHARS:
                break  # enough to refuse; the exact figure does not matter
        self._weights[id(value)] = (value, total)
        return total

    def check(self, value: Any, what: str) -> Any:
        """Refuse `value` when it is bigger than a value in a render may be; else return it."""
        n = self.weight(value)
        if n > MAX_VALUE_CHARS:
            refuse(what, n)
        return value


def refuse(what: str, size: int) -> None:
    """Stop the render: `what` would hold `size` characters or items."""
    raise RenderLimit(
        f"The template would build too much: {what} would hold {size:,} characters or items; "
        f"the limit is {MAX_VALUE_CHARS:,}."
    )


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("render_budget", default=None)


@contextmanager
def render_budget() -> Iterator[Budget]:
    """The budget of the render under way, or a fresh one (so the messages of a chat share one)."""
    current = _budget.get()
    if current is not None:
        yield current
        return
    token = _budget.set(Budget())
    try:
        yield _budget.get()  # type: ignore[misc]
    finally:
        _budget.reset(token)


def budget() -> Budget:
    """The budget of the render under way (a fresh one outside a render, so nothing is unbounded)."""
    return _budget.get() or Budget()


def counted(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate while counting one step per item."""
    b = budget()
    for item in iterable:
        b.step()
        yield item


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _check_width(width: Any, what: str) -> None:
    if isinstance(width, int) and width > MAX_VALUE_CHARS:
        refuse(what, width)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_FIELD = re.compile(r"\{[^{}]*(\{)?")


def _check_format(fmt: str, values: Any, what: str) -> None:
    """Refuse a `%` or `{}` format whose widths or precisions would build a huge string."""
    if isinstance(values, Mapping):
        values = list(values.values())
    elif not isinstance(values, (list, tuple)):
        values = [values]
    star = False
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            star = star or part == "*"
            _check_width(int(part) if part and part.isdigit() else None, what)
    for m in _BRACE_FIELD.finditer(fmt):
        star = star or m.group(1) is not None  # a nested field takes its width from the values
        for digits in re.findall(r"\d+", m.group(0)):
            _check_width(int(digits), what)
    if star:
        for v in values:
            _check_width(v, what)


def _check_join(b: Budget, items: Any, sep: Any, what: str) -> list[Any]:
    # A lazy input came out of a filter that already counts its items.
    items = items if isinstance(items, (list, tuple)) else list(items)
    total = sum(b.weight(x) for x in items) + b.weight(sep) * max(len(items) - 1, 0)
    if total > MAX_VALUE_CHARS:
        refuse(what, total)
    return list(items)


def _check_replace(b: Budget, s: Any, old: Any, new: Any, count: Any, what: str) -> None:
    s, old, new = str(s), str(old), str(new)
    n = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    if len(s) + n * (len(new) - len(old)) > MAX_VALUE_CHARS:
        refuse(what, len(s) + n * (len(new) - len(old)))


def _guard_method(b: Budget, name: str, s: str | bytes, args: tuple, kwargs: dict) -> tuple:
    """Check a str/bytes method that can grow its receiver before it runs; returns its arguments."""
    what = f"{name}()"
    if name == "replace" and len(args) >= 2:
        _check_replace(b, s, args[0], args[1], _arg(args, kwargs, 2, "count"), what)
    elif name in ("center", "ljust", "rjust", "zfill"):
        _check_width(_arg(args, kwargs, 0, "width"), what)
    elif name == "expandtabs":
        tab = _arg(args, kwargs, 0, "tabsize", 8)
        if isinstance(tab, int):
            _check_width(s.count("\t" if isinstance(s, str) else b"\t") * tab, what)
    elif name == "join" and args:
        args = (_check_join(b, args[0], s, what), *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((b.weight(v) for v in args[0].values()), default=1)
        _check_width(len(s) * longest, what)
    elif name in ("format", "format_map") and isinstance(s, str):
        values = list(args) + list(kwargs.values()) if name == "format" else (args or [{}])[0]
        _check_format(s, values, what)
    return args


def _guard_filter(b: Budget, name: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Check a filter that can grow its input before it runs; `args[0]` is the input."""
    what = f"the '{name}' filter"
    value, rest = args[0], args[1:]
    if name == "replace" and len(rest) >= 2:
        _check_replace(b, value, rest[0], rest[1], _arg(rest, kwargs, 2, "count"), what)
    elif name == "center":
        _check_width(_arg(rest, kwargs, 0, "width"), what)
    elif name == "indent":
        width = _arg(rest, kwargs, 0, "width", 4)
        per_line = len(width) if isinstance(width, str) else width
        if isinstance(per_line, int):
            _check_width(len(str(value)) + (str(value).count("\n") + 1) * per_line, what)
    elif name == "wordwrap":
        width, wrap = _arg(rest, kwargs, 0, "width", 79), str(_arg(rest, kwargs, 2, "wrapstring") or "\n")
        if isinstance(width, int) and width > 0:
            text = str(value)
            _check_width(len(text) + (len(text) // width + text.count("\n") + 1) * len(wrap), what)
    elif name == "format":
        _check_format(str(value), kwargs or rest, what)
    elif name in ("batch", "slice"):
        _check_width(_arg(rest, kwargs, 0, "linecount" if name == "batch" else "slices"), what)
    elif name == "join":
        if _arg(rest, kwargs, 1, "attribute") is None:
            args = (_check_join(b, value, _arg(rest, kwargs, 0, "d", ""), what), *rest)
    elif name == "sum" and not isinstance(_arg(rest, kwargs, 1, "start", 0), (int, float)):
        items = list(value)
        # Adding sequences copies the running total each time: the cost grows with count * size.
        cost = len(items) * sum(b.weight(x) for x in items)
        if cost > MAX_VALUE_CHARS:
            refuse(what, cost)
        args = (items, *rest)
    return args, kwargs


def _wrap_filter(name: str, func: Any) -> Any:
    """`func` as a counted filter: one step, inputs and result checked, lazy results counted."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0  # context/environment first

    @functools.wraps(func)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        b = budget()
        b.step()
        for a in (*args[skip:], *kwargs.values()):
            b.check(a, f"the input of the '{name}' filter")
        if len(args) > skip:
            head, (guarded, kwargs) = args[:skip], _guard_filter(b, name, args[skip:], kwargs)
            args = (*head, *guarded)
        result = func(*args, **kwargs)
        if isinstance(result, Iterator):
            return counted(result)
        return b.check(result, f"the result of the '{name}' filter")

    return filtered


@pass_context
def _iter_filter(context: Any, iterable: Any) -> Any:
    return counted(iterable)


@pass_context
def _out_filter(context: Any, value: Any) -> str:
    b = budget()
    b.check(value, "a value written by the template")
    return b.write(value if isinstance(value, str) else str(value))


@pass_context
def _piece_filter(context: Any, value: Any) -> Any:
    return budget().check(value, "a part joined with '~'")


@pass_context
def _built_filter(context: Any, value: Any) -> Any:
    return budget().check(value, "a text joined with '~'")


def _range(*args: int) -> range:
    """range() of at most MAX_RANGE items (looping over it is counted like any loop)."""
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise RenderLimit(
            f"The template would build too much: range() of {len(r):,} items; the limit is {MAX_RANGE:,}."
        )
    return r


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's lipsum(), refused when it would write more than a value may hold."""
    _check_width(n * max * 12, "lipsum()")  # a lorem word is at most 12 characters with its space
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


class PromptSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox whose calls, operators and filters spend the render's budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        # Jinja's defaults otherwise (no autoescape): an exported template renders the same in jinja2.
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.filters = {name: _wrap_filter(name, f) for name, f in self.filters.items()}
        self.filters.update({_ITER: _iter_filter, _OUT: _out_filter, _PIECE: _piece_filter})
        self.filters[_BUILT] = _built_filter
        self.globals.update(range=_range, lipsum=_lipsum)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `+` and `%`, refused before they build a value over the limits."""
        b = budget()
        what = f"'{operator}'"
        b.check(left, f"the left side of {what}")
        b.check(right, f"the right side of {what}")
        ints = all(isinstance(x, int) and not isinstance(x, bool) for x in (left, right))
        if operator == "*" and ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimit(
                f"The template would build too much: '*' of numbers of over {MAX_INT_BITS:,} bits."
            )
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int) and n > 0:
                    _check_width(b.weight(seq) * n, what)
        big_power = ints and right > 0 and abs(left) > 1 and right * abs(left).bit_length() > MAX_INT_BITS
        if operator == "**" and big_power:
            raise RenderLimit(
                f"The template would build too much: '**' of a number of over {MAX_INT_BITS:,} bits."
            )
        if operator == "+" and isinstance(left, (str, bytes, list, tuple)):
            _check_width(b.weight(left) + b.weight(right), what)
        if operator == "%" and isinstance(left, str):
            _check_format(left, right, what)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """A call from the template (macro, method, global): one step, arguments and result checked."""
        b = budget()
        b.step()
        if isinstance(__obj, Undefined):  # calling a missing variable: Jinja names it
            return super().call(__context, __obj, *args, **kwargs)
        for a in (*args, *kwargs.values()):
            b.check(a, "an argument of a call")
        name = getattr(__obj, "__name__", None) or getattr(__obj, "name", None) or "call"
        receiver = getattr(__obj, "__self__", getattr(getattr(__obj, "__wrapped__", None), "__self__", None))
        if isinstance(receiver, (str, bytes)):
            b.check(receiver, f"the text {name}() works on")
            args = _guard_method(b, name, receiver, args, kwargs)
        elif isinstance(__obj, LoopContext) and args:
            args = (counted(args[0]), *args[1:])  # loop(...) of a recursive for loop
        result = super().call(__context, __obj, *args, **kwargs)
        return b.check(result, f"the result of {name}()")


def _wrap(node: nodes.Expr, name: str) -> nodes.Filter:
    wrapped = nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)
    return wrapped.set_environment(node.environment)  # type: ignore[return-value]


class _Guard(NodeTransformer):
    """Routes loop iterables, output pieces and `~` parts through the counting filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _wrap(node.iter, _ITER)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_wrap(child, _OUT) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_wrap(child, _PIECE) for child in node.nodes]
        return _wrap(node, _BUILT)


def guard(template: nodes.Template) -> nodes.Template:
    """Rewrite a parsed template (in place) so its loops and output spend the render's budget."""
    _Guard().visit(template)
    return template
