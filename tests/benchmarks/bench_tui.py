"""The dashboard on a big store: 200 runs and a million metric rows. Reports the longest stall of the UI
thread (target: 50 ms) while it polls, follows the cursor, sorts, filters and compares, and the dashboard
process's peak memory.

The store is built in a temporary folder (every run with 20 evaluations and a sample grid). The app then
runs headless in a fresh process (so its peak RSS is the dashboard's own), with a 5 ms ticker on the UI
thread: a stall is how late a tick comes. The baseline, measured in the same run, is what a read of the
store costs when made on the UI thread (one ``load_snapshot``, as the first dashboard did for some loads):
the ratio says how much of it the UI no longer waits for.

    python tests/benchmarks/bench_tui.py [--runs 200] [--rows 1000000] [--polls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from coldlab.store import connect, enqueue, record_artifact, record_evaluation
from coldlab.tui.data import load_snapshot


def build(home: Path, runs: int, rows: int) -> None:
    from PIL import Image

    (home / "runs").mkdir(parents=True, exist_ok=True)
    Image.new("L", (2 + 8 * 30, 2 + 8 * 30), 128).save(home / "runs" / "grid.png")  # an 8x8 MNIST-sized grid
    conn = connect(home / "coldlab.db")
    per_run = rows // runs
    now = time.time()
    for i in range(runs):
        run_id, _ = enqueue(conn, f"s{i % 5}", f"run-{i}", {"name": f"run-{i}", "train": {}, "eval": {"grid": 64}}, epochs=100)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, NULL, ?)",
            [(run_id, "train_loss_step", s, s // 100, 1.0 / (1 + s), now) for s in range(per_run)],
        )
        conn.execute("COMMIT")
        for epoch in range(1, 21):
            record_evaluation(conn, run_id, origin="training", epoch=epoch, step=epoch * 100, sampler={"name": "ddpm"},
                              settings={}, results=[("classifier-fid", 100.0 / epoch, {})], key=f"training:{epoch}", series=True)
            record_artifact(conn, run_id, "grid", "runs/grid.png", epoch=epoch, step=epoch * 100)
        if i % 4 == 0:
            conn.execute("UPDATE runs SET status = 'running', device = 'cpu', epoch = 3, step = 300, total_steps = 10000, started = ? "
                         "WHERE id = ?", (now - 60, run_id))
            conn.commit()
    conn.close()


def time_polls(home: Path, polls: int) -> float:
    times = []
    for k in range(polls):
        start = time.perf_counter()
        load_snapshot(home, selected=1 + k % 7)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def drive(home: str, polls: int) -> dict[str, float]:
    from coldlab.tui.app import ColdlabApp

    app = ColdlabApp(home, poll_s=1.0, show_devices=False)
    ticks: list[float] = []
    phases: list[tuple[float, str]] = []

    def phase(name: str) -> None:
        phases.append((time.perf_counter(), name))

    async def settle(pilot, n=1):  # type: ignore[no-untyped-def]
        start = app.polls
        while app.polls < start + n:
            await pilot.pause(0.05)

    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot, 2)
        app.set_interval(0.005, lambda: ticks.append(time.perf_counter()))
        phase("idle polling")
        await settle(pilot, polls)
        phase("cursor")
        for _ in range(10):  # follow the cursor: a poll per selected run
            await pilot.press("down")
            await settle(pilot)
        phase("sort")
        for _ in range(4):  # sort by four columns
            await pilot.press("s")
            await pilot.pause(0.2)
        phase("filter")
        app.set_filter("status = running")
        await settle(pilot, 2)
        app.set_filter("")
        await settle(pilot, 2)
        phase("mark")
        for _ in range(3):
            await pilot.press("space", "down")
        phase("compare")
        await pilot.press("m")
        while not app.screen.query("#compare") or not app.screen.query_one("#compare").row_count:
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        phase("back")
        await pilot.press("escape")
        await settle(pilot, 2)
    gaps = [(b, b - a) for a, b in zip(ticks, ticks[1:], strict=False)]
    stalls = sorted(max(0.0, g - 0.005) for _, g in gaps)
    worst: dict[str, float] = {}
    for end, gap in gaps:
        name = next((n for t, n in reversed(phases) if t <= end), "start")
        worst[name] = max(worst.get(name, 0.0), (gap - 0.005) * 1000)
    return {
        "ticks": len(ticks),
        "longest_stall_ms": stalls[-1] * 1000,
        "p99_stall_ms": stalls[int(0.99 * (len(stalls) - 1))] * 1000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_imported": float("torch" in sys.modules),
        "longest_stall_ms_by_phase": worst,  # type: ignore[dict-item]
    }


def _child(home: str, polls: int, out) -> None:  # type: ignore[no-untyped-def]
    out.put(asyncio.run(drive(home, polls)))


def in_fresh_process(home: Path, polls: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(str(home), polls, out))
    proc.start()
    result = out.get()
    proc.join()
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--polls", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as big:
        start = time.perf_counter()
        build(Path(big), args.runs, args.rows)
        print(f"built {args.runs} runs, {args.rows} metric rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        on_ui_thread = time_polls(Path(big), args.polls)
        app = in_fresh_process(Path(big), args.polls)
        result = {
            "runs": args.runs,
            "metric_rows": args.rows,
            "baseline_poll_on_ui_thread_ms": on_ui_thread * 1000,
            **app,
            "stall_vs_baseline": app["longest_stall_ms"] / (on_ui_thread * 1000),
            "target_ms": 50,
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
