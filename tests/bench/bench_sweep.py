"""Sweep engine throughput against a local OpenAI-compatible server (run by hand, not in pytest).

    .venv/bin/python -m tests.bench.bench_sweep [--cells 1000] [--concurrency 64] [--latency 0.2]
        [--processes N] [--process-cells 3000] [--process-concurrency 256] [--crossover 500,1000,2000]
        [--cold] [--only-processes] [--latencies 0ms,200ms]

Measures, in one run and against the same servers (their own processes, so they do not share the GIL):
  1. a hand-written asyncio.gather over litellm.acompletion (a semaphore of `concurrency`),
  2. the workbench sweep (planning excluded, then included) at the same concurrency,
  3. the ideal ceil(cells / concurrency) x latency,
  4. a re-run of the same sweep with the cache (provider calls must be 0),
  5. what a worker process costs to start (to "ready": interpreter, imports, LiteLLM), warm and,
     with --cold, with its library files evicted from the page cache first,
  6. one process vs N processes (`run_sweep`, N = the cores by default) at 0 ms and 200 ms server
     latency, rounds in a rotating order, medians: 1 process; N started at once; N all ready
     before the first call (the steady state); the default with no standby (fresh workers start
     once they pay); the default with standbys started and ready before the clock starts (the
     Run page, where they start while the user reads the preview). Wall time with the workers'
     start-up (what a user waits) and the calling time (first claim to last result), plus the
     servers' most requests in flight. Concurrency 256 by default: at 64 and 200 ms the latency
     bound (320 calls/s) is near what one process does, so no process count can show much,
  8. `python -m workbench sweep run` end to end (the command's own imports and planning in):
     --processes 1 vs the default, whose worker starts before planning,
  7. with --crossover: 1 process, N at once and the default by sweep size (where MIN_CELLS and
     the default's rule come from).
Prints wall times, cells/s, CPU per cell, the ratios and the load average around each section
(other work on the machine makes every number noisy).
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


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as resp:
        return json.load(resp)


def server_requests(base_url: str) -> int:
    return server_stats(base_url)["requests"]


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


def setup_db(tmp: Path, base_url: str, rows: int, latency_servers: dict[str, str]) -> None:
    """A database with a prompt and `rows` rows; models.toml: openai/fake-model at `base_url`,
    and one model per entry of `latency_servers` (model id -> base URL)."""
    os.environ["WORKBENCH_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    models = tmp / "models.toml"
    models.write_text(
        "".join(
            f'[[model]]\nid = "{model}"\napi_base = "{url}"\napi_key_env = "WB_BENCH_KEY"\n'
            "input_price_per_million = 1\noutput_price_per_million = 2\nmax_concurrency = 512\n\n"
            for model, url in {"openai/fake-model": base_url, **latency_servers}.items()
        )
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


def plan(
    cells: int, concurrency: int, stream: bool, use_cache: bool = True, model: str = "openai/fake-model"
) -> tuple[int, float]:
    from workbench.db import session_scope
    from workbench.sweeps.plan import SweepSpec, create_sweep

    spec = SweepSpec(
        prompts=["bench"],
        models=[model],
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


def load() -> str:
    """The 1-minute load average and how many cores it shares (others' work makes numbers noisy)."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def evict_library_files() -> int:
    """Drop the files of the heavy libraries from the page cache (a cold start without a reboot)."""
    import importlib.util

    count = 0
    for name in ("litellm", "openai", "tiktoken", "pydantic", "aiohttp", "httpx", "sqlalchemy", "sqlmodel"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for path in Path(folder).rglob("*"):
                if path.is_file():
                    with open(path, "rb") as f:
                        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                    count += 1
    return count


def worker_start(sweep_id: int) -> float:
    """Seconds from spawning a supervised worker to its "ready" (interpreter, imports, LiteLLM)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "worker", "--standby"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while proc.stdout.readline().strip() != "ready":
        pass
    seconds = time.perf_counter() - started
    proc.communicate("stop\n")  # anything but go: it exits without touching the sweep
    return seconds


def measure_startup(sweep_id: int, cold: bool) -> None:
    """Section 5: what starting a worker process costs."""
    warm = statistics.median(worker_start(sweep_id) for _ in range(3))
    print(f"\n== worker process start-up to ready ({load()}) ==")
    print(f"warm (files cached)                 : {warm:6.2f} s  (median of 3)")
    if cold:
        files = evict_library_files()
        print(f"cold ({files} library files evicted)  : {worker_start(sweep_id):6.2f} s")


def calling_seconds(sweep_id: int) -> float:
    """From the first cell claimed to the last result written (the sweep's calling time)."""
    from sqlalchemy import func
    from sqlmodel import select

    from workbench.db import session_scope
    from workbench.models import Run

    with session_scope() as s:
        first, last = s.exec(
            select(func.min(Run.started_at), func.max(Run.finished_at)).where(Run.sweep_id == sweep_id)
        ).one()
    return (last - first).total_seconds()


def modes(n: int, steady: bool = True) -> list[tuple[str, dict]]:
    """How `run_sweep` is called in the 1-vs-N sections: label -> keyword arguments."""
    found = [("1 process", {"processes": 1}), (f"{n} processes", {"processes": n})]
    if steady:  # every worker ready before the first call: the steady state, start-up left out
        found.append((f"{n} processes, steady", {"processes": n, "wait_for_workers": True}))
    found.append(("default (auto)", {"processes": None}))
    if steady:  # the Run page: the standby started while the user read the preview, now ready
        found.append(("default, standby ready", {"processes": None, "standby": n - 1}))
    return found


def ready_standbys(n: int) -> None:
    """Start `n` standby workers for the bench's database and wait until they are ready."""
    from workbench.db import get_engine
    from workbench.sweeps import standby

    url = get_engine().url.render_as_string(hide_password=False)
    for w in standby.pool().warm(url, n):
        w.ready.wait(120)


def one_vs_many(cells: int, concurrency: int, model: str, rounds: int, stream: bool, plan, how) -> dict:
    """Rounds over `how` (label -> run_sweep keywords) on fresh sweeps, in a rotating order;
    per label the median wall and calling times, and the per-round ratios to the first label."""
    from workbench.db import session_scope
    from workbench.sweeps.processes import run_sweep
    from workbench.sweeps.summary import progress

    walls: dict[str, list[float]] = {label: [] for label, _ in how}
    calling: dict[str, list[float]] = {label: [] for label, _ in how}
    for r in range(rounds):
        for label, kwargs in how[r % len(how) :] + how[: r % len(how)]:  # rotate which goes first
            sweep_id, _ = plan(cells, concurrency, stream, use_cache=False, model=model)
            kwargs = dict(kwargs)
            ready_standbys(kwargs.pop("standby", 0))
            started = time.perf_counter()
            run_sweep(sweep_id, **kwargs)
            walls[label].append(time.perf_counter() - started)
            calling[label].append(calling_seconds(sweep_id))
            with session_scope() as s:
                assert progress(s, sweep_id).done == cells
    base = how[0][0]
    return {
        "wall": {k: statistics.median(v) for k, v in walls.items()},
        "calling": {k: statistics.median(v) for k, v in calling.items()},
        "ratios": {k: [a / b for a, b in zip(walls[base], v, strict=True)] for k, v in walls.items()},
    }


def bench_processes(args, servers: dict[str, str], plan) -> None:
    """Section 6: one process vs N processes at 0 ms and 200 ms server latency."""
    from workbench.sweeps.processes import cores

    n = args.processes or cores()
    cells, conc = args.process_cells, args.process_concurrency
    for model, url in servers.items():
        before = load()
        how = modes(n)
        res = one_vs_many(cells, conc, model, args.rounds, args.stream, plan, how)
        wall, calling = res["wall"], res["calling"]
        print(f"\n== {cells} cells, concurrency {conc}, {model} (server latency {model.split('-')[-1]}) ==")
        print(f"{before} before, {load()} after; {args.rounds} rotating rounds, medians")
        print("                        wall (start-up in)      calling (first claim to last result)")
        for label, _ in how:
            w, c = wall[label], calling[label]
            rounds = ", ".join(f"{r:.2f}" for r in res["ratios"][label])
            print(
                f"{label:22}: {w:6.2f} s {cells / w:6.1f} cells/s   {c:6.2f} s {cells / c:6.1f} cells/s   "
                f"ratio {wall[how[0][0]] / w:.2f}x wall ({rounds}), {calling[how[0][0]] / c:.2f}x calling"
            )
        if model.endswith("200ms"):
            print(f"ideal ceil({cells}/{conc}) x 0.2 s: {math.ceil(cells / conc) * 0.2:.2f} s")
        print(f"server's most requests in flight: {server_stats(url)['max_in_flight']} (limit {conc})")


def cli_end_to_end(args, servers: dict[str, str]) -> None:
    """Section 8: `python -m workbench sweep run` as a user runs it, from the command's start to its
    exit (its own imports and planning in): one process vs the default, where the worker starts
    before planning (a standby) and imports LiteLLM while the command does."""
    import json

    cells, conc = args.process_cells, args.process_concurrency
    how = [("--processes 1", ["--processes", "1"]), ("default", [])]
    for model in servers:
        walls: dict[str, list[float]] = {label: [] for label, _ in how}
        used: dict[str, set[int]] = {label: set() for label, _ in how}
        before = load()
        for r in range(args.rounds):
            for label, extra in how[r % len(how) :] + how[: r % len(how)]:
                cmd = [sys.executable, "-m", "workbench", "sweep", "run", "--prompt", "bench",
                       "--dataset", "bench", "--models", model, "--limit", str(cells),
                       "--concurrency", str(conc), "--no-cache", "--json", *extra,
                       *([] if args.stream else ["--no-stream"])]  # fmt: skip
                started = time.perf_counter()
                out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
                walls[label].append(time.perf_counter() - started)
                report = json.loads(out)["report"]
                assert report["called"] == cells, report
                used[label].add(report["processes"])
        base = statistics.median(walls[how[0][0]])
        mode = "streaming" if args.stream else "not streaming"
        print(f"\n== CLI end to end: sweep run, {cells} cells, concurrency {conc}, {mode}, {model} ==")
        print(f"{before} before, {load()} after; {args.rounds} rotating rounds, medians")
        for label, _ in how:
            w = statistics.median(walls[label])
            rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(walls[how[0][0]], walls[label], strict=True))
            print(
                f"{label:14}: {w:6.2f} s {cells / w:6.1f} cells/s   ratio {base / w:.2f}x ({rounds}); "
                f"processes used {sorted(used[label])}"
            )


def crossover(args, sizes: list[int], servers: dict[str, str], plan) -> None:
    """Section 7: 1 vs N processes by sweep size, start-up included (where MIN_CELLS comes from)."""
    from workbench.sweeps.processes import cores

    n = args.processes or cores()
    how = modes(n, steady=False)
    print(f"\n== crossover: wall time by sweep size, start-up included ({load()}) ==")
    for model in servers:
        for cells in sizes:
            res = one_vs_many(cells, args.process_concurrency, model, args.rounds, args.stream, plan, how)
            wall = res["wall"]
            print(
                f"{model:18} {cells:6} cells: "
                + ", ".join(
                    f"{label} {wall[label]:6.2f} s ({wall[how[0][0]] / wall[label]:.2f}x)" for label, _ in how
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--stream", action="store_true", help="Stream (TTFT) in both loops.")
    parser.add_argument("--rounds", type=int, default=5, help="Alternating rounds; medians are reported.")
    parser.add_argument("--process-cells", type=int, default=3000, help="Cells for the 1-vs-N run.")
    parser.add_argument("--process-concurrency", type=int, default=256, help="Sweep concurrency (1-vs-N).")
    parser.add_argument("--processes", type=int, help="N of the 1-vs-N run (default: the cores).")
    parser.add_argument("--crossover", help="Sweep sizes for a 1-vs-N run each, e.g. 200,400,800,1600.")
    parser.add_argument("--cold", action="store_true", help="Also time a worker start with cold files.")
    parser.add_argument("--only-processes", action="store_true", help="Skip sections 1-4.")
    parser.add_argument("--latencies", default="0ms,200ms", help="Sections 6-7: 0ms, 200ms or both.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from workbench.config import apply_offline_env

    apply_offline_env()
    server, base_url = start_server(args.latency)
    zero, zero_url = start_server(0.0)
    slow, slow_url = start_server(0.2)
    latency_servers = {"openai/fake-0ms": zero_url, "openai/fake-200ms": slow_url}
    chosen = {m: u for m, u in latency_servers.items() if m.split("-")[-1] in args.latencies.split(",")}
    sizes = [int(x) for x in (args.crossover or "").split(",") if x.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    try:
        setup_db(tmp, base_url, max(args.cells, args.process_cells, *sizes), latency_servers)
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
        measure_startup(warm_id, cold=args.cold)
        if args.only_processes:
            bench_processes(args, chosen, plan)
            cli_end_to_end(args, chosen)
            if sizes:
                crossover(args, sizes, chosen, plan)
            return
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

        bench_processes(args, chosen, plan)
        cli_end_to_end(args, chosen)
        if sizes:
            crossover(args, sizes, chosen, plan)
    finally:
        for proc in (server, zero, slow):
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
