"""A run's status, and the one lease length every process agrees on."""

from __future__ import annotations

import enum
import os


class RunStatus(str, enum.Enum):
    """Where a run stands. A ``str`` enum: it compares equal to the text stored in the database."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


STATUSES = tuple(s.value for s in RunStatus)
ACTIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
RESUMABLE = (RunStatus.INTERRUPTED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value)
ENDED = (RunStatus.FINISHED.value, RunStatus.FAILED.value, RunStatus.INTERRUPTED.value, RunStatus.CANCELLED.value)

DEFAULT_MAX_ATTEMPTS = 3  # a run whose worker process dies this many times fails (a poison run)


def lease_seconds() -> float:
    """How long a claimed run stays its worker's without a heartbeat (``$COLDLAB_LEASE_S``, default 30 s);
    after that any worker may take it again."""
    return float(os.environ.get("COLDLAB_LEASE_S", "30"))
