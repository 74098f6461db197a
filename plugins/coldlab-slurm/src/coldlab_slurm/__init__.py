"""coldlab plugin: the ``slurm`` executor.

Each worker is one SLURM job, submitted with submitit, that starts coldlab's own worker loop
(``python -m coldlab worker --home HOME --store URL --device auto --requeue-on-term``) on the node SLURM
gives it. The store's lease, heartbeat and requeue stay the one fault-tolerance mechanism; SLURM only
places the workers:

- preemption and the time limit (submitit asks SLURM for SIGUSR2 90 s before it; SLURM sends SIGTERM
  when it preempts or cancels): the worker checkpoints its run and puts it back in the queue as
  ``queued`` (not ``interrupted``), then the job is requeued if runs are still queued, and its next
  start (or any other worker) resumes the run from that checkpoint;
- a node that dies: the other workers take its run over when its lease runs out.

Parameters: ``partition``, ``time_min`` (the job's time limit), ``gpus`` (per job), ``cpus`` (per job),
``mem_gb``, ``account``, ``extra`` (more sbatch options, ``["--qos=high", "--constraint=a100"]``), and
``cluster``: ``slurm``, or ``local`` to run the jobs as local processes through submitit (for trying a
setup, and for the tests). Job files and output: ``HOME/logs/slurm/``. The store must be PostgreSQL
(``--store postgresql://...``) and HOME a folder every node mounts.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, Literal

import coldlab
from coldlab import Executor, hookimpl, param, start_worker_process, wait_in_steps, worker_command

__version__ = "0.1.0"


def sbatch_options(extra: list[str]) -> dict[str, Any]:
    """``["--qos=high", "--exclusive"]`` -> ``{"qos": "high", "exclusive": True}`` (submitit's additional parameters)."""
    out: dict[str, Any] = {}
    for item in extra:
        key, sep, value = item.lstrip("-").partition("=")
        out[key.replace("-", "_")] = value if sep else True
    return out


class WorkerJob:
    """What one job runs: a ``coldlab worker``, and submitit's checkpoint hook for preemption."""

    def __init__(self, home: str, store: str | None, device: str, logs: str) -> None:
        self.home, self.store, self.device, self.logs = home, store, device, logs
        self.proc: Any = None

    def __getstate__(self) -> dict[str, Any]:  # pickled by submitit: the process stays behind
        return {k: v for k, v in self.__dict__.items() if k != "proc"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, proc=None)

    def __call__(self) -> dict[str, Any]:
        cmd = worker_command(self.home, self.store, self.device, "--requeue-on-term")
        host = socket.gethostname()
        Path(self.logs).mkdir(parents=True, exist_ok=True)
        with open(Path(self.logs) / f"slurm-worker-{host}-{os.getpid()}.log", "a") as log:
            self.proc = start_worker_process(cmd, log)
            code = wait_in_steps(self.proc)
        return {"code": code, "host": host, "pid": self.proc.pid}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit (in its SIGUSR2 handler) when the job is preempted or near its time limit:
        the worker checkpoints its run and gives it back to the queue; the job is requeued while runs
        are queued. Waits with ``os.waitpid`` (not the ``Popen`` the interrupted main loop may be inside)."""
        import submitit

        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGUSR2)
                while os.waitpid(proc.pid, os.WNOHANG) == (0, 0):
                    time.sleep(0.2)
            except ChildProcessError:  # already reaped
                pass
        if not self.runs_left():
            return None  # nothing queued: the job ends instead of coming back
        return submitit.helpers.DelayedSubmission(WorkerJob(self.home, self.store, self.device, self.logs))

    def runs_left(self) -> bool:
        return coldlab.open(self.home, store=self.store).claimable() > 0


REQUEUED = 75  # coldlab worker's exit code when it stopped to give its run back (preempted)


class SlurmWorker:
    """One worker's job as ``coldlab run`` watches it. A job whose worker was preempted without
    submitit's requeue (SIGTERM) is submitted again while runs are queued."""

    def __init__(self, submit: Any, device: str) -> None:
        self.submit, self.device = submit, device
        self.job = submit()
        self.code: int | None = None
        self.interrupted = False
        #: ``HOST:PID:`` of the worker process, once its job has ended
        self.worker_prefix: str | None = None

    def poll(self) -> int | None:
        if self.code is None and self.job.done():
            try:
                out = self.job.result()
            except Exception:  # the job failed or was cancelled; its output is in HOME/logs/slurm/
                self.code = 1
            else:
                code, self.worker_prefix = int(out["code"]), f"{out['host']}:{out['pid']}:"
                if code == REQUEUED and not self.interrupted and self.submit.runs_left():
                    self.job = self.submit()
                    return None
                self.code = code
        return self.code

    def interrupt(self) -> None:
        self.interrupted = True
        if self.poll() is None:
            self.job.cancel(check=False)

    def wait(self) -> int:
        while (code := self.poll()) is None:
            time.sleep(1.0)
        return code


class SlurmExecutor(Executor):
    """One submitit job per worker (see the module)."""

    remote = True

    @dataclasses.dataclass
    class Params:
        partition: str = param("", "the SLURM partition (default: the cluster's default)")
        time_min: int = param(240, "each job's time limit in minutes (runs longer than this go on in the requeued job)", min=1)
        gpus: int = param(1, "GPUs per job", min=0)
        cpus: int = param(4, "CPUs per job", min=1)
        mem_gb: int = param(0, "memory per job in GB (0: the partition's default)", min=0)
        account: str = param("", "the account to charge (sbatch --account)")
        extra: list[str] = param([], "more sbatch options, e.g. ['--qos=high', '--constraint=a100']")
        cluster: Literal["slurm", "local"] = param("slurm", "slurm, or local: the jobs run as local processes (trying a setup, tests)")

    def start(self, home: Path, devices: list[str], logs: Path) -> list[Any]:
        import submitit

        folder = Path(logs).resolve() / "slurm"
        executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.params.cluster)
        p = self.params
        options: dict[str, Any] = {"timeout_min": p.time_min, "cpus_per_task": p.cpus, "name": "coldlab-worker"}
        if p.cluster == "slurm":
            options.update(gpus_per_node=p.gpus, slurm_additional_parameters=sbatch_options(list(p.extra)))
            options.update({k: v for k, v in (("slurm_partition", p.partition), ("slurm_account", p.account)) if v})
            if p.mem_gb:
                options["mem_gb"] = p.mem_gb
        executor.update_parameters(**options)
        home_s, logs_s = str(Path(home).resolve()), str(Path(logs).resolve())
        return [SlurmWorker(Submit(executor, WorkerJob(home_s, self.store, device, logs_s)), device) for device in devices]


class Submit:
    """Submits one worker's job (again)."""

    def __init__(self, executor: Any, job: WorkerJob) -> None:
        self.executor, self.job = executor, job

    def __call__(self) -> Any:
        return self.executor.submit(WorkerJob(self.job.home, self.job.store, self.job.device, self.job.logs))

    def runs_left(self) -> bool:
        return self.job.runs_left()


@hookimpl
def register_executors(register: Any) -> None:
    register("slurm", SlurmExecutor)
