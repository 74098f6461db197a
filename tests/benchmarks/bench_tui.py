"""Dashboard refresh time on a big store: 200 runs and a million metric rows.

Builds the store in a temporary folder, then measures (a) one data poll (`load_snapshot`, run in a
worker thread by the app) and (b) a full refresh in the running app (poll + render on the UI
thread, as shown in its subtitle), against the same on a store of 3 runs as the baseline.

    python tests/benchmarks/bench_tui.py [--runs 200] [--rows 1000000] [--polls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from coldlab.store import connect, enqueue, record_evaluation
from coldlab.tui.data import load_snapshot


def build(home: Path, runs: int, rows: int) -> None:
    conn = connect(home / "coldlab.db")
    per_run = rows // runs
    now = time.time()
    for i in range(runs):
        run_id, _ = enqueue(conn, f"s{i % 5}", f"run-{i}", {"name": f"run-{i}", "train": {}, "eval": {}}, epochs=100)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO metrics (run_id, name, step, epoch, value, detail, recorded) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                         [(run_id, "train_loss_step", s, s // 100, 1.0 / (1 + s), now) for s in range(per_run)])
        conn.execute("COMMIT")
        for epoch in range(1, 21):
            record_evaluation(conn, run_id, origin="training", epoch=epoch, step=epoch * 100, sampler={"name": "ddpm"},
                              settings={}, results=[("classifier-fid", 100.0 / epoch, {})], key=f"training:{epoch}", series=True)
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


async def time_app(home: Path, polls: int) -> float:
    from coldlab.tui.app import ColdlabApp

    app = ColdlabApp(home, poll_s=0.2, show_devices=False)
    seen = []
    async with app.run_test(size=(160, 50)) as pilot:
        while len(seen) < polls:
            before = app.polls
            while app.polls == before:
                await pilot.pause(0.02)
            seen.append(app.last_refresh_s)
    return statistics.median(seen)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as big, tempfile.TemporaryDirectory() as small:
        start = time.perf_counter()
        build(Path(big), args.runs, args.rows)
        print(f"built {args.runs} runs, {args.rows} metric rows in {time.perf_counter() - start:.1f} s")
        build(Path(small), 3, 3000)
        base_poll, big_poll = time_polls(Path(small), args.polls), time_polls(Path(big), args.polls)
        base_app = asyncio.run(time_app(Path(small), args.polls // 2))
        big_app = asyncio.run(time_app(Path(big), args.polls // 2))
        print(f"data poll (worker thread): baseline 3 runs {base_poll * 1000:.1f} ms, {args.runs} runs {big_poll * 1000:.1f} ms "
              f"(ratio {big_poll / base_poll:.1f}x)")
        print(f"full refresh in the app (poll + render): baseline {base_app * 1000:.1f} ms, {args.runs} runs {big_app * 1000:.1f} ms "
              f"(ratio {big_app / base_app:.1f}x)")


if __name__ == "__main__":
    main()
