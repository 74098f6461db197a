"""Checkpoints: written to a temporary file and renamed; the last two are kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from coldlab.files import save_atomic

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


def load_latest(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint, or None."""
    for path in reversed(checkpoints(run_dir)):
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # a torn file from a crash: fall back to the one before
            continue
    return None
