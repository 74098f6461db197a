"""The store's two hot paths, SQLite against PostgreSQL in one run on this machine:

- claim throughput: ``--runs`` queued runs taken by ``--workers`` processes at once, each claiming until
  the queue is empty (what a cluster's workers do when a study is queued); runs claimed per second;
- metric-write latency: one worker's ``record_metrics`` of a 10-row batch (a logging step), and its
  heartbeat, ``--writes`` times each; median and 95th percentile in ms.

PostgreSQL is ``--postgres URL`` (a database the benchmark may fill: use an empty one), else a throwaway
server started from the machine's PostgreSQL binaries (tests/pg.py) with fsync on, on the same disk as
the SQLite files. Prints one JSON object with each
figure and PostgreSQL's ratio to SQLite.

    python tests/benchmarks/bench_store.py [--runs 300] [--workers 6] [--writes 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/pg.py

from coldlab.store import claim, connect, enqueue, heartbeat, record_metrics  # noqa: E402


def _claimer(store: str, worker: str, start, out) -> None:  # type: ignore[no-untyped-def]
    conn = connect(store)
    start.wait()
    n = 0
    while claim(conn, worker, "cpu") is not None:
        n += 1
    out.put((n, time.perf_counter()))


def claim_throughput(store: str, runs: int, workers: int) -> float:
    conn = connect(store)
    for i in range(runs):
        enqueue(conn, "bench", f"r{i:05d}", {"i": i})
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(store, f"w{k}", start, out)) for k in range(workers)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every process import and connect before the race starts
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    claimed = sum(n for n, _ in results)
    assert claimed == runs, f"{claimed} of {runs} runs claimed"
    return runs / (max(t for _, t in results) - t0)


def write_latency(store: str, writes: int) -> dict[str, float]:
    conn = connect(store)
    run_id, _ = enqueue(conn, "bench", "writer", {})
    row = claim(conn, "writer", "cpu")
    assert row is not None
    metrics, beats = [], []
    for i in range(writes):
        rows = [("train_loss_step", i * 10 + k, i, 1.0 / (1 + i + k), None) for k in range(10)]
        t0 = time.perf_counter()
        record_metrics(conn, run_id, rows)
        t1 = time.perf_counter()
        heartbeat(conn, run_id, "writer", epoch=i, step=i * 10)
        t2 = time.perf_counter()
        metrics.append(t1 - t0)
        beats.append(t2 - t1)

    def ms(xs: list[float], q: float) -> float:
        return round(1000 * statistics.quantiles(xs, n=100)[int(q) - 1] if q < 100 else 1000 * max(xs), 3)

    return {"metrics_p50_ms": ms(metrics, 50), "metrics_p95_ms": ms(metrics, 95), "heartbeat_p50_ms": ms(beats, 50), "heartbeat_p95_ms": ms(beats, 95)}


def measure(store: str, args: argparse.Namespace, fresh) -> dict[str, float]:  # type: ignore[no-untyped-def]
    out = {"claims_per_s": round(claim_throughput(store, args.runs, args.workers), 1)}
    out.update(write_latency(fresh(), args.writes))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database (default: a throwaway server)")
    args = parser.parse_args()
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        count = iter(range(1000))
        sqlite = measure(str(Path(tmp) / "claims.db"), args, lambda: str(Path(tmp) / f"writes-{next(count)}.db"))
        if args.postgres:
            pg_url = args.postgres
            fresh = lambda: pg_url  # noqa: E731 - the writes add one run to the same database
        else:
            from pg import PgServer

            server = PgServer(fsync=True)  # durable commits, as a real server makes them
            pg_url, fresh = server.database(), server.database
        try:
            postgres = measure(pg_url, args, fresh)
        finally:
            if server is not None:
                server.close()
    ratios = {k: round(postgres[k] / sqlite[k], 2) for k in sqlite if sqlite[k]}
    print(json.dumps({"runs": args.runs, "workers": args.workers, "writes": args.writes, "sqlite": sqlite, "postgresql": postgres, "postgresql_vs_sqlite": ratios}, indent=2))


if __name__ == "__main__":
    main()
