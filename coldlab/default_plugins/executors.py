"""The built-in executor: ``local`` starts ``coldlab worker`` processes on this machine."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from pathlib import Path

from coldlab import Executor, WorkerHandle, hookimpl, param
from coldlab.hookspecs import Register
from coldlab.launch import next_worker_log


class ProcessWorker:
    """A worker process; :meth:`interrupt` sends SIGINT (the worker checkpoints and marks its run interrupted)."""

    def __init__(self, proc: subprocess.Popen[bytes], device: str = "") -> None:
        self.proc, self.device = proc, device

    @property
    def pid(self) -> int:
        """The process id (the worker is named ``HOST:PID:DEVICE`` in the store)."""
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self) -> int:
        return self.proc.wait()


class LocalExecutor(Executor):
    """One ``python -m coldlab worker --home HOME --device D`` process per device, each writing to a
    new ``logs/worker-K.log``, so nothing is printed across the progress bars."""

    @dataclasses.dataclass
    class Params:
        detach: bool = param(False, "start workers in their own session, so they outlive the program that started them (the dashboard)")

    def start(self, home: Path, devices: list[str], logs: Path) -> list[WorkerHandle]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        workers: list[WorkerHandle] = []
        for device in devices:  # a log per worker process
            with open(next_worker_log(logs), "a") as log:
                cmd = self.worker_command(home, device)
                proc = subprocess.Popen[bytes](cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=self.params.detach)
                workers.append(ProcessWorker(proc, device))
        return workers


@hookimpl
def register_executors(register: Register) -> None:
    register("local", LocalExecutor)
