"""Sandboxed Jinja rendering, variable detection and error messages."""

import pytest

from workbench.errors import MissingVariableError, SandboxError, TemplateError, ValidationError
from workbench.prompts import templates


def test_render_messages_substitutes_variables():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi {{ name }}!"}]
    assert templates.render_messages(msgs, {"name": "Ada"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi Ada!"},
    ]


def test_variables_in_first_appearance_order_across_messages():
    sources = ["{{ zeta }} and {{ alpha }}", "{% if beta %}{{ alpha }}{% endif %}{{ gamma | upper }}"]
    assert templates.variables_of(sources) == ["zeta", "alpha", "beta", "gamma"]


def test_loop_variables_are_not_inputs():
    assert templates.variables_of(["{% for x in items %}{{ x }}{{ sep }}{% endfor %}"]) == ["items", "sep"]


def test_syntax_error_reports_line_and_column():
    source = "Line one\nHello {{ name }\nbye"
    with pytest.raises(TemplateError) as err:
        templates.check_messages([{"role": "user", "content": source}])
    assert err.value.line == 2
    assert err.value.column == 7
    assert "line 2" in str(err.value) and "column 7" in str(err.value)
    assert "message 1" in str(err.value)


def test_unclosed_block_is_refused_with_message():
    with pytest.raises(TemplateError) as err:
        templates.check_messages(
            [{"role": "user", "content": "ok"}, {"role": "user", "content": "{% if x %}never closed"}]
        )
    assert err.value.message_index == 1
    assert "endif" in str(err.value) or "end of template" in str(err.value)


def test_missing_variable_is_named():
    with pytest.raises(MissingVariableError) as err:
        templates.render_text("Hello {{ name }} from {{ city }}", {"name": "Ada"})
    assert err.value.name == "city"
    assert "'city'" in str(err.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__class__ }}",
        "{{ [].append.__self__ }}",
    ],
)
def test_sandbox_escapes_are_refused(source):
    with pytest.raises((SandboxError, TemplateError)) as err:
        templates.render_text(source, {"x": "value"})
    # Whatever path Jinja takes, the text must not leak Python internals.
    assert "subclasses" not in str(err.value) or "sandbox" in str(err.value).lower()


def test_dunder_access_raises_sandbox_error():
    with pytest.raises(SandboxError):
        templates.render_text("{{ ''.__class__ }}", {})


def test_mutating_a_value_is_refused():
    with pytest.raises(SandboxError):
        templates.render_text("{{ items.append(4) }}", {"items": [1, 2]})


def test_variable_values_are_data_not_templates():
    value = "{{ 7 * 7 }} {% for i in range(3) %}x{% endfor %} {{ secret }}"
    out = templates.render_text("Review: {{ review }}", {"review": value})
    assert out == "Review: " + value


def test_huge_loops_are_bounded():
    with pytest.raises(TemplateError):
        templates.render_text("{% for i in range(99999) %}{{ 'x' * 100 }}{% endfor %}", {})


def test_bad_roles_and_empty_prompts_are_refused():
    with pytest.raises(ValidationError, match="role 'robot'"):
        templates.check_messages([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValidationError, match="at least one message"):
        templates.check_messages([])


def test_content_hash_is_stable_and_order_sensitive():
    a = [{"role": "user", "content": "x"}]
    assert templates.content_hash(a, {"temperature": 0}) == templates.content_hash(a, {"temperature": 0})
    assert templates.content_hash(a, {"temperature": 0}) != templates.content_hash(a, {"temperature": 1})
    two = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert templates.content_hash(two, {}) != templates.content_hash(list(reversed(two)), {})


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 50000000 }}",
        "{{ 'x' * 10000000000 }}",
        "{{ [1] * 10000000 }}",
        "{{ 9 ** 99999999 }}",
        "{% for i in range(10000000) %}x{% endfor %}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
        "{% for i in range(9000) %}{{ 'y' * 200 }}{% endfor %}",
    ],
)
def test_resource_hungry_templates_are_stopped_with_a_message(source):
    with pytest.raises(TemplateError) as err:
        templates.render_text(source, {})
    assert "too much" in str(err.value) or "longer than" in str(err.value) or "calls itself" in str(err.value)


def test_ordinary_loops_and_arithmetic_still_work():
    out = templates.render_text(
        "{% for i in range(3) %}{{ i * 2 }}{% endfor %} {{ 'ab' * 3 }} {{ 2 ** 10 }}", {}
    )
    assert out == "024 ababab 1024"


def test_required_variables_leave_out_the_optional_ones():
    sources = [
        "{% if audience is defined %}Write for {{ audience }}.{% endif %} {{ text }}",
        "{{ tone|default('plain') }} {{ country }}",
    ]
    assert templates.variables_of(sources) == ["audience", "text", "tone", "country"]
    assert templates.required_variables(sources) == ["text", "country"]
    # A template that fails with "" for another reason asks for every variable.
    assert templates.required_variables(["{{ n + 1 }}{% if opt is defined %}{{ opt }}{% endif %}"]) == [
        "n",
        "opt",
    ]
