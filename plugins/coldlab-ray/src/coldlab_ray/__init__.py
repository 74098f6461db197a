"""coldlab plugin: the ``ray`` executor.

Each worker is one Ray task that starts coldlab's own, unchanged worker loop (``python -m coldlab
worker --home HOME --store URL --device auto``) on the node Ray picks, and waits for it. The store's
lease, heartbeat and requeue stay the one fault-tolerance mechanism:

- a worker process killed mid-run (``kill -9``, the OOM killer) ends its task with the exit code; the
  run it held is charged with a death and queued again at once, and ``coldlab run`` starts another
  task while runs remain;
- a node that dies takes its tasks and their worker processes with it (the worker is told to die with
  its task); Ray runs the task again elsewhere, and the other workers take over the dead node's run
  when its lease runs out;
- Ctrl-C on ``coldlab run`` cancels the tasks: each worker checkpoints its run, which ends
  ``interrupted`` (``coldlab run FILE --resume`` continues it).

A task asks for ``gpus`` GPUs (default 1) when the cluster has GPUs, else ``cpus`` CPUs (default 1);
Ray sets ``CUDA_VISIBLE_DEVICES`` for it, so the worker's ``--device auto`` takes the GPU Ray gave it.
The cluster is ``address`` (an executor option), else ``$RAY_ADDRESS``, else a Ray instance started on
this machine. The store must be PostgreSQL (``--store postgresql://...``) and HOME a folder every node
mounts. Worker output goes to ``HOME/logs/ray-worker-HOST-PID.log``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
from pathlib import Path
from typing import Any

from coldlab import Executor, hookimpl, param, start_worker_process, wait_in_steps, worker_command

__version__ = "0.1.0"


def run_worker_task(home: str, store: str | None, device: str, logs: str) -> dict[str, Any]:
    """The body of one Ray task, on its node: start ``coldlab worker`` and wait for it. Cancelling the
    task (a KeyboardInterrupt from ``ray.cancel``) interrupts the worker, which checkpoints its run."""
    cmd = worker_command(home, store, device)
    host = socket.gethostname()
    Path(logs).mkdir(parents=True, exist_ok=True)
    log_path = Path(logs) / f"ray-worker-{host}-{os.getpid()}.log"
    with open(log_path, "a") as log:
        proc = start_worker_process(cmd, log)
        try:
            code = wait_in_steps(proc)  # Ray's cancel reaches a task between Python steps, not in a blocking wait
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            code = proc.wait()
    return {"code": code, "host": host, "pid": proc.pid, "log": str(log_path)}


class RayWorker:
    """One worker task as ``coldlab run`` watches it."""

    def __init__(self, ref: Any, device: str) -> None:
        self.ref, self.device = ref, device
        self.code: int | None = None
        #: ``HOST:PID:`` of the worker process, once its task has ended (the launcher charges its run)
        self.worker_prefix: str | None = None

    def _settle(self) -> int:
        import ray
        from ray.exceptions import RayError, TaskCancelledError

        try:
            out = ray.get(self.ref)
        except TaskCancelledError:
            self.code = 130
        except RayError:  # the task died and Ray gave up retrying it (its node is gone)
            self.code = -int(signal.SIGKILL)
        else:
            self.code, self.worker_prefix = int(out["code"]), f"{out['host']}:{out['pid']}:"
        return self.code

    def poll(self) -> int | None:
        import ray

        if self.code is not None:
            return self.code
        ready, _ = ray.wait([self.ref], timeout=0)
        return self._settle() if ready else None

    def interrupt(self) -> None:
        import ray

        if self.poll() is None:
            ray.cancel(self.ref)

    def wait(self) -> int:
        return self.code if self.code is not None else self._settle()


class RayExecutor(Executor):
    """One Ray task per worker, each running ``coldlab worker`` on the node Ray picks (see the module)."""

    remote = True

    @dataclasses.dataclass
    class Params:
        address: str = param("", "the Ray cluster (ray://HOST:10001 or HOST:6379); default $RAY_ADDRESS, else a Ray instance on this machine")
        gpus: float = param(1.0, "GPUs per worker when the cluster has GPUs", min=0)
        cpus: float = param(1.0, "CPUs per worker when the cluster has no GPUs", min=0)
        max_retries: int = param(3, "times Ray runs a task again after its node died", min=0)
        num_cpus: int = param(0, "CPUs of the Ray instance started on this machine when there is no cluster (0: all)", min=0)

    def start(self, home: Path, devices: list[str], logs: Path) -> list[Any]:
        import ray

        if not ray.is_initialized():
            address = self.params.address or os.environ.get("RAY_ADDRESS") or None
            local = {"num_cpus": self.params.num_cpus} if address is None and self.params.num_cpus else {}
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **local)
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        options: dict[str, Any] = {"max_retries": self.params.max_retries}
        options.update({"num_gpus": self.params.gpus, "num_cpus": 0} if has_gpus else {"num_cpus": self.params.cpus})
        task = ray.remote(run_worker_task).options(**options)
        return [RayWorker(task.remote(str(Path(home).resolve()), self.store, device, str(Path(logs).resolve())), device) for device in devices]


@hookimpl
def register_executors(register: Any) -> None:
    register("ray", RayExecutor)
