"""Automatic scorers run on every done cell; each result becomes a `Score` row.

Deterministic scorers are pure functions of (output, expected, config). The LLM judge is a model
call of its own (made by `judge`, through the sweep's retry loop) whose cost is recorded on its
Score row; its rubric and the parsing of its reply are here.
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


def _strip_fences(text: str) -> str:
    m = re.match(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", text, re.S)
    return m.group(1) if m else text


def score_output(
    cfg: ScoringConfig, output: str, expected: str | None
) -> list[tuple[str, float, str | None]]:
    """Deterministic scores of one output: [(metric, value, detail)]. The judge is separate."""
    results: list[tuple[str, float, str | None]] = []
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
    return results


def _json_scores(cfg: ScoringConfig, output: str) -> list[tuple[str, float, str | None]]:
    try:
        data = json.loads(_strip_fences(output))
    except (json.JSONDecodeError, ValueError) as exc:
        out = [("json", 0.0, f"not JSON: {exc.msg if hasattr(exc, 'msg') else exc}")]
        if cfg.json_schema is not None:
            out.append(("json_schema", 0.0, "not JSON"))
        return out
    out = [("json", 1.0, None)]
    if cfg.json_schema is not None:
        from jsonschema import Draft202012Validator

        errors = sorted(Draft202012Validator(cfg.json_schema).iter_errors(data), key=lambda e: list(e.path))
        detail = None
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(root)"
            detail = f"{where}: {first.message}"
        out.append(("json_schema", float(not errors), detail))
    return out


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
