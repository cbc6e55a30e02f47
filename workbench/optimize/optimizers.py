"""The optimizer menu: what each one changes, its defaults, its call estimate, how it is built.

Only optimizers whose result is a static prompt (instructions + a fixed demo block) are offered;
KNNFewShot picks demos per query and cannot be saved as a template, so it is not.
Estimates count the calls of each DSPy optimizer's own loops (T = train rows, V = rows an optimizer
evaluates on); they are task-model calls plus prompt-model calls, before the baseline and final
validation passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ValidationError


@dataclass(frozen=True)
class OptimizerInfo:
    """One entry of the menu."""

    key: str
    label: str
    changes: str
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)
    uses_prompt_model: bool = False  # writes instructions: a stronger prompt model is recommended
    needs: str | None = None  # an optional package it needs


OPTIMIZERS: dict[str, OptimizerInfo] = {
    o.key: o
    for o in (
        OptimizerInfo(
            "labeled",
            "Labelled few-shot",
            "demos",
            "Adds k labelled training rows as demos. Makes no calls at all.",
            {"k": 4},
        ),
        OptimizerInfo(
            "bootstrap",
            "Bootstrapped few-shot",
            "demos",
            "Runs the prompt on training rows and keeps replies that pass the metric as demos "
            "(topped up with labelled rows). At most one call per training row.",
            {"max_bootstrapped_demos": 3, "max_labeled_demos": 3, "max_rounds": 1},
        ),
        OptimizerInfo(
            "random_search",
            "Few-shot random search",
            "demos",
            "Bootstraps several candidate demo sets and keeps the one that scores best on the training rows.",
            {"num_candidate_programs": 4, "max_bootstrapped_demos": 3, "max_labeled_demos": 3},
        ),
        OptimizerInfo(
            "mipro",
            "MIPROv2 (light)",
            "instructions + demos",
            "Proposes new instructions with the prompt model and searches instruction/demo "
            "combinations with Optuna. Use a strong prompt model: a 135M local model cannot write "
            "useful instructions.",
            {"auto": "light", "max_bootstrapped_demos": 2, "max_labeled_demos": 2},
            uses_prompt_model=True,
            needs="optuna",
        ),
        OptimizerInfo(
            "gepa",
            "GEPA",
            "instructions",
            "Rewrites the instructions by reflecting on failures with the reflection (prompt) "
            "model, within a fixed number of metric calls. Use a strong reflection model.",
            {"max_metric_calls": 60, "reflection_minibatch_size": 3},
            uses_prompt_model=True,
            needs="gepa",
        ),
    )
}


@dataclass
class CallEstimate:
    """Estimated calls of one optimizer run, by kind."""

    task: int
    prompt: int

    @property
    def total(self) -> int:
        """Task and prompt-model calls together."""
        return self.task + self.prompt


def info(key: str) -> OptimizerInfo:
    """The menu entry for `key`; ValidationError lists the choices."""
    if key not in OPTIMIZERS:
        raise ValidationError(
            f"Unknown optimizer '{key}'. Choose from {', '.join(OPTIMIZERS)}.", field="optimizer"
        )
    return OPTIMIZERS[key]


def settings_for(key: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The optimizer's defaults with the user's overrides (unknown keys refused)."""
    entry = info(key)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(entry.defaults))
    if unknown:
        raise ValidationError(
            f"{entry.label} has no setting {', '.join(unknown)}; settings: {', '.join(entry.defaults)}.",
            field="settings",
        )
    out = {**entry.defaults, **overrides}
    for k, v in out.items():
        if k != "auto" and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise ValidationError(f"{k} must be a whole number of at least 0, not {v!r}.", field="settings")
    if key == "gepa" and out["max_metric_calls"] < 1:
        raise ValidationError("GEPA needs max_metric_calls of at least 1.", field="settings")
    if key == "mipro" and out["auto"] not in ("light", "medium", "heavy"):
        raise ValidationError("MIPROv2 auto must be light, medium or heavy.", field="settings")
    return out


def mipro_split(train: int) -> tuple[int, int]:
    """How MIPROv2 splits the training rows when given no valset: (its train, its val)."""
    val = min(1000, max(1, int(train * 0.8)))
    return max(0, train - val), val


def estimate(key: str, settings: dict[str, Any], *, train: int) -> CallEstimate:
    """Estimated task and prompt-model calls of the optimizer alone."""
    t = train
    if key == "labeled":
        return CallEstimate(0, 0)
    if key == "bootstrap":
        return CallEstimate(t * max(1, settings["max_rounds"]), 0)
    if key == "random_search":
        n = settings["num_candidate_programs"]
        return CallEstimate((n + 3) * t + (n + 1) * t, 0)
    if key == "mipro":
        t2, v2 = mipro_split(t)
        return CallEstimate(11 * v2 + 4 * max(t2, 1), 13)
    if key == "gepa":
        k = settings["max_metric_calls"]
        return CallEstimate(k, math.ceil(k / (2 * max(1, settings["reflection_minibatch_size"]))) + 1)
    raise ValidationError(f"Unknown optimizer '{key}'.")


def build(
    key: str,
    settings: dict[str, Any],
    *,
    metric: Any,
    threshold: float,
    num_threads: int,
    seed: int,
    prompt_lm: Any = None,
) -> Any:
    """The DSPy teleprompter for `key`."""
    from workbench.optimize.dspy_env import import_dspy

    dspy = import_dspy()
    if key == "labeled":
        return dspy.LabeledFewShot(k=settings["k"])
    if key == "bootstrap":
        return dspy.BootstrapFewShot(
            metric=metric,
            metric_threshold=threshold,
            max_bootstrapped_demos=settings["max_bootstrapped_demos"],
            max_labeled_demos=settings["max_labeled_demos"],
            max_rounds=settings["max_rounds"],
            max_errors=1_000_000,  # errors that matter stop the run through the call budget instead
        )
    if key == "random_search":
        return dspy.BootstrapFewShotWithRandomSearch(
            metric=metric,
            metric_threshold=threshold,
            num_candidate_programs=settings["num_candidate_programs"],
            max_bootstrapped_demos=settings["max_bootstrapped_demos"],
            max_labeled_demos=settings["max_labeled_demos"],
            num_threads=num_threads,
            max_errors=1_000_000,
        )
    if key == "mipro":
        _require(key)
        return dspy.MIPROv2(
            metric=metric,
            prompt_model=prompt_lm,
            auto=settings["auto"],
            max_bootstrapped_demos=settings["max_bootstrapped_demos"],
            max_labeled_demos=settings["max_labeled_demos"],
            num_threads=num_threads,
            max_errors=1_000_000,
            seed=seed,
            metric_threshold=threshold,
            verbose=False,
            track_stats=False,
        )
    if key == "gepa":
        _require(key)
        return dspy.GEPA(
            metric=metric,
            max_metric_calls=settings["max_metric_calls"],
            reflection_minibatch_size=settings["reflection_minibatch_size"],
            reflection_lm=prompt_lm,
            num_threads=num_threads,
            seed=seed,
            use_merge=False,
        )
    raise ValidationError(f"Unknown optimizer '{key}'.")


def _require(key: str) -> None:
    package = OPTIMIZERS[key].needs
    if not package:
        return
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise ValidationError(
            f"{OPTIMIZERS[key].label} needs the '{package}' package, which is not installed."
        )
