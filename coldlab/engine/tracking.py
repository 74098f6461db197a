"""A run's trackers, fed from what its reporter records: :class:`TrackedReporter` wraps the store's reporter
and mirrors metric rows, training evaluations and sample grids to each tracker. A tracker that raises (in
any call, its constructor included) is logged in the run's log with the tracker's name and switched off for
the rest of the attempt; the run goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coldlab.components.tracker import TrackedRun, Tracker
from coldlab.engine.reporter import MetricRow, Reporter
from coldlab.home import Home


def tracked_run(home: Home, row: Any) -> TrackedRun:
    """What a tracker learns of a claimed run (a store row)."""
    return TrackedRun(
        id=int(row["id"]),
        study=row["study"],
        name=row["name"],
        experiment=row["experiment"] or row["name"],
        seed=row["seed"],
        params=json.loads(row["params"]) if row["params"] else {},
        config=json.loads(row["config"]),
        folder=home.run_dir(row["id"]),
        home=home.root,
        attempt=int(row["attempts"] or 1),
    )


class TrackedReporter(Reporter):
    """Forwards everything to ``inner`` (the store's reporter) and mirrors it to ``trackers``."""

    def __init__(self, inner: Reporter, trackers: list[Tracker], run: TrackedRun) -> None:
        self.inner, self.run = inner, run
        self.trackers: list[Tracker] = []
        for tracker in trackers:
            if self._call(tracker, "start", run):
                self.trackers.append(tracker)

    def _call(self, tracker: Tracker, method: str, *args: Any) -> bool:
        try:
            getattr(tracker, method)(*args)
        except Exception as err:
            name = tracker.component_name or type(tracker).__name__
            try:
                self.inner.log(f"tracker {name} failed in {method} ({type(err).__name__}: {err}); it is off for the rest of this attempt")
            except OSError:
                pass
            if tracker in self.trackers:
                self.trackers.remove(tracker)
            return False
        return True

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            self._call(tracker, method, *args)

    def metrics(self, rows: list[MetricRow]) -> None:
        self.inner.metrics(rows)
        by_step: dict[int, dict[str, float]] = {}
        for name, step, _epoch, value, _detail in rows:
            if value is not None:
                by_step.setdefault(step, {})[name] = float(value)
        for step, values in sorted(by_step.items()):
            self._each("log_metrics", values, step)

    def artifact(self, kind: str, path: str, epoch: int | None, step: int | None) -> None:
        self.inner.artifact(kind, path, epoch, step)
        if kind == "grid" and str(path).endswith(".png"):
            self._each("log_image", kind, Path(path), int(step or 0))

    def evaluation(self, **info: Any) -> int | None:
        out = self.inner.evaluation(**info)
        origin = info.get("origin", "training")
        prefix = "" if origin == "training" else f"{origin}/{info['key'].rsplit(':', 1)[-1]}/"
        values = {prefix + r.name: float(r.value) for r in info["results"] if r.value is not None}
        if values:
            self._each("log_metrics", values, info["step"])
        return out

    def progress(self, epoch: int, step: int, total_steps: int) -> str | None:
        return self.inner.progress(epoch, step, total_steps)

    def log(self, line: str) -> None:
        self.inner.log(line)

    def has_evaluation(self, key: str) -> bool:
        return self.inner.has_evaluation(key)

    def end(self, status: str) -> None:
        """Tell every tracker still on how the attempt ended."""
        self._each("end", status)
        self.trackers = []


def build_trackers(registry: Any, tables: list[dict[str, Any]], log: Any) -> list[Tracker]:
    """The run's trackers; one that cannot be built is logged and left out."""
    out = []
    for table in tables:
        try:
            out.append(registry.build("tracker", table))
        except Exception as err:
            log(f"tracker {table.get('name')} could not be built ({err}); the run goes on without it")
    return out
