"""The built-in executor: ``local`` starts ``coldlab worker`` processes on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from coldlab import Executor, hookimpl


class ProcessWorker:
    """A worker process; :meth:`interrupt` sends SIGINT (the worker checkpoints and marks its run interrupted)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def poll(self) -> int | None:
        return self.proc.poll()

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def wait(self) -> int:
        return self.proc.wait()


class LocalExecutor(Executor):
    """One ``python -m coldlab worker --home HOME --device D`` process per device, output to
    ``logs/worker-K.log`` (appended), so nothing is printed across the progress bars."""

    def start(self, home: Path, devices: list[str], logs: Path) -> list[ProcessWorker]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        logs.mkdir(parents=True, exist_ok=True)
        workers = []
        for k, device in enumerate(devices):
            with open(logs / f"worker-{k}.log", "a") as log:
                cmd = [sys.executable, "-m", "coldlab", "worker", "--home", str(home), "--device", device]
                workers.append(ProcessWorker(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)))
        return workers


@hookimpl
def register_executors(register):
    register("local", LocalExecutor)
