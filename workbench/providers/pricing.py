"""Token usage as a provider reports it, and what that usage costs.

`usage_of` reads LiteLLM's usage (streamed or whole) including the details some providers add:
prompt tokens read from their prompt cache (`prompt_tokens_details.cached_tokens`, Anthropic's
`cache_read_input_tokens`), prompt tokens written to it, and completion tokens spent on reasoning
(`completion_tokens_details.reasoning_tokens`). Cached and reasoning tokens are *parts* of the
prompt and completion counts, never added to them.

`cost_of` prices a call: $0 for the embedded models, the models file's prices when it sets them,
else LiteLLM's price table through `litellm.cost_per_token` with the cache details, so cached
tokens cost their cache price (and cache writes their premium) as the provider bills them. The
cost is always the bill for the usage that really happened, never an estimate that assumes a cache
hit: a discount the provider did not report (or a cache price nobody knows) is not taken, so a
column never looks cheaper than it costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.providers.catalog import ModelEntry


@dataclass(frozen=True)
class Usage:
    """Token counts of one call; None where the provider reported nothing."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # part of prompt_tokens: read from the provider's cache
    cache_write_tokens: int | None = None  # part of prompt_tokens: written to the cache (Anthropic)
    reasoning_tokens: int | None = None  # part of completion_tokens


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _count(value: Any) -> int | None:
    try:
        return None if value is None else max(0, int(value))
    except (TypeError, ValueError):
        return None


def usage_of(usage: Any) -> Usage:
    """Usage from a LiteLLM `Usage` object (or its dict form); all None when there is none."""
    if usage is None:
        return Usage()
    prompt_details = _get(usage, "prompt_tokens_details")
    completion_details = _get(usage, "completion_tokens_details")
    cached = _count(_get(prompt_details, "cached_tokens"))
    if cached is None:
        cached = _count(_get(usage, "cache_read_input_tokens"))
    written = _count(_get(prompt_details, "cache_creation_tokens"))
    if written is None:
        written = _count(_get(usage, "cache_creation_input_tokens"))
    return Usage(
        prompt_tokens=_count(_get(usage, "prompt_tokens")),
        completion_tokens=_count(_get(usage, "completion_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written or None,
        reasoning_tokens=_count(_get(completion_details, "reasoning_tokens")),
    )


def cost_of(
    entry: ModelEntry,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
) -> float | None:
    """USD cost of a call: models.toml prices first, then LiteLLM's table; None when unknown.

    `cached_tokens` / `cache_write_tokens` are parts of `prompt_tokens` (see the module doc).
    """
    if prompt_tokens is None or completion_tokens is None:
        return None
    if entry.kind == "local":
        return 0.0
    # A provider cannot read more from its cache than the prompt held; a report that says so is
    # not allowed to bring the price below the prompt's.
    cached = min(cached_tokens or 0, prompt_tokens)
    written = min(cache_write_tokens or 0, prompt_tokens - cached)
    if entry.input_price_per_million is not None and entry.output_price_per_million is not None:
        cached_price = entry.cached_input_price_per_million
        if cached_price is None:
            cached_price = entry.input_price_per_million  # no stated cache price: no discount
        return (
            (prompt_tokens - cached) * entry.input_price_per_million
            + cached * cached_price
            + completion_tokens * entry.output_price_per_million
        ) / 1e6
    from workbench.providers.completion import ensure_litellm

    litellm = ensure_litellm()
    try:
        info = litellm.get_model_info(entry.id)
    except Exception:  # noqa: BLE001 - LiteLLM raises several types for an unmapped model
        return None
    # An entry without prices would silently cost 0: treat it as unknown.
    if not info or (info.get("input_cost_per_token") is None and info.get("output_cost_per_token") is None):
        return None
    try:
        if cached or written:
            p, c = litellm.cost_per_token(
                model=entry.id,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                usage_object=_litellm_usage(prompt_tokens, completion_tokens, cached, written),
            )
        else:
            p, c = litellm.cost_per_token(
                model=entry.id, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
            )
    except Exception:  # noqa: BLE001
        return None
    return float(p) + float(c)


def _litellm_usage(prompt_tokens: int, completion_tokens: int, cached: int, written: int) -> Any:
    """LiteLLM's Usage with the cache details its cost functions price separately."""
    from litellm.types.utils import PromptTokensDetailsWrapper
    from litellm.types.utils import Usage as LiteLLMUsage

    return LiteLLMUsage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=cached, cache_creation_tokens=written or None
        ),
        cache_creation_input_tokens=written or None,
    )
