"""How a ``coldlab worker`` process is started, without torch (the dashboard starts workers too, and never
imports it): its command line, and the next free ``logs/worker-K.log``. The ``local`` executor and the
dashboard both use these; :mod:`coldlab.components.executor` re-exports :func:`worker_command`."""

from __future__ import annotations

import sys
from pathlib import Path


def worker_command(home: str, store: str | None, device: str, *extra: str) -> list[str]:
    """``python -m coldlab worker`` for ``home`` and ``store`` on ``device``, with this process's Python
    (on a remote node: call it there, where that Python has coldlab)."""
    cmd = [sys.executable, "-m", "coldlab", "worker", "--home", home, "--device", device, *extra]
    return cmd + (["--store", store] if store else [])


def next_worker_log(logs: Path) -> Path:
    """``logs/worker-K.log`` for the first K after every existing one (the folder is made if missing)."""
    logs.mkdir(parents=True, exist_ok=True)
    taken = [int(p.stem.split("-")[1]) for p in logs.glob("worker-*.log") if p.stem.split("-")[1].isdigit()]
    return logs / f"worker-{max(taken, default=-1) + 1}.log"
