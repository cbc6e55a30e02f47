"""LLM-judge scoring of a sweep's outputs: one judge call per scored cell.

The call goes through the executor's `ProviderCalls`, like a cell's own call, so it is retried
on transient errors, counted as a provider request, refused by an open circuit and stopped by a
cancel. The rubric and the reply's parsing live in `scoring` (the optimizer's judge uses them too).
"""

from __future__ import annotations

from typing import Any

from workbench.providers.catalog import ModelEntry
from workbench.providers.completion import acomplete
from workbench.sweeps.limits import Limiter
from workbench.sweeps.retry import ProviderCalls
from workbench.sweeps.scoring import ScoringConfig, judge_messages, parse_judge
from workbench.sweeps.writes import score_row

JUDGE_PARAMS = {"temperature": 0, "max_tokens": 16}  # a single digit is all the rubric asks for


def judge_input(inputs: dict[str, Any] | None, messages: list[dict[str, str]]) -> str:
    """What the judge sees as the input: the row's variables, else the cell's last message."""
    return "\n".join(f"{k}: {v}" for k, v in (inputs or {}).items()) or messages[-1]["content"]


class Judge:
    """Scores outputs with the sweep's judge model, at most `max_concurrency` calls at a time."""

    def __init__(self, scoring: ScoringConfig, calls: ProviderCalls, entry: ModelEntry, limit: Limiter):
        self.scoring = scoring
        self.calls = calls
        self.entry = entry
        self.limit = limit

    async def score(
        self, run_id: int, *, input_text: str, output: str, expected: str | None
    ) -> dict[str, Any]:
        """The judge's Score row for one output; a failed call gives a row without a value."""
        messages = judge_messages(self.scoring, input_text=input_text, output=output, expected=expected)
        model = self.entry.id

        def request():
            return acomplete(model, messages, dict(JUDGE_PARAMS), stream=False, entry=self.entry)

        async with self.limit:
            outcome = await self.calls.call(model, request)
        if outcome.result is None:
            return score_row(run_id, "judge", None, f"judge failed: {outcome.error}")
        text = outcome.result.text
        value = parse_judge(text)
        detail = None if value is not None else f"no 1-5 score in the judge's reply: {text[:200]!r}"
        return score_row(run_id, "judge", value, detail, outcome.result.cost_usd)
