"""Metrics for optimization: one score in 0-1 per (expected, output), shaped for DSPy.

Every metric DSPy sees has the signature `metric(gold, pred, trace=None, pred_name=None,
pred_trace=None)` (GEPA checks for five arguments) and returns a plain float. It never returns a
truthy `dspy.Prediction` where a pass/fail is expected: BootstrapFewShot would take a failed trace
as a demo. Bootstrapping gets a `threshold` instead. Only GEPA's feedback calls (`pred_name` set)
get a Prediction with text feedback.

Scores match the sweep scorers of the same meaning, so a sweep re-scores the saved version with
the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from workbench import metrics as sweep_metrics
from workbench.errors import ValidationError
from workbench.sweeps.scoring import ScoringConfig, check_rubric, judge_messages, normalize, parse_judge

METRICS = {
    "exact": "Exact match (byte for byte)",
    "normalized_exact": "Normalised exact match (case, punctuation and spaces ignored)",
    "contains": "Output contains the expected answer (normalised)",
    "regex": "Output matches a regular expression",
    "numeric": "First number in the output equals the expected number (within a tolerance)",
    "judge": "An LLM judge scores the output 1-5 against a rubric",
}
# The sweep metric that computes the same number, so a sweep re-scores a saved version as DSPy
# did (numeric has none: its score is computed from the outputs). Its registry entry also says
# which settings the metric cannot run without; every one is higher-is-better, as DSPy maximises.
SWEEP_SCORER: dict[str, sweep_metrics.Metric] = {
    name: sweep_metrics.get(scorer)
    for name, scorer in {
        "exact": "exact_raw",
        "normalized_exact": "exact",
        "contains": "contains",
        "regex": "regex",
        "judge": "judge",
    }.items()
}
# A required setting in words, for "the regex metric needs a pattern".
SETTING_WORDS = {"regex": "a pattern", "judge_model": "a judge model"}
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

Judge = Callable[[list[dict[str, str]]], str]  # messages -> the judge's reply


@dataclass
class MetricSpec:
    """Which metric, and its settings."""

    name: str = "normalized_exact"
    regex: str | None = None
    tolerance: float = 0.0
    judge_model: str | None = None
    judge_rubric: str | None = None
    threshold: float = 1.0  # a bootstrapped demo must score at least this

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise ValidationError(
                f"Unknown metric '{self.name}'. Choose from {', '.join(METRICS)}.", field="metric"
            )
        for setting in self.needs_settings:
            if not getattr(self, setting):
                raise ValidationError(
                    f"The {self.name} metric needs {SETTING_WORDS[setting]}.", field=setting
                )
        if self.name == "regex":
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValidationError(
                    f"The regex '{self.regex}' does not compile: {exc}.", field="regex"
                ) from None
        if self.name == "judge":
            check_rubric(self.judge_rubric)
        if self.tolerance < 0:
            raise ValidationError("The numeric tolerance cannot be negative.", field="tolerance")
        if not 0 < self.threshold <= 1:
            raise ValidationError("The pass threshold must be in (0, 1].", field="threshold")

    @property
    def needs_settings(self) -> tuple[str, ...]:
        """The settings this metric cannot run without (its sweep scorer's, from the registry)."""
        scorer = SWEEP_SCORER.get(self.name)
        return scorer.needs_settings if scorer else ()

    def to_dict(self) -> dict[str, Any]:
        """The spec as stored in an optimization's config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MetricSpec:
        """A spec from a stored dict (unknown keys ignored, so old rows still load)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def label(self) -> str:
        """A short name for tables and notes."""
        if self.name == "numeric" and self.tolerance:
            return f"numeric (±{self.tolerance:g})"
        if self.name == "judge":
            return f"judge ({self.judge_model})"
        return self.name

    def scoring_config(self) -> ScoringConfig:
        """The sweep scoring that re-scores a version with this metric."""
        scorer = SWEEP_SCORER.get(self.name)
        return ScoringConfig(
            metrics=[scorer.name] if scorer else [],
            regex=self.regex if self.name == "regex" else None,
            judge_model=self.judge_model if self.name == "judge" else None,
            judge_rubric=self.judge_rubric if self.name == "judge" else None,
        )


def first_number(text: str) -> float | None:
    """The first number written in `text` ('1,234.5' -> 1234.5), or None."""
    m = _NUMBER.search(text or "")
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def judge_input_text(inputs: dict[str, Any]) -> str:
    """The row as the judge sees it (the same text the sweep judge gets)."""
    return "\n".join(f"{k}: {v}" for k, v in (inputs or {}).items())


def score(
    spec: MetricSpec, output: str, expected: str | None, inputs: dict[str, Any], judge: Judge | None = None
) -> float:
    """The score in 0-1 of one output."""
    output = output or ""
    expected = "" if expected is None else str(expected)
    name = spec.name
    if name == "exact":
        return float(output == expected)
    if name == "normalized_exact":
        return float(normalize(output) == normalize(expected))
    if name == "contains":
        return float(normalize(expected) in normalize(output))
    if name == "regex":
        return float(re.search(spec.regex, output) is not None)
    if name == "numeric":
        got, want = first_number(output), first_number(expected)
        if got is None or want is None:
            return 0.0
        return float(abs(got - want) <= spec.tolerance + 1e-9 * max(1.0, abs(want)))
    if name == "judge":
        if judge is None:
            raise ValidationError("The judge metric needs a judge to call.")
        cfg = spec.scoring_config()
        messages = judge_messages(cfg, input_text=judge_input_text(inputs), output=output, expected=expected)
        value = parse_judge(judge(messages))
        return 0.0 if value is None else value
    raise ValidationError(f"Unknown metric '{name}'.")


def feedback(spec: MetricSpec, output: str, expected: str | None, value: float) -> str:
    """Text feedback for GEPA's reflection model."""
    verdict = "correct" if value >= spec.threshold else "wrong"
    return (
        f"Score {value:.2f} ({spec.label()}): {verdict}. Expected answer: {expected!r}. "
        f"The reply was: {(output or '')[:500]!r}."
    )


def make_metric(spec: MetricSpec, *, output_name: str, input_names: list[str], judge: Judge | None = None):
    """A DSPy metric for `spec` (five arguments, float result, feedback only for GEPA)."""

    def metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
        output = getattr(pred, output_name, None) if pred is not None else None
        expected = gold.get(output_name) if hasattr(gold, "get") else getattr(gold, output_name, None)
        inputs = {k: gold.get(k) for k in input_names if gold.get(k) is not None}
        value = score(spec, output or "", expected, inputs, judge)
        if pred_name is not None:
            from workbench.optimize.dspy_env import import_dspy

            dspy = import_dspy()
            return dspy.Prediction(score=value, feedback=feedback(spec, output, expected, value))
        return value

    return metric
