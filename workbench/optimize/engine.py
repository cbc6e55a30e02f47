"""DSPy's LM calls, routed through the workbench's completion layer and counted.

`CallBudget` is the single choke point for every call an optimization makes (task model, prompt
model, judge): it checks the cancel flag and the call cap *before* each call, retries transient
provider errors with the sweep engine's policy, and adds up calls and cost. When it has to stop,
it raises `StopOptimization`, a BaseException: DSPy's optimizers catch `Exception` per example
and carry on, but let a BaseException through, so a run stops within one call.

`WorkbenchEngine` is a DSPy 3.4 custom engine (`complete(Request) -> Response`), handed to
`dspy.LM(..., engine=...)`, so DSPy keeps its callbacks and history while the call itself is
`workbench.providers.completion.complete` (local models, error contract, prices).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ProviderError
from workbench.optimize.dspy_env import import_dspy
from workbench.providers import catalog
from workbench.providers.completion import CompletionResult, acomplete
from workbench.sweeps.plan import DEFAULT_MAX_TOKENS
from workbench.sweeps.retry import RetryPolicy

dspy = import_dspy()
from dspy.lm15 import Message, Response, TextPart, Usage  # noqa: E402 - after import_dspy()

FINISH_REASONS = {"stop": "stop", "length": "length", "content_filter": "content_filter"}
FINISH_REASONS |= {"tool_calls": "tool_call", "tool_call": "tool_call", "function_call": "tool_call"}


class StopOptimization(BaseException):  # a signal for DSPy to stop, not an error it may catch
    """Raised inside an LM call to stop the optimizer: cancelled, call cap reached, or a provider error."""

    def __init__(self, reason: str, message: str, *, error: ProviderError | None = None):
        super().__init__(message)
        self.reason = reason  # cancelled | call_cap | provider_error
        self.message = message
        self.error = error


@dataclass
class CallRecord:
    """One finished provider call, for logs and progress."""

    role: str  # task | prompt | judge
    model: str
    result: CompletionResult | None
    error: ProviderError | None = None


class _LoopThread:
    """An event loop running in a daemon thread; coroutines from any thread run on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="optimize-calls", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # As asyncio.run does on exit: cancel what is left (LiteLLM's logging worker), then close.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)


@dataclass
class CallBudget:
    """Counts calls and cost; refuses a call past `limit` or after a cancel request."""

    cap: int
    should_cancel: Callable[[], bool] = lambda: False
    on_call: Callable[[CallRecord], None] | None = None
    on_acquire: Callable[[], None] | None = None  # after a call is counted, before it is made
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float | None = None
    calls: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    limit: int | None = None  # the current phase's limit (<= cap); None means the cap
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _loop: _LoopThread | None = field(default=None, repr=False)

    def _run(self, coro: Any) -> Any:
        # Every call of the run goes through one event loop in one thread: LiteLLM's logging worker
        # is bound to a loop and complains (and re-queues work) when each call brings its own.
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
        return self._loop.run(coro)

    def close(self) -> None:
        """Stop the event loop thread this budget started (call when the run is over)."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.close()

    @property
    def effective_limit(self) -> int:
        """The calls allowed now: the phase's limit, never above the cap."""
        return self.cap if self.limit is None else min(self.limit, self.cap)

    def acquire(self) -> None:
        """Reserve one call, or raise StopOptimization (cancelled, or the limit is spent)."""
        if self.should_cancel():
            raise StopOptimization("cancelled", "Cancelled by the user.")
        with self._lock:
            if self.calls >= self.effective_limit:
                where = (
                    "the call cap" if self.effective_limit >= self.cap else "this phase's share of the cap"
                )
                raise StopOptimization(
                    "call_cap", f"Stopped at {self.calls} calls: {where} ({self.effective_limit}) is spent."
                )
            self.calls += 1
        if self.on_acquire:
            self.on_acquire()

    def _add_cost(self, result: CompletionResult) -> None:
        with self._lock:
            if result.cost_usd is None:
                self.cost_known = False
            else:
                self.cost_usd += result.cost_usd

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.should_cancel():
                raise StopOptimization("cancelled", "Cancelled by the user.")
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def complete(
        self, model: str, messages: list[dict[str, str]], params: dict[str, Any], *, role: str = "task"
    ) -> CompletionResult:
        """One counted call with retries; StopOptimization when it cannot be made or keeps failing."""
        entry = catalog.get_model(model)
        attempt = 0
        while True:
            self.acquire()
            attempt += 1
            try:
                result = self._run(
                    acomplete(model, messages, params, stream=False, timeout=self.timeout_s, entry=entry)
                )
            except ProviderError as exc:
                if self.on_call:
                    self.on_call(CallRecord(role, model, None, exc))
                if self.retry.should_retry(exc, attempt):
                    self._sleep(self.retry.delay(exc, attempt))
                    continue
                raise StopOptimization(
                    "provider_error", f"{model} failed ({exc.kind}): {exc}", error=exc
                ) from None
            self._add_cost(result)
            if self.on_call:
                self.on_call(CallRecord(role, model, result))
            return result


def request_messages(request: Any) -> list[dict[str, str]]:
    """An lm15 Request as plain chat messages (system first, then the turns in order)."""
    messages: list[dict[str, str]] = []
    if request.system is not None:
        system = (
            request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        )
        messages.append({"role": "system", "content": system})
    for m in request.messages:
        role = "system" if m.role == "developer" else m.role
        messages.append({"role": role, "content": m.text or ""})
    return messages


def request_params(request: Any) -> dict[str, Any]:
    """The generation parameters of an lm15 Request that the completion layer understands."""
    cfg = request.config
    params: dict[str, Any] = {}
    for key in ("temperature", "max_tokens", "top_p", "seed"):
        value = getattr(cfg, key, None)
        if value is not None:
            params[key] = value
    if cfg.stop:
        params["stop"] = list(cfg.stop)
    params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    return params


class WorkbenchEngine:
    """A DSPy custom engine whose calls go through `CallBudget.complete`."""

    def __init__(self, model: str, budget: CallBudget, *, role: str = "task"):
        self.model = model
        self.budget = budget
        self.role = role

    def complete(self, request: Any) -> Any:
        """Call the model for one DSPy request and answer with an lm15 Response."""
        result = self.budget.complete(
            self.model, request_messages(request), request_params(request), role=self.role
        )
        prompt_tokens = result.prompt_tokens
        completion_tokens = result.completion_tokens
        total = (
            None if prompt_tokens is None or completion_tokens is None else prompt_tokens + completion_tokens
        )
        return Response(
            id=result.request_id,
            model=self.model,
            message=Message.assistant([TextPart(result.text or "")]),
            finish_reason=FINISH_REASONS.get(result.finish_reason or "stop", "stop"),
            usage=Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens, total_tokens=total),
        )

    def stream(self, request: Any) -> Any:
        """Streaming is not used by optimizers; answer in one piece."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release: the completion layer owns its connections."""


def make_lm(
    model: str, budget: CallBudget, *, params: dict[str, Any] | None = None, role: str = "task"
) -> Any:
    """A dspy.LM for `model` whose calls are the workbench's own (no DSPy cache, no DSPy retries)."""
    params = dict(params or {})
    return dspy.LM(
        f"workbench/{model}",
        engine=WorkbenchEngine(model, budget, role=role),
        cache=False,
        num_retries=0,
        temperature=params.get("temperature"),
        max_tokens=params.get("max_tokens") or DEFAULT_MAX_TOKENS,
        **{k: v for k, v in params.items() if k in ("top_p", "stop", "seed")},
    )
