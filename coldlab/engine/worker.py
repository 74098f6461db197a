"""The worker loop: claim a queued run, train it, record how it ended; repeat until the queue is empty.

A background thread renews the run's lease every few seconds (so long evaluations never look
like a dead worker) and picks up cancel requests. SIGINT/SIGTERM make the current run checkpoint
and end as ``interrupted``; ``coldlab run FILE --resume`` queues it again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import torch

from coldlab.engine.autoencoder_run import trainer_for
from coldlab.engine.trainer import Reporter, StopRequested
from coldlab.errors import ColdlabError
from coldlab.plugins import get_registry
from coldlab.store import (claim, connect, finish, has_evaluation, heartbeat, record_artifact, record_evaluation, record_metrics,
                           waiting)

LEASE_S = float(os.environ.get("COLDLAB_LEASE_S", "30"))  # a run whose worker is silent this long is requeued
BEAT_S = min(3.0, LEASE_S / 3)
WAIT_S = 2.0  # how often an idle worker looks again when queued runs wait for a running one


def run_dir(home: Path, run_id: int) -> Path:
    return Path(home) / "runs" / f"{run_id:05d}"


class StoreReporter(Reporter):
    """Sends a run's metrics and artifacts to the store; a heartbeat thread keeps its lease."""

    def __init__(self, db: Path, run_id: int, worker: str, stop_flag: threading.Event) -> None:
        self.home = Path(db).parent
        self.conn = connect(db)
        self.run_id, self.worker, self.stop_flag = run_id, worker, stop_flag
        self.epoch = self.step = self.total = 0
        self.cancelled = self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat_loop, args=(db,), daemon=True)
        self._thread.start()

    def _beat_loop(self, db: Path) -> None:
        conn = connect(db)
        while not self._done.wait(BEAT_S):
            owned, cancel = heartbeat(conn, self.run_id, self.worker, epoch=self.epoch, step=self.step,
                                      total_steps=self.total, lease_s=LEASE_S)
            self.lost, self.cancelled = not owned, cancel
        conn.close()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        heartbeat(self.conn, self.run_id, self.worker, epoch=self.epoch, step=self.step, total_steps=self.total, lease_s=LEASE_S)

    def log(self, line: str) -> None:
        """One line in the run's own log (``runs/NNNNN/run.log``), which the dashboard tails."""
        with open(run_dir(self.home, self.run_id) / "run.log", "a") as fh:
            fh.write(time.strftime("%H:%M:%S ") + line + "\n")

    def metrics(self, rows):
        if rows:
            record_metrics(self.conn, self.run_id, rows)
            for name, step, epoch, value, _ in rows:
                if name in ("train_loss", "val_loss") and value is not None:
                    self.log(f"epoch {epoch} step {step}: {name} {value:.5g}")

    def artifact(self, kind, path, epoch, step):
        record_artifact(self.conn, self.run_id, kind, path, epoch=epoch, step=step)

    def has_evaluation(self, key):
        return has_evaluation(self.conn, f"run{self.run_id}:{key}")

    def evaluation(self, *, key, epoch, step, sampler, settings, results, seconds, origin="training"):
        eval_id, _ = record_evaluation(
            self.conn, self.run_id, origin=origin, epoch=epoch, step=step, sampler=sampler, settings=settings,
            results=[(r.name, r.value, r.row_detail()) for r in results], seconds=seconds,
            key=f"run{self.run_id}:{key}", series=origin == "training",
        )
        shown = ", ".join(f"{r.name} {r.value:.4g}" if r.value is not None else f"{r.name} unavailable" for r in results)
        self.log(f"epoch {epoch} evaluation {eval_id} ({seconds:.1f} s): {shown}")
        return eval_id

    def progress(self, epoch, step, total_steps):
        self.epoch, self.step, self.total = epoch, step, total_steps
        if self.stop_flag.is_set():
            return "interrupted"
        if self.cancelled:
            return "cancelled"
        if self.lost:
            return "lost"
        return None


def run_one(home: Path, row: Any, worker: str, device: str, stop_flag: threading.Event) -> str:
    """Train one claimed run and record how it ended; returns the final status."""
    db = Path(home) / "coldlab.db"
    conn = connect(db)
    folder = run_dir(home, row["id"])
    folder.mkdir(parents=True, exist_ok=True)
    reporter = StoreReporter(db, row["id"], worker, stop_flag)
    reporter.log(f"claimed by {worker} on {device} (attempt {row['attempts']})")
    status, error = "failed", None
    try:
        spec = json.loads(row["config"])
        trainer = trainer_for(spec)(spec, folder, registry=get_registry(), reporter=reporter, device=device,
                                    cache_dir=Path(home) / "cache", home=Path(home))
        status = trainer.run(resume=True)
    except StopRequested as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = "interrupted"
    except ColdlabError as err:
        error = str(err)
    except torch.cuda.OutOfMemoryError:
        error = f"CUDA out of memory on {device} (hint: lower train.batch_size or use a smaller network)"
    except Exception as err:  # any other failure ends this run only; the worker moves on
        (folder / "error.log").write_text(traceback.format_exc())
        culprit = get_registry().blame(err)
        where = f" in plugin package {culprit.package} {culprit.version}" if culprit else ""
        error = f"{type(err).__name__}{where}: {err} (traceback in {folder / 'error.log'})"
    finally:
        reporter.close()
    final = status if status in ("finished", "cancelled", "interrupted") else "failed"
    if status != "lost":
        finish(conn, row["id"], worker, final, error)
    reporter.log(f"{final if status != 'lost' else 'lost its lease'}" + (f": {error}" if error else ""))
    conn.close()
    return status


def run_worker(home: str | Path, device: str = "cpu", *, worker: str | None = None) -> dict[str, int]:
    """Claim and run queued runs until the queue is empty (or until interrupted)."""
    home = Path(home)
    worker = worker or f"{socket.gethostname()}:{os.getpid()}:{device}"
    conn = connect(home / "coldlab.db")
    stop_flag = threading.Event()

    def on_signal(signum, frame):
        stop_flag.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    counts: dict[str, int] = {}
    try:
        while not stop_flag.is_set():
            row = claim(conn, worker, device, lease_s=LEASE_S)
            if row is None:
                if waiting(conn):  # runs wait for one another worker is running (a latent run's autoencoder)
                    stop_flag.wait(WAIT_S)
                    continue
                break
            status = run_one(home, row, worker, device, stop_flag)
            counts[status] = counts.get(status, 0) + 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return counts
