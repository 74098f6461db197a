"""The worker loop: claim a queued run, train it, record how it ended; repeat until the queue is empty.

A background thread renews the run's lease every few seconds (so long evaluations never look
like a dead worker) and picks up cancel requests. It survives store errors (it retries with a
growing pause); if the lease cannot be renewed before it runs out, the run stops at its next step
*without* writing a checkpoint (another worker may own the run folder by then) and goes back to
the queue, to resume from its last checkpoint. SIGINT/SIGTERM make the current run checkpoint and
end as ``interrupted``; ``coldlab run FILE --resume`` queues it again. SIGUSR2 (a batch scheduler's
"you are preempted" or "your time is nearly up") makes it checkpoint and go back to the queue as
``queued``, for the next worker to resume; the worker then exits.

A worker holds two store connections: one for its loop and the run it trains, one for the heartbeat
thread. An idle worker exits when nothing is queued, except while some other worker's run looks dead
(no heartbeat for a while): it waits for that run's lease to run out and takes it over, so a node that
dies mid-run costs that run one lease, not the study.

A worker is named ``HOST:PID:DEVICE``. A run whose worker process died (a segfault, ``kill -9``)
is queued again at once when the death is seen (``coldlab run`` sees its workers exit; any worker
or ``coldlab run`` on the same host sees the process is gone), else when its lease runs out; after
``max_attempts`` deaths (default 3) it fails with "worker died N times (...)".
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coldlab.engine.evaluation import MetricResult
from coldlab.engine.kinds import kind_of
from coldlab.engine.reporter import MetricRow, Reporter, StopRequested
from coldlab.engine.session import data_session
from coldlab.engine.tracking import TrackedReporter, build_trackers, tracked_run
from coldlab.errors import ColdlabError
from coldlab.home import Home, as_home
from coldlab.plugins import get_registry
from coldlab.provenance import ran
from coldlab.store import (
    claim,
    finish,
    has_evaluation,
    heartbeat,
    lease_seconds,
    record_artifact,
    record_evaluation,
    record_metrics,
    release,
    waiting,
    worker_died,
)
from coldlab.store.connection import db_errors
from coldlab.store.queries import running_workers, stale_runs
from coldlab.store.records import add_provenance

WAIT_S = 2.0  # how often an idle worker looks again when queued runs wait for a running one
STALE_S = 10.0  # a running run without a heartbeat for this long looks dead (healthy ones beat every 3 s)
MAX_BACKOFF_S = 5.0  # the longest pause between heartbeat retries after store errors


class StopFlag(threading.Event):
    """Set when the worker must stop; ``status`` says how its run ends: ``interrupted`` (SIGINT, SIGTERM)
    or ``requeue`` (SIGUSR2: checkpoint, then back to the queue)."""

    status = "interrupted"

    def request(self, status: str = "interrupted") -> None:
        if not self.is_set():
            self.status = status
        self.set()


def run_dir(home: Path | Home, run_id: int) -> Path:
    return as_home(home).run_dir(run_id)


def worker_id(device: str, pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}:{device}"


def local_pid(worker: str) -> int | None:
    """The process id of a worker of this host, or None (another host, or not a worker id)."""
    host, _, rest = worker.partition(":")
    pid = rest.split(":", 1)[0]
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_dead_workers(conn: Any) -> list[tuple[int, str]]:
    """Count a death for every running run held by a worker process of this host that no longer
    exists (queue it again at once, or fail it after ``max_attempts``); returns (run id, new status)."""
    out = []
    for worker in running_workers(conn):
        pid = local_pid(worker)
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            out += worker_died(conn, worker, f"worker process {pid} is gone")
    return out


def describe_exit(code: int) -> str:
    """A worker's exit code as people read it: ``killed by SIGSEGV`` or ``exit code 3``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def describe_os_error(err: OSError) -> str:
    """A failed file operation (disk full, permissions, a missing file) as one line: what, where, what to do."""
    what = err.strerror or str(err)
    where = f" {err.filename}" if err.filename else ""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"could not write{where}: {what} (hint: free some disk space, then coldlab run FILE --resume)"
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"could not write{where}: {what} (hint: check the folder's permissions, then coldlab run FILE --resume)"
    return f"file error{where}: {what} (hint: check that the file and its folder exist, then coldlab run FILE --resume)"


class StoreReporter(Reporter):
    """Sends a run's metrics and artifacts to the store; a heartbeat thread keeps its lease.

    ``clock`` is the time the lease is judged by (tests move it on)."""

    def __init__(
        self,
        home: Path | Home,
        run_id: int,
        worker: str,
        stop_flag: threading.Event,
        *,
        lease_s: float | None = None,
        clock: Callable[[], float] = time.time,
        beat: Callable[..., Any] = heartbeat,
        conn: Any = None,
    ) -> None:
        self.home = as_home(home)
        self._own_conn = conn is None  # the worker lends its connection; a reporter made alone opens one
        self.conn = self.home.connect() if conn is None else conn
        self.run_id, self.worker, self.stop_flag = run_id, worker, stop_flag
        self.lease_s = lease_seconds() if lease_s is None else lease_s
        self.beat_s = min(3.0, self.lease_s / 3)
        self.clock, self._beat = clock, beat
        self.lease_until = clock() + self.lease_s  # claim() just took the lease
        self.epoch = self.step = self.total = 0
        self.cancelled = self.lost = False
        self.beat_errors = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat_loop, daemon=True)
        self._thread.start()

    def renew(self, conn: Any) -> None:
        """One heartbeat: extend the lease (from the time asked) and record progress."""
        asked = self.clock()
        owned, cancel = self._beat(conn, self.run_id, self.worker, epoch=self.epoch, step=self.step, total_steps=self.total, lease_s=self.lease_s)
        if owned:
            self.lease_until = asked + self.lease_s
        self.lost = self.lost or not owned
        self.cancelled = cancel

    def _beat_loop(self) -> None:
        conn, pause = None, self.beat_s
        while not self._done.wait(pause):
            try:
                conn = conn or self.home.connect()
                self.renew(conn)
                pause = self.beat_s
            except Exception as err:  # the store is busy, locked or gone for a moment: retry, more slowly
                self.beat_errors += 1
                pause = min(MAX_BACKOFF_S, pause * 2)
                self.log(f"heartbeat failed ({type(err).__name__}: {err}); retrying in {pause:.1f} s", quiet=True)
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        pass
                    conn = None
        if conn is not None:
            conn.close()

    @property
    def lease_lapsing(self) -> bool:
        """True once the lease may lapse before the next heartbeat: the run must stop now."""
        return self.clock() >= self.lease_until - self.beat_s

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=30)
        if not self.lost:
            try:
                self.renew(self.conn)
            except Exception:
                pass
        if self._own_conn:
            self.conn.close()

    def log(self, line: str, *, quiet: bool = False) -> None:
        """One line in the run's own log (``runs/NNNNN/run.log``), which the dashboard tails."""
        try:
            with open(self.home.run_log(self.run_id), "a") as fh:
                fh.write(time.strftime("%H:%M:%S ") + line + "\n")
        except OSError:
            if not quiet:
                raise

    def metrics(self, rows: list[MetricRow]) -> None:
        if rows:
            record_metrics(self.conn, self.run_id, rows)
            for name, step, epoch, value, _ in rows:
                if name in ("train_loss", "val_loss") and value is not None:
                    self.log(f"epoch {epoch} step {step}: {name} {value:.5g}")

    def artifact(self, kind: str, path: str, epoch: int | None, step: int | None) -> None:
        record_artifact(self.conn, self.run_id, kind, self.home.relative(path), epoch=epoch, step=step)

    def has_evaluation(self, key: str) -> bool:
        return has_evaluation(self.conn, f"run{self.run_id}:{key}")

    def evaluation(
        self,
        *,
        key: str,
        epoch: int,
        step: int,
        sampler: dict[str, Any],
        settings: dict[str, Any],
        results: list[MetricResult],
        seconds: float,
        origin: str = "training",
    ) -> int | None:
        eval_id, _ = record_evaluation(
            self.conn,
            self.run_id,
            origin=origin,
            epoch=epoch,
            step=step,
            sampler=sampler,
            settings=settings,
            results=[(r.name, r.value, r.row_detail()) for r in results],
            seconds=seconds,
            key=f"run{self.run_id}:{key}",
            series=origin == "training",
        )
        shown = ", ".join(f"{r.name} {r.value:.4g}" if r.value is not None else f"{r.name} unavailable" for r in results)
        self.log(f"epoch {epoch} evaluation {eval_id} ({seconds:.1f} s): {shown}")
        return eval_id

    def progress(self, epoch: int, step: int, total_steps: int) -> str | None:
        self.epoch, self.step, self.total = epoch, step, total_steps
        if self.stop_flag.is_set():
            return str(getattr(self.stop_flag, "status", "interrupted"))
        if self.cancelled:
            return "cancelled"
        if self.lost or self.lease_lapsing:
            self.lost = True
            return "lost"
        return None


def run_one(
    home: Path | Home,
    row: Any,
    worker: str,
    device: str,
    stop_flag: threading.Event,
    reporter_factory: Callable[..., StoreReporter] = StoreReporter,
    *,
    conn: Any = None,
) -> str:
    """Train one claimed run and record how it ended; returns the final status (``lost``: the lease
    could not be kept; the run went back to the queue without a checkpoint of this attempt's end;
    ``requeue``: it was checkpointed and went back to the queue). ``conn``: the worker's connection
    (default: one opened and closed here)."""
    home = as_home(home)
    own_conn = conn is None
    conn = home.connect() if conn is None else conn
    folder = home.run_dir(row["id"])
    status, error = "failed", None
    reporter = None
    tracked: TrackedReporter | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reporter = reporter_factory(home, row["id"], worker, stop_flag, conn=conn)
        reporter.log(f"claimed by {worker} on {device} (attempt {row['attempts']})")
        add_provenance(conn, row["id"], "ran", ran(device))
        spec = json.loads(row["config"])
        registry = get_registry()
        active: Reporter = reporter
        if row["trackers"]:
            tracked = TrackedReporter(reporter, build_trackers(registry, json.loads(row["trackers"]), reporter.log), tracked_run(home, row))
            active = tracked
        trainer = kind_of(spec).trainer()(spec, folder, registry=registry, reporter=active, device=device, cache_dir=home.cache, home=home.root)
        status = trainer.run(resume=True)
    except StopRequested as stop:
        status = stop.status
    except KeyboardInterrupt:
        status = "interrupted"
    except ColdlabError as err:
        error = str(err)
    except torch.cuda.OutOfMemoryError:
        error = f"CUDA out of memory on {device} (hint: lower train.batch_size or use a smaller network)"
    except OSError as err:  # disk full, permissions: one line, the run ends as failed
        error = describe_os_error(err)
    except db_errors() as err:  # the store itself could not be written (e.g. its disk is full)
        error = f"could not write the store {home.store_label}: {err} (hint: free some disk space, then coldlab run FILE --resume)"
    except Exception as err:  # any other failure ends this run only; the worker moves on
        culprit = get_registry().blame(err)
        where = f" in plugin package {culprit.package} {culprit.version}" if culprit else ""
        error = f"{type(err).__name__}{where}: {err}"
        try:
            home.error_log(row["id"]).write_text(traceback.format_exc())
            error += f" (traceback in {home.error_log(row['id'])})"
        except OSError:
            pass
    finally:
        if reporter is not None:
            reporter.close()
    final = status if status in ("finished", "cancelled", "interrupted") else "failed"
    if status == "lost":
        release(conn, row["id"], worker)  # if it is still ours; another worker resumes it from its checkpoint
        ended = "lost its lease: stopped without a checkpoint; the run resumes from its last one"
    elif status == "requeue":
        release(conn, row["id"], worker)
        ended = "preempted: checkpointed and queued again"
    else:
        finish(conn, row["id"], worker, final, error)
        ended = final + (f": {error}" if error else "")
    if tracked is not None:
        tracked.end(final if status not in ("lost", "requeue") else "interrupted")
    if reporter is not None:
        reporter.log(ended, quiet=True)
    if own_conn:
        conn.close()
    return status


def run_worker(home: str | Path | Home, device: str = "cpu", *, worker: str | None = None, requeue_on_term: bool = False) -> dict[str, int]:
    """Claim and run queued runs until the queue is empty (or until interrupted). ``requeue_on_term``:
    SIGTERM puts the run back in the queue like SIGUSR2 (a batch job, where SIGTERM means preemption or
    cancellation, not "this run is done for")."""
    home = as_home(home)
    worker = worker or worker_id(device)
    conn = home.connect()
    stop_flag = StopFlag()

    def on_signal(signum: int, frame: Any) -> None:
        requeue = signum == signal.SIGUSR2 or (requeue_on_term and signum == signal.SIGTERM)
        stop_flag.request("requeue" if requeue else "interrupted")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)}
    counts: dict[str, int] = {}
    try:
        with data_session():  # the worker's runs share datasets and latents; dropped when it ends
            while not stop_flag.is_set():
                reclaim_dead_workers(conn)
                row = claim(conn, worker, device)
                if row is None:
                    # runs wait for one another worker is running (a latent run's autoencoder), or a run's
                    # worker looks dead: its lease runs out soon and this worker takes the run over
                    if waiting(conn) or stale_runs(conn, time.time() - min(STALE_S, lease_seconds() * 2 / 3)):
                        stop_flag.wait(WAIT_S)
                        continue
                    break
                status = run_one(home, row, worker, device, stop_flag, conn=conn)
                counts[status] = counts.get(status, 0) + 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        conn.close()
    return counts
