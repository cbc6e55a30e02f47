"""Automatic scorers run on every done cell; each result becomes a `Score` row.

Deterministic scorers are pure functions of (output, expected, config), and for structured
output of the version's JSON Schema and the reply's tool calls (`json_valid`, `json_match`,
`tool_call`). The LLM judge is a model call of its own (made by `judge`, through the sweep's retry
loop) whose cost is recorded on its Score row; its rubric and the parsing of its reply are here.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from workbench import metrics
from workbench.errors import ValidationError
from workbench.sweeps import outputs

# The scorers a user can ask for: every metric but json_schema, which the json scorer adds when a
# schema is set. What a metric means (higher is better, needs an expected answer) is in `metrics`.
SCORERS = tuple(name for name in metrics.METRICS if name != "json_schema")
_PUNCT = str.maketrans("", "", string.punctuation + "“”‘’«»")

DEFAULT_JUDGE_RUBRIC = (
    "Rate how well the answer responds to the input"
    "{% if expected %}, given the reference answer{% endif %}.\n"
    "Input:\n{{ input }}\n\n{% if expected %}Reference answer:\n{{ expected }}\n\n{% endif %}"
    "Answer:\n{{ output }}\n\nReply with a single integer from 1 (useless) to 5 (excellent)."
)


@dataclass
class ScoringConfig:
    """Which scorers run and their settings (stored in the sweep's config)."""

    metrics: list[str] = field(default_factory=list)
    regex: str | None = None
    json_schema: dict[str, Any] | None = None
    judge_model: str | None = None
    judge_rubric: str | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.metrics if m not in SCORERS]
        if unknown:
            raise ValidationError(
                f"Unknown scorer(s): {', '.join(unknown)}. Choose from {', '.join(SCORERS)}.", field="score"
            )
        if "regex" in self.metrics:
            if not self.regex:
                raise ValidationError("The regex scorer needs a pattern.", field="regex")
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValidationError(
                    f"The regex '{self.regex}' does not compile: {exc}.", field="regex"
                ) from None
        if self.json_schema is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(self.json_schema)
            except SchemaError as exc:
                raise ValidationError(
                    f"The JSON Schema is invalid: {exc.message}.", field="json_schema"
                ) from None
        if "judge" in self.metrics and not self.judge_model:
            raise ValidationError("The judge scorer needs a model.", field="judge_model")
        if "judge" in self.metrics:
            check_rubric(self.judge_rubric)

    def to_dict(self) -> dict[str, Any]:
        """The config as stored in a sweep's spec."""
        return {
            "metrics": self.metrics,
            "regex": self.regex,
            "json_schema": self.json_schema,
            "judge_model": self.judge_model,
            "judge_rubric": self.judge_rubric,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScoringConfig:
        """The config stored in a sweep's spec (validated again)."""
        data = data or {}
        return cls(
            metrics=list(data.get("metrics") or []),
            regex=data.get("regex"),
            json_schema=data.get("json_schema"),
            judge_model=data.get("judge_model"),
            judge_rubric=data.get("judge_rubric"),
        )


def normalize(text: str) -> str:
    """Casefold, strip accents' compatibility forms, punctuation and extra whitespace."""
    text = unicodedata.normalize("NFKC", text or "").casefold().translate(_PUNCT)
    return " ".join(text.split())


def score_output(
    cfg: ScoringConfig,
    output: str,
    expected: str | None,
    *,
    schema: dict[str, Any] | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
) -> list[tuple[str, float | None, str | None]]:
    """Deterministic scores of one output: [(metric, value, detail)]. The judge is separate.

    `schema` is the version's JSON Schema (its response_format), `tool_calls` the calls the reply
    made (as stored on the Run). A value of None means the metric could not be computed (detail).
    """
    results: list[tuple[str, float | None, str | None]] = []
    for metric in cfg.metrics:
        if metrics.METRICS[metric].needs_expected and expected is None:
            continue  # an unlabelled row has nothing to compare with
        if metric == "exact":
            results.append((metric, float(normalize(output) == normalize(expected)), None))
        elif metric == "exact_raw":
            results.append((metric, float(output == expected), None))
        elif metric == "contains":
            results.append((metric, float(normalize(expected) in normalize(output)), None))
        elif metric == "contains_raw":
            results.append((metric, float(expected in output), None))
        elif metric == "regex":
            results.append((metric, float(re.search(cfg.regex, output) is not None), None))
        elif metric == "length":
            results.append((metric, float(len(output)), None))
        elif metric == "json":
            results.extend(_json_scores(cfg, output))
        elif metric == "json_valid":
            results.append(json_valid(output, schema if schema is not None else cfg.json_schema))
        elif metric == "json_match":
            results.append(json_match(output, expected))
        elif metric == "tool_call":
            results.append(tool_call(tool_calls, expected))
    return results


def _json_scores(cfg: ScoringConfig, output: str) -> list[tuple[str, float, str | None]]:
    parsed = outputs.parse_json(output)
    if not parsed.ok:
        out = [("json", 0.0, f"not JSON: {parsed.error}")]
        if cfg.json_schema is not None:
            out.append(("json_schema", 0.0, "not JSON"))
        return out
    out = [("json", 1.0, None)]
    if cfg.json_schema is not None:
        problem = schema_problem(parsed.value, cfg.json_schema)
        out.append(("json_schema", float(problem is None), problem))
    return out


def schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """The first way `value` breaks `schema` ("path: message"), or None when it validates."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "(root)"
    return f"{where}: {first.message}"


def json_valid(output: str, schema: dict[str, Any] | None) -> tuple[str, float, str | None]:
    """1 when the output parses as JSON and validates against the version's schema (when it has one)."""
    parsed = outputs.parse_json(output)
    if not parsed.ok:
        return "json_valid", 0.0, f"not JSON: {parsed.error}"
    if schema is None:
        return "json_valid", 1.0, "parses as JSON (the version has no schema to validate against)"
    problem = schema_problem(parsed.value, schema)
    return "json_valid", float(problem is None), problem


def json_match(output: str, expected: str | None) -> tuple[str, float | None, str | None]:
    """The share of the expected JSON's fields the output matches; the detail holds each field's score
    as JSON (`{"fields": {"city": 1.0, ...}}`, read back by `json_match_fields`)."""
    want = outputs.parse_json(expected)
    if not want.ok:
        return "json_match", None, f"the expected answer is not JSON ({want.error})"
    got = outputs.parse_json(output)
    fields = outputs.field_scores(got.value if got.ok else None, want.value)
    detail: dict[str, Any] = {"fields": fields}
    if not got.ok:
        detail["error"] = f"not JSON: {got.error}"
    value = sum(fields.values()) / len(fields) if fields else float(got.ok)
    return "json_match", value, json.dumps(detail, ensure_ascii=False)


def json_match_fields(detail: str | None) -> dict[str, float]:
    """The per-field scores a json_match Score's detail holds ({} when it holds none)."""
    try:
        fields = json.loads(detail or "{}").get("fields") or {}
    except (json.JSONDecodeError, AttributeError):
        return {}
    return {str(k): float(v) for k, v in fields.items() if isinstance(v, int | float)}


def expected_tool_calls(expected: str | None) -> list[dict[str, Any]] | None:
    """The calls an expected answer asks for: JSON `{"name", "arguments"}` (or OpenAI's
    `{"function": {...}}`), a list of them (`[]`: no call), or a bare function name. None when
    there is no expected answer."""
    if expected is None or not expected.strip():
        return None
    parsed = outputs.parse_json(expected)
    if not parsed.ok:
        return [{"name": expected.strip()}]  # a bare function name: any arguments
    items = parsed.value if isinstance(parsed.value, list) else [parsed.value]
    calls = []
    for item in items:
        if isinstance(item, str):
            calls.append({"name": item})
            continue
        if not isinstance(item, dict):
            raise ValidationError(f"An expected tool call must be an object with a name, not {item!r}.")
        fn = item.get("function") if isinstance(item.get("function"), dict) else item
        call = {"name": fn.get("name")}
        if "arguments" in fn:
            args = fn["arguments"]
            call["arguments"] = json.loads(args) if isinstance(args, str) and args.strip() else args
        calls.append(call)
    return calls


def tool_call(
    actual: list[dict[str, Any]] | None, expected: str | None
) -> tuple[str, float | None, str | None]:
    """1 when the reply made exactly the expected calls (any order): same function names and, where
    the expected call gives arguments, equal arguments (strings compared like `exact`)."""
    try:
        want = expected_tool_calls(expected) or []
    except (ValidationError, json.JSONDecodeError) as exc:
        return "tool_call", None, f"the expected tool call is not readable: {exc}"
    made = list(actual or [])
    shown = outputs.format_tool_calls(made, "; ") or "no tool call"
    left = list(made)
    for call in want:
        match = next((m for m in left if _call_matches(m, call)), None)
        if match is None:
            args = f"({json.dumps(call['arguments'], ensure_ascii=False)})" if "arguments" in call else ""
            return "tool_call", 0.0, f"expected {call['name']}{args}; the reply made {shown}"
        left.remove(match)
    if left:
        return "tool_call", 0.0, f"unexpected call(s): {outputs.format_tool_calls(left, '; ')}"
    return "tool_call", 1.0, None


def _call_matches(made: dict[str, Any], want: dict[str, Any]) -> bool:
    if made.get("name") != want.get("name"):
        return False
    return "arguments" not in want or outputs.values_equal(made.get("arguments"), want["arguments"])


_JUDGE_NUMBER = re.compile(r"\b([1-5])\b")


def check_rubric(rubric: str | None) -> None:
    """Refuse a judge rubric that does not parse or uses variables other than input/output/expected."""
    from workbench.errors import WorkbenchError
    from workbench.prompts.templates import render_text

    if not rubric:
        return
    try:
        render_text(rubric, {"input": "input", "output": "output", "expected": "expected"})
    except WorkbenchError as exc:
        raise ValidationError(
            f"The judge rubric does not work: {exc} It may use {{{{ input }}}}, {{{{ output }}}} and "
            "{{ expected }}.",
            field="judge_rubric",
        ) from None


def judge_messages(cfg: ScoringConfig, *, input_text: str, output: str, expected: str | None) -> list[dict]:
    """The judge's chat messages, rendered in the same sandbox as prompts."""
    from workbench.prompts.templates import render_text

    rubric = cfg.judge_rubric or DEFAULT_JUDGE_RUBRIC
    text = render_text(rubric, {"input": input_text, "output": output, "expected": expected or ""})
    return [{"role": "user", "content": text}]


def parse_judge(text: str) -> float | None:
    """The first integer 1-5 in the judge's reply, scaled to 0-1; None when there is none."""
    m = _JUDGE_NUMBER.search(text or "")
    return None if m is None else (int(m.group(1)) - 1) / 4
