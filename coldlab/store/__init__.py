"""The SQLite store: one file holds every run, its metrics and its artifact paths.

Writers use :func:`connect` (WAL, ``synchronous=NORMAL``, a busy timeout) and
:func:`transaction` (``BEGIN IMMEDIATE``); readers (dashboard, export) use
``connect(path, readonly=True)`` and the read queries of :mod:`coldlab.store.queries`.
"""

from coldlab.store.connection import connect, transaction
from coldlab.store.metrics import record_artifact, record_evaluation, record_metrics
from coldlab.store.queries import (
    artifacts,
    claimable,
    evaluations,
    get_run,
    has_evaluation,
    latest_artifact,
    latest_metrics,
    list_runs,
    metric_series,
    running_seconds,
    waiting,
)
from coldlab.store.queue import (
    claim,
    enqueue,
    finish,
    heartbeat,
    mark,
    release,
    request_cancel,
    requeue,
    requeue_expired,
    set_priority,
    skip_orphans,
    worker_died,
)
from coldlab.store.status import RunStatus, lease_seconds

__all__ = [
    "RunStatus",
    "artifacts",
    "claim",
    "claimable",
    "connect",
    "enqueue",
    "evaluations",
    "finish",
    "get_run",
    "has_evaluation",
    "heartbeat",
    "latest_artifact",
    "latest_metrics",
    "lease_seconds",
    "list_runs",
    "mark",
    "metric_series",
    "record_artifact",
    "record_evaluation",
    "record_metrics",
    "release",
    "request_cancel",
    "requeue",
    "requeue_expired",
    "running_seconds",
    "set_priority",
    "skip_orphans",
    "transaction",
    "waiting",
    "worker_died",
]
