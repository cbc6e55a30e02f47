"""Every render has a budget of steps, wall time and size: a hostile template fails fast, naming the limit."""

import re
import time
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workbench.errors import TemplateError
from workbench.prompts import templates

S2000 = "x" * 2000
STEPS = "more than 1,000,000 steps"
SECOND = "may take 1 second"
SIZE = "the limit is 10,000,000"
OUTPUT = "longer than 1,000,000 characters"

HOSTILE = {
    "nested loops over a string": (
        "{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}{% endfor %}{% endfor %}",
        {"s": S2000},
        STEPS,
    ),
    "nested loops over a list": (
        "{% for a in l %}{% for b in l %}{% for c in l %}{% endfor %}{% endfor %}{% endfor %}",
        {"l": list(range(500))},
        STEPS,
    ),
    "nested range loops": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        {},
        STEPS,
    ),
    "a recursive loop": ("{% for x in s recursive %}{{ loop(s) }}{% endfor %}", {"s": "ab"}, "calls itself"),
    "a macro that calls itself twice": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        {},
        SECOND,
    ),
    "a macro that doubles a text": (
        "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}"
        "{{ d('x', 60) }}",
        {},
        SIZE,
    ),
    "a namespace that doubles a text": (
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        {},
        SIZE,
    ),
    "a huge join": ("{{ (['x' * 999999] * 999999)|join }}", {}, SIZE),
    "a join of one big text many times": (
        "{% set a = 'x' * 999999 %}{{ [a, a, a, a, a, a, a, a, a, a, a]|join }}",
        {},
        SIZE,
    ),
    "a str.join of a big list": ("{{ ''.join(['x' * 9999] * 9999) }}", {}, SIZE),
    "nested lists built by doubling": (
        "{% set a = ['x' * 999999] %}" + "{% set a = [a, a] %}" * 12 + "{{ a|string|length }}",
        {},
        SIZE,
    ),
    "a slow filter in a loop": (
        "{% set b = 'ab ' * 333333 %}{% for i in range(10000) %}{{ b|wordcount }}{% endfor %}",
        {},
        SECOND,
    ),
    "a chain of slow filters": (
        "{% set b = 'ab ' * 100000 %}{% for i in range(100) %}{{ b|urlize|title|urlize|length }}{% endfor %}",
        {},
        SECOND,
    ),
    "map over a million characters, again and again": (
        "{% for i in range(100) %}{{ ('x' * 999999)|list|map('upper')|list|length }}{% endfor %}",
        {},
        SECOND,
    ),
    "a replace that multiplies": ("{{ ('x' * 999999)|replace('x', 'x' * 999999) }}", {}, SIZE),
    "a replace method that multiplies": ("{{ ('x' * 999999).replace('x', 'yy' * 999) }}", {}, SIZE),
    "a huge center": ("{{ 'x'|center(10 ** 9) }}", {}, SIZE),
    "a huge format width": ("{{ '{:>999999999}'.format(1) }}", {}, SIZE),
    "a huge % width": ("{{ '%0999999999d' % 1 }}", {}, SIZE),
    "a huge width from the values": ("{{ '%*d' % (999999999, 1) }}", {}, SIZE),
    "a huge indent": ("{{ ('\n' * 999999)|indent(999999, true, true) }}", {}, SIZE),
    "a huge wordwrap": ("{{ ('x' * 999999)|wordwrap(1, true, 'y' * 999999) }}", {}, SIZE),
    "a sum of many lists": ("{{ range(10000)|map('string')|map('list')|sum(start=[])|length }}", {}, SIZE),
    "a slice into a billion parts": ("{{ [1]|slice(10 ** 9)|list|length }}", {}, SIZE),
    "a set block that writes too much": (
        "{% set x %}{% for i in range(10000) %}{% for j in range(90) %}{{ s }}"
        "{% endfor %}{% endfor %}{% endset %}",
        {"s": S2000},
        SIZE,
    ),
    "a number squared again and again": (
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        {},
        "100,000 bits",
    ),
    "lots of lorem ipsum": ("{{ lipsum(10 ** 6) }}", {}, SIZE),
    "a long output": ("{% for i in range(9000) %}{{ 'y' * 200 }}{% endfor %}", {}, OUTPUT),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_template_fails_fast_and_names_the_limit(name):
    source, variables, limit = HOSTILE[name]
    start = time.monotonic()
    with pytest.raises(TemplateError) as err:
        templates.render_text(source, variables)
    elapsed = time.monotonic() - start
    # Which budget trips first depends on the machine's speed: on a busy one the 1 s wall-time
    # limit can stop a template before it reaches its size limit. Either is a named limit.
    assert limit in str(err.value) or (elapsed >= 1 and "one render may take 1 second" in str(err.value))
    assert elapsed < 5, f"{name} took {elapsed:.1f} s"  # the budget is 1 s; one slow step may overrun it


def test_the_messages_of_a_chat_share_one_budget():
    slow = "{% set b = 'ab ' * 333333 %}{% for i in range(40) %}{{ b|wordcount }}{% endfor %}"  # ~0.4 s each
    start = time.monotonic()
    with pytest.raises(TemplateError, match=SECOND):
        templates.render_messages([{"role": "user", "content": slow}] * 10, {})
    assert time.monotonic() - start < 5


def test_a_fresh_render_gets_a_fresh_budget():
    loops = "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"  # 250,500 steps
    for _ in range(10):
        assert templates.render_text(loops, {"s": "x" * 500}) == ""


SAME_AS_JINJA = [
    "{% for r in rows %}{{ loop.index }}/{{ loop.length }}{{ '!' if loop.last }}"
    "{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for r in rows if r.n > 1 %}{{ r.q }}{% else %}none{% endfor %}"
    "{% for r in [] %}x{% else %}empty{% endfor %}",
    "{{ rows|map(attribute='q')|join(', ') }} {{ rows|selectattr('n', 'gt', 1)|map(attribute='q')|list }}",
    "{{ rows|sort(attribute='n')|map(attribute='q')|join }} "
    "{{ rows|sum(attribute='n') }} {{ [[1], [2]]|sum(start=[]) }}",
    "{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %} "
    "{% for g in rows|groupby('n') %}{{ g.grouper }}{% endfor %}",
    "{{ text|upper|replace('O', '0')|truncate(9) }} {{ text|wordcount }} {{ text|center(30) }}|",
    "{{ '%s-%03d' % ('a', 7) }} {{ '{}:{:>5}'.format('x', 3) }} {{ '%5.1f'|format(3.14159) }}",
    "{% macro m(x, y=2) %}<{{ x }}{{ y }}{{ varargs|length }}>{% endmacro %}{{ m(1) }}{{ m(1, 2, 3) }}",
    "{% macro w() %}[{{ caller() }}]{% endmacro %}{% call w() %}in{% endcall %}",
    "{% set ns = namespace(t=0) %}{% for r in rows %}{% set ns.t = ns.t + r.n %}{% endfor %}{{ ns.t }}",
    "{% for x in tree recursive %}{{ x.name }}[{{ loop(x.kids) }}]{% endfor %}",
    "{% set s %}{% for i in range(3) %}{{ i }}{% endfor %}{% endset %}"
    "{{ s ~ '!' ~ 3 }} {{ [1, 2] + [3] }} {{ 'ab' * 2 }}",
    "{% filter upper %}shout {{ text }}{% endfilter %} "
    "{{ rows|batch(2)|list }} {{ rows|slice(2)|list|length }}",
    "{{ text.split()|reverse|join(' ') }} {{ ','.join(['a', 'b']) }} {{ text[:5] }} {{ rows|first }}",
    "{{ 7 // 2 }} {{ 2 ** 10 }} {{ 10 % 3 }} {{ (1, 2) }} {{ none }} {{ 1.5 }} "
    "{{ range(3)|list }} {{ d.items()|list }}",
    "{{ rows|tojson }} {{ text|indent(2, true) }} {{ text|wordwrap(5) }} {{ 'x' in text }} {{ d|pprint }}",
]


@pytest.mark.parametrize("source", SAME_AS_JINJA)
def test_ordinary_templates_render_as_plain_jinja_does(source):
    variables = {
        "rows": [{"q": "a", "n": 2}, {"q": "b", "n": 1}, {"q": "c", "n": 3}],
        "text": "Hello world, foo bar",
        "d": {"b": 1, "a": 2},
        "tree": [{"name": "x", "kids": [{"name": "y", "kids": []}]}],
    }
    plain = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    assert templates.render_text(source, variables) == plain.from_string(source).render(**variables)


def test_a_big_dataset_value_is_still_data():
    doc = "word " * 400_000  # 2,000,000 characters: more than an output may hold, fine to measure or cut
    assert (
        templates.render_text("{{ doc|wordcount }} {{ doc|truncate(9) }}", {"doc": doc}) == "400000 word..."
    )


def test_only_the_renderer_uses_jinja():
    """No second Jinja environment elsewhere: every render goes through the budgeted sandbox."""
    root = Path(__file__).resolve().parents[1]
    users = [
        p.relative_to(root).as_posix()
        for base in ("workbench", "pages")
        for p in (root / base).rglob("*.py")
        if re.search(r"^\s*(from|import) jinja2", p.read_text(encoding="utf-8"), re.M)
    ]
    assert sorted(users) == ["workbench/prompts/sandbox.py", "workbench/prompts/templates.py"]
