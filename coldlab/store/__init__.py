"""The SQLite store: one file holds every run, its metrics and its artifact paths.

Writers use :func:`connect` (WAL, ``synchronous=NORMAL``, a busy timeout) and
:func:`transaction` (``BEGIN IMMEDIATE``); readers (dashboard, export) use
``connect(path, readonly=True)``.
"""

from coldlab.store.connection import connect, transaction
from coldlab.store.metrics import (
    artifacts,
    evaluations,
    has_evaluation,
    metric_series,
    record_artifact,
    record_evaluation,
    record_metrics,
)
from coldlab.store.queue import (
    claim,
    enqueue,
    finish,
    get_run,
    heartbeat,
    list_runs,
    mark,
    request_cancel,
    requeue,
    requeue_expired,
    set_priority,
    skip_orphans,
    waiting,
)

__all__ = [
    "artifacts",
    "claim",
    "connect",
    "enqueue",
    "evaluations",
    "finish",
    "get_run",
    "has_evaluation",
    "heartbeat",
    "list_runs",
    "mark",
    "metric_series",
    "record_artifact",
    "record_evaluation",
    "record_metrics",
    "request_cancel",
    "requeue",
    "requeue_expired",
    "set_priority",
    "skip_orphans",
    "waiting",
    "transaction",
]
