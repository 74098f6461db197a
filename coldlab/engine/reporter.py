"""Where a run's progress goes: the :class:`Reporter` interface (the store's, in a worker) and the
exception a loop stops with."""

from __future__ import annotations

from typing import Any

from coldlab.engine.evaluation import MetricResult

#: (name, step, epoch, value, detail) of one metric row
MetricRow = tuple[str, int, "int | None", "float | None", "dict[str, Any] | None"]


class Reporter:
    """Where a run's progress goes (the store, in a worker); this base records nothing."""

    def metrics(self, rows: list[MetricRow]) -> None:
        """Append (name, step, epoch, value, detail) rows to the run's metric series."""

    def artifact(self, kind: str, path: str, epoch: int | None, step: int | None) -> None:
        """Record a file the run produced."""

    def progress(self, epoch: int, step: int, total_steps: int) -> str | None:
        """Record progress; return a status (``"cancelled"``, ``"interrupted"``) if the run must stop."""
        return None

    def log(self, line: str) -> None:
        """One line for the run's log (``runs/NNNNN/run.log`` in a worker)."""

    def has_evaluation(self, key: str) -> bool:
        """Whether the evaluation ``key`` (``training:EPOCH``) is already recorded."""
        return False

    def evaluation(
        self,
        *,
        key: str,
        epoch: int,
        step: int,
        sampler: dict[str, Any],
        settings: dict[str, Any],
        results: list[MetricResult],
        seconds: float,
        origin: str = "training",
    ) -> int | None:
        """Record one evaluation; a ``training`` one's values also join the run's metric series at ``step``
        (``guidance`` ones, of the final guidance sweep, do not)."""
        return None


class StopRequested(Exception):
    """Raised inside the loop when the run must stop; carries the status to end with."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status
