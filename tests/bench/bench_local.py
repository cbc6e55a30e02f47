"""Local-model speed: the workbench's completion path against llama.cpp called directly (run by hand).

    .venv/bin/python -m tests.bench.bench_local [--rounds 5] [--max-tokens 128] [--models smollm2,gemma]

For each embedded model, on the same GGUF file, the same prompt text and the same stop strings, at
temperature 0 (so every path generates the same tokens):
  - direct:        `llama_cpp.Llama.create_completion` with llama.cpp's defaults, in a process of its
                   own (timed there, CPU seconds of that process),
  - direct-stream: the same, streaming (its TTFT is the first non-empty text piece),
  - model.stream:  the workbench's `LocalModel.stream` alone (no LiteLLM, no event loop),
  - wb-stream / wb: `workbench.providers.completion.complete`, streaming and not, the path every
    caller takes (LiteLLM custom provider, the llama.cpp thread, the event loop).
Paths alternate within each round, in an order that rotates every round; each round asks a
different question, and the KV cache is cleared before every call, so each TTFT is a real read of
the whole prompt. Prints the median tok/s, TTFT and CPU seconds per token per path, and the ratios
workbench / direct. The machine's load average is printed at the start and the end: on a shared
machine the figures are noisy, so compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

MODELS = {"smollm2": "local/smollm2-135m-instruct", "gemma": "local/gemma-3-270m"}
# Questions both models answer with at least 128 tokens (Gemma, a base model, often stops early).
QUESTIONS = [
    "Write a long story about a lighthouse keeper and a lost whale.",
    "Write a long story about a robot who wants to become a gardener.",
    "Write a long story about two rival chefs in a small mountain town.",
    "Explain in detail, step by step, how bread is baked, from flour to the finished loaf.",
    "Explain in detail how the water cycle works, from the ocean to the clouds and back.",
    "Write a detailed guide to growing tomatoes in a small garden.",
]


@dataclass
class Run:
    """One timed generation."""

    tokens: int
    seconds: float
    cpu_seconds: float
    ttft_ms: float | None = None
    finish: str | None = None


@dataclass
class PathStats:
    """All the runs of one path."""

    runs: list[Run] = field(default_factory=list)

    def median(self, fn: Callable[[Run], float | None]) -> float | None:
        """The median of `fn` over the runs where it is known."""
        values = [v for v in map(fn, self.runs) if v is not None]
        return statistics.median(values) if values else None


RunResult = tuple[int, float | None, str | None]  # tokens, TTFT ms, finish reason


def timed(fn: Callable[[], RunResult]) -> Run:
    """Run `fn` (returning tokens, TTFT ms, finish reason) and time it in wall and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    tokens, ttft, finish = fn()
    return Run(tokens, time.perf_counter() - wall, time.process_time() - cpu, ttft, finish)


def direct_server(conn: Connection, model_path: str, n_ctx: int) -> None:
    """In its own process: llama.cpp with its defaults, answering (prompt, stop, max_tokens, stream) runs.

    A process of its own keeps llama.cpp's OpenMP threads apart from the workbench's: in one
    process their two thread teams would outnumber the cores and slow both sides down.
    """
    from llama_cpp import Llama

    llm = Llama(model_path=model_path, n_ctx=n_ctx, verbose=False)
    conn.send((llm.n_threads, llm.n_threads_batch))
    tokens_of: dict[str, int] = {}
    while (request := conn.recv()) is not None:
        prompt, stop, max_tokens, stream = request
        llm.reset()  # read the whole prompt, as the workbench path does (a fair TTFT)
        kwargs = {"max_tokens": max_tokens, "temperature": 0, "stop": stop or None}

        def run(prompt: str = prompt, stream: bool = stream, kwargs: dict = kwargs) -> RunResult:
            if not stream:
                out = llm.create_completion(prompt, **kwargs)
                tokens_of[prompt] = out["usage"]["completion_tokens"]
                return tokens_of[prompt], None, out["choices"][0]["finish_reason"]
            started, ttft, finish = time.perf_counter(), None, None
            for chunk in llm.create_completion(prompt, stream=True, **kwargs):
                choice = chunk["choices"][0]
                if choice["text"] and ttft is None:
                    ttft = (time.perf_counter() - started) * 1000
                finish = choice["finish_reason"] or finish
            # No usage when streaming: greedy on the same prompt gives the non-streaming count.
            return tokens_of.get(prompt, 0), ttft, finish

        conn.send(timed(run))


def bench_model(model_id: str, rounds: int, max_tokens: int) -> dict[str, PathStats]:
    """Alternate the five paths for `rounds` rounds on one model; return their runs."""
    from workbench.providers.completion import complete
    from workbench.providers.local.gguf import get_local_model, on_llama_thread

    local = get_local_model(model_id)
    llm = local._load()
    conn, child_conn = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=direct_server, args=(child_conn, str(local.spec.path()), local.spec.n_ctx), daemon=True
    )
    server.start()
    direct_threads = conn.recv()
    print(
        f"\n{model_id}: {local.spec.path().name}; threads (generate/prompt): direct "
        f"{direct_threads[0]}/{direct_threads[1]}, workbench {llm.n_threads}/{llm.n_threads_batch}"
    )
    params = {"max_tokens": max_tokens, "temperature": 0}

    def messages(i: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]

    def direct(i: int, stream: bool) -> Run:
        conn.send((*local.prompt_for(messages(i)), max_tokens, stream))
        return conn.recv()

    def model_stream(i: int) -> RunResult:
        last = None
        for _piece, gen in local.stream(messages(i), **params):
            last = gen
        return last.completion_tokens, None, last.finish_reason

    def workbench(i: int, stream: bool) -> RunResult:
        result = complete(model_id, messages(i), params, stream=stream)
        return result.completion_tokens or 0, result.ttft_ms, result.finish_reason

    paths: dict[str, Callable[[int], Run]] = {
        "direct": lambda i: direct(i, False),
        "direct-stream": lambda i: direct(i, True),
        "model.stream": lambda i: timed(lambda: model_stream(i)),
        "wb": lambda i: timed(lambda: workbench(i, False)),
        "wb-stream": lambda i: timed(lambda: workbench(i, True)),
    }
    for fn in paths.values():  # warm-up: loads, first LiteLLM import and routing
        fn(len(QUESTIONS) - 1)
    stats = {name: PathStats() for name in paths}
    names = list(paths)
    for r in range(rounds):
        # "direct" first in every round: "direct-stream" reuses its token count.
        for name in ["direct", *names[1:][r % 4 :], *names[1:][: r % 4]]:
            on_llama_thread(llm.reset)  # read the whole prompt again (a fair TTFT)
            stats[name].runs.append(paths[name](r))
    conn.send(None)
    server.join()
    return stats


def report(model_id: str, stats: dict[str, PathStats]) -> None:
    """Print the medians per path and the workbench / direct ratios."""
    print(f"{'path':<14} {'tok/s':>7} {'TTFT ms':>8} {'CPU ms/tok':>10}  tokens (finish)")
    rate = {}
    for name, path in stats.items():
        rate[name] = path.median(lambda run: run.tokens / run.seconds if run.seconds else None)
        ttft = path.median(lambda run: run.ttft_ms)
        cpu = path.median(lambda run: 1000 * run.cpu_seconds / run.tokens if run.tokens else None)
        tokens = ", ".join(f"{run.tokens} ({run.finish})" for run in path.runs)
        print(
            f"{name:<14} {rate[name] or 0:>7.1f} {'' if ttft is None else f'{ttft:.0f}':>8} "
            f"{cpu or 0:>10.2f}  {tokens}"
        )
    for wb, base in (("wb-stream", "direct-stream"), ("wb", "direct"), ("model.stream", "direct")):
        if rate.get(wb) and rate.get(base):
            print(f"ratio {wb} / {base}: {rate[wb] / rate[base]:.2f}")


def main() -> None:
    """Parse the arguments and run the bench on each model."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    args = parser.parse_args()
    # LiteLLM warns on every `complete` (one event loop per call) that its logging worker moved loops.
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    print(f"cores: {os.cpu_count()}; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"WORKBENCH_LOCAL_THREADS={os.environ.get('WORKBENCH_LOCAL_THREADS', '')!r}")
    for key in args.models.split(","):
        model_id = MODELS[key.strip()]
        report(model_id, bench_model(model_id, args.rounds, args.max_tokens))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
