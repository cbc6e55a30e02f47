"""Compare-page responsiveness on a big sweep (run by hand, not in pytest).

    .venv/bin/python -m tests.bench.bench_compare [--cells 10000] [--rounds 5] [--before REV]

Builds a synthetic finished sweep (2 versions x 5 models x 2 temperatures x 250 rows x 2 repeats
= 10,000 cells, with outputs, tokens, costs, latencies and two scores) directly in a temporary
SQLite database, then times loading the cells (runs_frame), the per-column summary, the first
visit of the Compare page after start (its modules imported on the way), and AppTest rounds of
the page: cold (the page's caches emptied, as after a new result arrives), a rerun, a filter
change, a page change of the side-by-side grid, and opening each other tab (only the open tab is
computed, so opening one is a rerun that computes it). Medians of wall time and of the process's
CPU time (which other programs on the machine inflate much less than wall time).

With --before REV (a git revision, e.g. 5949d04, the last commit before the aggregated charts),
the page is also run with REV's `workbench/ui/compare.py` and `compare_consistency.py` (read with
`git show`; every other module as in the working tree), rounds alternating in this one process,
and the medians are printed side by side with their ratio. The latency box plot alone is always
compared both ways: one point per cell through plotly express (what the page did before) against
quartiles and whiskers computed here (what it does now), built and serialised to JSON.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BEFORE_FILES = {
    "compare": "workbench/ui/compare.py",
    "compare_consistency": "workbench/ui/compare_consistency.py",
}
SCRIPT = """
import importlib
from workbench.ui.common import setup_page
setup_page("Compare", "x")
importlib.import_module({module!r}).render()
"""


def build(cells_target: int) -> int:
    from sqlalchemy import insert
    from sqlmodel import select

    from workbench import datasets
    from workbench.db import migrate, session_scope
    from workbench.models import Run, Score, Sweep, utcnow
    from workbench.prompts import store
    from workbench.sweeps.plan import cache_key

    migrate()
    models = [f"openai/model-{i}" for i in range(5)]
    temps = [0.0, 0.7]
    repeats = 2
    rows = max(1, cells_target // (2 * len(models) * len(temps) * repeats))
    rng = random.Random(0)
    with session_scope() as s:
        v1, _ = store.save_version(s, prompt_name="big", messages=[{"role": "user", "content": "{{ q }}"}])
        v2, _ = store.save_version(s, prompt_name="big", messages=[{"role": "user", "content": "Q: {{ q }}"}])
        table = datasets.ParsedTable(
            ["q", "expected"], [{"q": f"question {i}", "expected": "yes"} for i in range(rows)]
        )
        ds = datasets.create_dataset(s, name="big", table=table, expected_column="expected")
        examples = datasets.examples_of(s, ds.id)
        sweep = Sweep(
            name="synthetic",
            status="done",
            config={"spec": {"params": {"temperature": temps}}, "dataset_id": ds.id},
        )
        s.add(sweep)
        s.flush()
        now = utcnow()
        runs = []
        for v in (v1, v2):
            for m in models:
                for t in temps:
                    for ex in examples:
                        for rep in range(repeats):
                            text = " ".join(
                                rng.choice(["yes", "no", "maybe", "perhaps", "certainly"])
                                for _ in range(rng.randint(5, 60))
                            )
                            msgs = [{"role": "user", "content": ex.inputs["q"]}]
                            runs.append(
                                {
                                    "sweep_id": sweep.id,
                                    "version_id": v.id,
                                    "model": m,
                                    "params": {"temperature": t, "max_tokens": 256},
                                    "example_id": ex.id,
                                    "variables": {},
                                    "repeat_index": rep,
                                    "cache_key": cache_key(m, {"temperature": t}, msgs, rep),
                                    "messages": msgs,
                                    "status": "done" if rng.random() > 0.02 else "failed",
                                    "cached": False,
                                    "attempts": 1,
                                    "output": text,
                                    "finish_reason": "stop",
                                    "prompt_tokens": 20,
                                    "completion_tokens": len(text.split()),
                                    "cost_usd": rng.random() / 1000,
                                    "latency_ms": rng.lognormvariate(6, 0.5),
                                    "ttft_ms": rng.lognormvariate(5, 0.5),
                                    "created_at": now,
                                    "finished_at": now,
                                }
                            )
        for start in range(0, len(runs), 2000):
            s.execute(insert(Run), runs[start : start + 2000])
        s.flush()
        ids = list(s.exec(select(Run.id).where(Run.sweep_id == sweep.id)))
        scores = [
            {"run_id": i, "metric": m, "value": float(rng.random() > 0.5), "detail": None}
            for i in ids
            for m in ("exact", "contains")
        ]
        for start in range(0, len(scores), 5000):
            s.execute(insert(Score), scores[start : start + 5000])
        return sweep.id


def timed(fn, repeat: int = 3) -> tuple[object, float]:
    results, times = None, []
    for _ in range(repeat):
        started = time.perf_counter()
        results = fn()
        times.append(time.perf_counter() - started)
    return results, statistics.median(times)


def load_before(rev: str, into: Path) -> dict[str, object]:
    """REV's compare page modules, imported from files under `into` (their own names, their own caches)."""
    loaded = {}
    for name, path in BEFORE_FILES.items():
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True, check=False
        )
        if shown.returncode:
            sys.exit(f"--before {rev}: cannot read {path} from git: {shown.stderr.strip()}")
        file = into / f"before_{name}.py"
        file.write_text(shown.stdout)
        spec = importlib.util.spec_from_file_location(f"wb_before_{name}", file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        loaded[name] = module
    loaded["compare"].compare_consistency = loaded["compare_consistency"]  # its own, not today's
    return loaded


def clear_caches(modules) -> None:
    """Empty the st.cache_* of these modules' functions (a cold page, with the modules imported)."""
    from streamlit.runtime.caching.cache_utils import CachedFunc

    for module in modules:
        for value in vars(module).values():
            if isinstance(value, CachedFunc):
                value.clear()


STEPS = {
    "cold": "page, cold (caches emptied)",
    "rerun": "page, rerun (cached)",
    "filter": "filter to 2 models",
    "page": "grid page 5",
}
TAB_STEPS = {  # the page computes only the open tab: opening one is a rerun that computes it
    "Summary": "open Summary (first time)",
    "Charts": "open Charts (first time)",
    "Difference": "open Difference (first time)",
    "tab rerun": "rerun, Difference open",
}


def page_round(module_name: str, modules, tabs: bool) -> dict[str, tuple[float, float]]:
    """One cold render, a rerun, a filter change, a grid page change and (`tabs`) opening each
    other tab: (wall, CPU) seconds per step. CPU is the process's, which other programs on the
    machine do not inflate the way they inflate wall time."""
    from streamlit.testing.v1 import AppTest

    clear_caches(modules)
    at = AppTest.from_string(SCRIPT.format(module=module_name), default_timeout=300)

    def open_tab(name: str):
        at.session_state["compare.tab"] = name
        return at.run()

    steps = [
        ("cold", lambda: at.run()),
        ("rerun", lambda: at.run()),
        (
            "filter",
            lambda: (
                at.multiselect(key="compare.f_models").set_value(["openai/model-0", "openai/model-1"]).run()
            ),
        ),
        ("page", lambda: at.number_input(key="compare.page").set_value(5).run()),
    ]
    if tabs:
        steps += [(name, lambda name=name: open_tab(name)) for name in ("Summary", "Charts", "Difference")]
        steps.append(("tab rerun", lambda: at.run()))
    out = {}
    gc.collect()
    for name, step in steps:
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        out[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        if at.exception:
            sys.exit(f"{module_name}: the page failed: {at.exception}")
    return out


def box_both_ways(df, rounds: int) -> tuple[float, float, int, int]:
    """Median seconds to build and serialise the latency box plot per point and from statistics,
    and the JSON sizes."""
    import plotly.express as px
    import plotly.io

    from workbench.ui import compare_charts

    def per_point() -> str:
        done = df[df["status"] == "done"]
        lat = done.assign(temperature=done["params"].map(lambda p: str(p.get("temperature", "default"))))
        fig = px.box(lat, x="model", y="latency_ms", color="temperature", points=False)
        return plotly.io.to_json(fig, validate=False)

    def from_stats() -> str:
        fig = compare_charts.latency_figure(compare_charts.latency_boxes(df))
        return plotly.io.to_json(fig, validate=False)

    a, b = [], []
    for i in range(rounds):
        for fn, times in (
            ((per_point, a), (from_stats, b)) if i % 2 == 0 else ((from_stats, b), (per_point, a))
        ):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b), len(per_point()), len(from_stats())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="page rounds per variant (medians are printed)")
    parser.add_argument("--before", metavar="REV", help="also run REV's Compare page, rounds alternating")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-compare-"))
    os.environ["WORKBENCH_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    started = time.perf_counter()
    sweep_id = build(args.cells)
    build_s = time.perf_counter() - started

    from workbench.db import session_scope
    from workbench.sweeps.summary import runs_frame, summarize

    def load():
        with session_scope() as s:
            return runs_frame(s, sweep_id)

    df, load_s = timed(load)
    _, summary_s = timed(lambda: summarize(df))

    # The first visit after the server starts: the page's modules are imported on the way.
    from streamlit.testing.v1 import AppTest

    wall, cpu = time.perf_counter(), time.process_time()
    first = AppTest.from_string(SCRIPT.format(module="workbench.ui.compare"), default_timeout=300)
    first.run()
    first_s = (time.perf_counter() - wall, time.process_time() - cpu)
    if first.exception:
        sys.exit(f"the page failed: {first.exception}")
    from workbench.ui import compare, compare_charts, compare_consistency, compare_diff

    pages = [compare, compare_charts, compare_consistency, compare_diff]
    variants = {"after": ("workbench.ui.compare", pages, True)}
    if args.before:
        before = load_before(args.before, tmp)
        # REV drew every tab on every run (changing tabs was free, in the browser): no tab steps.
        pages = [before["compare"], before["compare_consistency"], compare_diff]
        variants["before"] = ("wb_before_compare", pages, False)
    names = list(variants)
    times: dict[str, dict[str, list[tuple[float, float]]]] = {v: {} for v in names}
    for i in range(args.rounds):
        for variant in names if i % 2 == 0 else names[::-1]:
            for step, seconds in page_round(*variants[variant]).items():
                times[variant].setdefault(step, []).append(seconds)
    box_points_s, box_stats_s, box_points_bytes, box_stats_bytes = box_both_ways(df, max(args.rounds, 5))

    wall = {
        v: {step: statistics.median(t[0] for t in ts) * 1000 for step, ts in times[v].items()} for v in names
    }
    cpu = {
        v: {step: statistics.median(t[1] for t in ts) * 1000 for step, ts in times[v].items()} for v in names
    }
    load1, load5, _ = os.getloadavg()
    print(
        f"\n== Compare page on a {len(df):,}-cell sweep ({df['column'].nunique()} columns, "
        f"{df['example_id'].nunique()} rows), {args.rounds} rounds, medians "
        f"(load average {load1:.2f} / {load5:.2f}, {os.cpu_count()} cores) =="
    )
    print(f"build synthetic sweep                : {build_s:8.2f} s (not part of the page)")
    print(
        f"first visit after start (imports)    : {first_s[0] * 1000:8.0f} ms wall, "
        f"{first_s[1] * 1000:.0f} ms CPU (once per server process)"
    )
    print(f"runs_frame (one query + pivot)       : {load_s * 1000:8.0f} ms")
    print(f"summarize (per column)               : {summary_s * 1000:8.0f} ms")
    rev = f"before {args.before}" if args.before else ""
    print(
        f"{'':39}{'wall ' + rev:>20} {'after':>8} {'ratio':>6}   {'CPU ' + rev:>19} {'after':>8} {'ratio':>6}"
    )

    def cells(step: str, source: dict) -> str:
        a = source["after"][step]
        if "before" not in source:
            return f"{'':>20} {a:5.0f} ms {'':>6}"
        if step not in source["before"]:
            return f"{'(drawn upfront)':>20} {a:5.0f} ms {'':>6}"
        b = source["before"][step]
        return f"{b:17.0f} ms {a:5.0f} ms {a / b:6.2f}"

    for step, label in {**STEPS, **TAB_STEPS}.items():
        print(f"{label:37} : {cells(step, wall)}   {cells(step, cpu)}")
    print(
        f"latency box plot, build + JSON       : per point {box_points_s * 1000:.0f} ms "
        f"({box_points_bytes / 1024:,.0f} KiB), from statistics {box_stats_s * 1000:.1f} ms "
        f"({box_stats_bytes / 1024:,.1f} KiB), ratio {box_stats_s / box_points_s:.3f}"
    )


if __name__ == "__main__":
    main()
