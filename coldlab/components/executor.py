"""Executors: what starts the workers that claim queued runs from the store.

``coldlab run`` (and the dashboard) queue runs in ``HOME/coldlab.db`` and then ask an executor to
start one worker per device. A worker is anything that claims runs from that store until the queue
is empty (the built-in ``local`` executor starts ``coldlab worker`` processes); since processes
only talk through the store, an executor may start them anywhere that sees the same ``HOME``
(another machine sharing the folder, a batch scheduler).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from coldlab.params import NoParams


class WorkerHandle(Protocol):
    """One started worker, as ``coldlab run`` watches it (a ``subprocess.Popen`` fits)."""

    def poll(self) -> int | None:
        """The exit code once the worker has ended, else None."""

    def interrupt(self) -> None:
        """Ask the worker to checkpoint its run and stop (Ctrl-C)."""

    def wait(self) -> int:
        """Block until the worker has ended; its exit code."""


class Executor:
    """Base of the executors: :meth:`start` starts one worker per entry of ``devices``."""

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""

    def __init__(self, params: Any) -> None:
        self.params = params

    def start(self, home: Path, devices: list[str], logs: Path) -> list[WorkerHandle]:
        """Start workers for the store in ``home`` (one per device); their output goes under ``logs``."""
        raise NotImplementedError
