"""Checkpoints: written to a temporary file and renamed; the last two are kept."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from coldlab.files import TORN, load_tensors, save_atomic

_NAME = re.compile(r"checkpoint-(\d+)\.pt$")


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-*.pt") if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: Path, epoch: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` atomically as checkpoint-EPOCH.pt and delete all but the newest ``keep``."""
    path = save_atomic(state, run_dir / f"checkpoint-{epoch:04d}.pt")
    for old in checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(run_dir: Path, log: Callable[[str], None] = lambda line: None) -> dict[str, Any] | None:
    """The newest readable checkpoint, or None. A torn one (a crash while it was written) is skipped,
    with a line in ``log``; one holding anything but tensors and plain data is refused (ColdlabError)."""
    for path in reversed(checkpoints(run_dir)):
        try:
            return cast("dict[str, Any] | None", load_tensors(path))
        except TORN as err:  # torn: fall back to the one before
            log(f"skipped unreadable checkpoint {path.name} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
            continue
    return None
