"""Sweep engine throughput against a local OpenAI-compatible server (run by hand, not in pytest).

    .venv/bin/python -m tests.bench.bench_sweep [--cells 1000] [--concurrency 64] [--latency 0.2]

Measures, in one run and against the same server (its own process, so it does not share the GIL):
  1. a hand-written asyncio.gather over litellm.acompletion (a semaphore of `concurrency`),
  2. the workbench sweep (planning excluded, then included) at the same concurrency,
  3. the ideal ceil(cells / concurrency) x latency,
  4. a re-run of the same sweep with the cache (provider calls must be 0),
  5. one worker process vs two worker processes on a bigger sweep (past LiteLLM's ~100 calls/s).
Prints wall times, cells/s, CPU per cell and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakeserver", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, proc.stdout.readline().strip()


def server_requests(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as resp:
        return json.load(resp)["requests"]


async def hand_written(base_url: str, n: int, concurrency: int, stream: bool) -> None:
    """The same requests a sweep cell makes (same params, timeout and retry settings), no bookkeeping."""
    import litellm

    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> str:
        async with sem:
            kwargs = {"stream_options": {"include_usage": True}} if stream else {}
            r = await litellm.acompletion(
                model="openai/fake-model",
                api_base=base_url,
                api_key="sk-bench",
                messages=[{"role": "user", "content": f"hand-{i} hello"}],
                max_tokens=256,
                timeout=120.0,
                max_retries=0,
                num_retries=0,
                stream=stream,
                **kwargs,
            )
            if stream:
                return "".join([c.choices[0].delta.content or "" async for c in r if c.choices])
            return r.choices[0].message.content

    await asyncio.gather(*(one(i) for i in range(n)))


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def setup_db(tmp: Path, base_url: str, rows: int) -> None:
    os.environ["WORKBENCH_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    models = tmp / "models.toml"
    models.write_text(
        f'[[model]]\nid = "openai/fake-model"\napi_base = "{base_url}"\napi_key_env = "WB_BENCH_KEY"\n'
        "input_price_per_million = 1\noutput_price_per_million = 2\nmax_concurrency = 512\n"
    )
    os.environ["WORKBENCH_MODELS"] = str(models)
    os.environ["WB_BENCH_KEY"] = "sk-bench"
    from workbench import datasets
    from workbench.db import migrate, session_scope
    from workbench.prompts import store

    migrate()
    with session_scope() as s:
        store.save_version(
            s, prompt_name="bench", messages=[{"role": "user", "content": "{{ marker }} hello"}]
        )
        table = datasets.ParsedTable(
            ["marker", "expected"],
            [{"marker": f"row-{i}", "expected": f"echo: row-{i} hello"} for i in range(rows)],
        )
        datasets.create_dataset(s, name="bench", table=table, expected_column="expected")


def plan(cells: int, concurrency: int, stream: bool, use_cache: bool = True) -> tuple[int, float]:
    from workbench.db import session_scope
    from workbench.sweeps.plan import SweepSpec, create_sweep

    spec = SweepSpec(
        prompts=["bench"],
        models=["openai/fake-model"],
        dataset="bench",
        max_rows=cells,
        concurrency=concurrency,
        stream=stream,
        use_cache=use_cache,
        scoring={"metrics": ["exact", "length"]},
    )
    started = time.perf_counter()
    with session_scope() as s:
        sweep, _ = create_sweep(s, spec)
    return sweep.id, time.perf_counter() - started


def run_workers(n_workers: int, sweep_id: int) -> float:
    env = {**os.environ}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "workbench", "worker", "--sweep", str(sweep_id)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n_workers)
    ]
    for p in procs:
        p.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--stream", action="store_true", help="Stream (TTFT) in both loops.")
    parser.add_argument("--rounds", type=int, default=5, help="Alternating rounds; medians are reported.")
    parser.add_argument("--process-cells", type=int, default=3000, help="Cells for the 1-vs-2 process run.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from workbench.config import apply_offline_env

    apply_offline_env()
    server, base_url = start_server(args.latency)
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        setup_db(tmp, base_url, max(args.cells, args.process_cells))
        from workbench.db import session_scope
        from workbench.providers.completion import ensure_litellm
        from workbench.sweeps.execute import execute_sweep
        from workbench.sweeps.summary import progress

        ensure_litellm()
        # Warm both paths up (LiteLLM's first call costs ~1 s; the engine's first sweep compiles
        # its SQL statements) so the rounds compare steady states.
        asyncio.run(hand_written(base_url, 64, 64, args.stream))
        warm_id, _ = plan(64, args.concurrency, args.stream, use_cache=False)
        execute_sweep(warm_id)
        ideal = math.ceil(args.cells / args.concurrency) * args.latency

        # Alternate the two loops for several rounds and take medians: on 2 cores the server, the
        # client and anything else running share the CPU, so single runs are noisy.
        hand_runs, wb_runs = [], []
        for _ in range(args.rounds):
            _, wall, cpu = timed(
                lambda: asyncio.run(hand_written(base_url, args.cells, args.concurrency, args.stream))
            )
            hand_runs.append((wall, cpu))
            sweep_id, plan_s = plan(args.cells, args.concurrency, args.stream, use_cache=False)
            _, wall, cpu = timed(lambda sid=sweep_id: execute_sweep(sid))
            wb_runs.append((wall, cpu))
            with session_scope() as s:
                p = progress(s, sweep_id)
            assert p.done == args.cells, p
        hand_wall, hand_cpu = (
            statistics.median(w for w, _ in hand_runs),
            statistics.median(c for _, c in hand_runs),
        )
        wb_wall, wb_cpu = statistics.median(w for w, _ in wb_runs), statistics.median(c for _, c in wb_runs)
        ratios = [w / h for (w, _), (h, _) in zip(wb_runs, hand_runs, strict=True)]

        before = server_requests(base_url)
        cached_id, cached_plan_s = plan(args.cells, args.concurrency, args.stream)
        _, cache_wall, _ = timed(lambda: execute_sweep(cached_id))
        cache_calls = server_requests(base_url) - before

        mode = "streaming" if args.stream else "non-streaming"
        print(
            f"\n== {args.cells} cells, concurrency {args.concurrency}, "
            f"server latency {args.latency * 1000:.0f} ms, "
            f"{mode}, 2 cores =="
        )
        print(f"ideal ceil({args.cells}/{args.concurrency}) x {args.latency} s   : {ideal:7.2f} s")
        print(
            f"hand-written asyncio.gather         : {hand_wall:7.2f} s  "
            f"{args.cells / hand_wall:6.1f} cells/s  "
            f"CPU {hand_cpu / args.cells * 1000:5.2f} ms/cell"
        )
        print(
            f"workbench sweep (execute)           : {wb_wall:7.2f} s  {args.cells / wb_wall:6.1f} cells/s  "
            f"CPU {wb_cpu / args.cells * 1000:5.2f} ms/cell"
        )
        print(f"workbench planning (render, cache)  : {plan_s:7.2f} s")
        print(
            f"ratio workbench / hand-written      : {wb_wall / hand_wall:7.3f}  "
            f"(per round: {', '.join(f'{r:.3f}' for r in ratios)})"
        )
        print(f"ratio workbench / ideal             : {wb_wall / ideal:7.3f}")
        print(f"ratio hand-written / ideal          : {hand_wall / ideal:7.3f}")
        print(
            f"cached re-run: provider calls {cache_calls}, "
            f"plan {cached_plan_s:.2f} s + execute {cache_wall:.2f} s"
        )

        n = args.process_cells
        one_id, _ = plan(n, 256, args.stream, use_cache=False)
        one_wall = run_workers(1, one_id)
        two_id, _ = plan(n, 256, args.stream, use_cache=False)
        two_wall = run_workers(2, two_id)
        with session_scope() as s:
            assert progress(s, one_id).done == n and progress(s, two_id).done == n
        print(f"\n== {n} cells, concurrency 256 per worker process (worker start-up included) ==")
        print(f"1 worker process : {one_wall:6.2f} s  {n / one_wall:6.1f} cells/s")
        print(
            f"2 worker processes: {two_wall:6.2f} s  {n / two_wall:6.1f} cells/s  "
            f"(speed-up {one_wall / two_wall:.2f}x)"
        )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
