"""Trackers: bridges that send a run's config, metrics, images and end to another tool as it trains
(TensorBoard, MLflow, ...). Selected per experiment with ``trackers = ["tensorboard"]``.

The store stays the record: a tracker only mirrors it. A tracker that raises is logged in the run's log
(``runs/NNNNN/run.log``) and switched off for the rest of that attempt; it never fails the run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from coldlab.params import NoParams


@dataclasses.dataclass(frozen=True)
class TrackedRun:
    """What a tracker learns of the run it follows."""

    id: int
    study: str
    name: str
    experiment: str
    seed: int | None
    params: dict[str, Any]  # the swept values (dotted key -> value); {} outside a sweep
    config: dict[str, Any]  # the stored spec
    folder: Path  # the run folder (runs/NNNNN): a tracker may write below it
    home: Path
    attempt: int  # 1 for a fresh run; a resumed run starts again with the next attempt


class Tracker:
    """Base of the trackers. A worker calls :meth:`start` once per attempt, then :meth:`log_metrics` and
    :meth:`log_image` as the run records them, and :meth:`end` with how the attempt ended (``finished``,
    ``failed``, ``interrupted``, ``cancelled``)."""

    Params: type = NoParams
    component_name: str = ""
    component_kind: str = ""

    def __init__(self, params: Any) -> None:
        self.params = params

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this tracker cannot run here (a missing package, with the way to install it), or None. Checked
        when the experiment is queued, so a missing package is a located error, not a silent gap."""
        return None

    def start(self, run: TrackedRun) -> None:
        """The run (re)starts: its config and swept values."""

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        """Metric values recorded at ``step`` (losses, evaluation metrics)."""

    def log_image(self, name: str, path: Path, step: int) -> None:
        """An image the run saved (``grid``: a sample grid), a PNG file."""

    def end(self, status: str) -> None:
        """The attempt ended with ``status``."""
