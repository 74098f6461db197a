"""Executors: what starts the workers that claim queued runs from the store.

``coldlab run`` (and the dashboard) queue runs in the store (``HOME/coldlab.db``, or ``--store``) and
then ask an executor to start one worker per device. A worker is anything that claims runs from that
store until the queue is empty (the built-in ``local`` executor starts ``coldlab worker`` processes);
since processes only talk through the store, an executor may start them anywhere that reaches the
same store and mounts the same ``HOME`` (a Ray cluster, a SLURM queue: the ``coldlab-ray`` and
``coldlab-slurm`` plugin packages).

An executor whose workers run on other machines sets ``remote = True``: ``coldlab run`` then refuses a
SQLite store (SQLite cannot be shared between hosts) and passes the device ``auto``, so each worker
picks its device on the node it runs on. Executor parameters come from the experiments file's
``[executor]`` table (``name`` plus the parameters) or ``--executor-option KEY=VALUE``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any, Protocol

from coldlab.launch import worker_command as worker_command  # re-exported: the public name
from coldlab.params import NoParams


class WorkerHandle(Protocol):
    """One started worker, as ``coldlab run`` watches it (a ``subprocess.Popen`` fits)."""

    def poll(self) -> int | None:
        """The exit code once the worker has ended, else None."""

    def interrupt(self) -> None:
        """Ask the worker to checkpoint its run and stop (Ctrl-C)."""

    def wait(self) -> int:
        """Block until the worker has ended; its exit code."""


# A handle may also have ``pid`` (a process of this host, named ``HOST:PID:DEVICE`` in the store) or
# ``worker_prefix`` (``"HOST:PID:"`` of a worker elsewhere, once known): when the worker dies, the run it
# held is charged with the death and queued again at once, instead of when its lease runs out.


class Executor:
    """Base of the executors: :meth:`start` starts one worker per entry of ``devices``."""

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    #: True when the workers run on other machines (the store must then be PostgreSQL)
    remote: bool = False

    def __init__(self, params: Any) -> None:
        self.params = params
        #: the store the workers use (a path or URL; None: ``HOME/coldlab.db``), set before :meth:`start`
        self.store: str | None = None

    def worker_command(self, home: Path, device: str) -> list[str]:
        """The command line of one worker for ``home`` and this executor's store."""
        return worker_command(str(home), self.store, device)

    def start(self, home: Path, devices: list[str], logs: Path) -> list[WorkerHandle]:
        """Start workers for the store in ``home`` (one per device); their output goes under ``logs``."""
        raise NotImplementedError


PR_SET_PDEATHSIG = 1


def _worker_preexec() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Signals the starting process blocks or ignores are unblocked and restored (a Ray task blocks
    SIGINT and ignores SIGUSR2, and a child inherits both), and on Linux the worker gets SIGKILL when
    the process that started it dies (its node, job or task going down)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def start_worker_process(cmd: list[str], log: IO[Any], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a ``coldlab worker`` from inside another engine's process (a Ray task, a SLURM job) so that
    it hears that process's signals and dies with it; its output goes to ``log``."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, preexec_fn=_worker_preexec)


def wait_in_steps(proc: subprocess.Popen[bytes], step_s: float = 0.5) -> int:
    """Wait for a process in short sleeps rather than one blocking wait, so that an exception raised
    asynchronously in this thread (Ray's cancel) or a signal handler that waits too can run."""
    while proc.poll() is None:
        time.sleep(step_s)
    return int(proc.returncode)
