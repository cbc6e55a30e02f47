"""Compare-page responsiveness on a big sweep (run by hand, not in pytest).

    .venv/bin/python -m tests.bench.bench_compare [--cells 10000]

Builds a synthetic finished sweep (2 versions x 5 models x 2 temperatures x 250 rows x 2 repeats
= 10,000 cells, with outputs, tokens, costs, latencies and two scores) directly in a temporary
SQLite database, then times, side by side in one run: loading the cells (runs_frame), the
per-column summary, a full AppTest render of the Compare page (first and cached), a filter
change, and a page change of the side-by-side grid.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", type=int, default=10_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-compare-"))
    os.environ["WORKBENCH_DATABASE_URL"] = f"sqlite:///{tmp / 'bench.db'}"
    started = time.perf_counter()
    sweep_id = build(args.cells)
    build_s = time.perf_counter() - started

    from streamlit.testing.v1 import AppTest

    from workbench.db import session_scope
    from workbench.sweeps.summary import runs_frame, summarize

    def load():
        with session_scope() as s:
            return runs_frame(s, sweep_id)

    df, load_s = timed(load)
    _, summary_s = timed(lambda: summarize(df))

    page = str(ROOT / "pages" / "4_Compare.py")
    first_started = time.perf_counter()
    at = AppTest.from_file(page, default_timeout=300).run()
    first_s = time.perf_counter() - first_started
    assert not at.exception, at.exception
    rerun_started = time.perf_counter()
    at.run()
    rerun_s = time.perf_counter() - rerun_started
    filter_started = time.perf_counter()
    at.multiselect(key="compare.f_models").set_value(["openai/model-0", "openai/model-1"]).run()
    filter_s = time.perf_counter() - filter_started
    page_started = time.perf_counter()
    at.number_input(key="compare.page").set_value(5).run()
    page_s = time.perf_counter() - page_started
    assert not at.exception, at.exception

    print(
        f"\n== Compare page on a {len(df):,}-cell sweep ({df['column'].nunique()} columns, "
        f"{df['row'].nunique() if 'row' in df else df['example_id'].nunique()} rows) =="
    )
    print(f"build synthetic sweep          : {build_s:6.2f} s (not part of the page)")
    print(f"runs_frame (one query + pivot) : {load_s * 1000:7.0f} ms")
    print(f"summarize (per column)         : {summary_s * 1000:7.0f} ms")
    print(f"page, first render (cold)      : {first_s * 1000:7.0f} ms")
    print(f"page, rerun (cached frame)     : {rerun_s * 1000:7.0f} ms")
    print(f"filter to 2 models             : {filter_s * 1000:7.0f} ms")
    print(f"grid page 5                    : {page_s * 1000:7.0f} ms")
    print(f"ratio cold / cached render     : {first_s / rerun_s:7.2f}")


if __name__ == "__main__":
    main()
