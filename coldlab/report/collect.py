"""What an export reads from the store: runs grouped by study and experiment."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from coldlab.errors import ColdlabError
from coldlab.home import Home, as_home
from coldlab.store.queries import artifacts, evaluations, list_runs, metric_series, running_seconds
from coldlab.store.records import tags_of


@dataclasses.dataclass
class RunRecord:
    """One run as the report sees it."""

    id: int
    study: str
    name: str
    status: str
    error: str | None
    config: dict[str, Any]
    epoch: int
    epochs: int
    seconds: float | None  # time spent running (training and evaluation), summed over attempts
    series: dict[str, list[dict[str, Any]]]
    evaluations: list[dict[str, Any]]
    artifacts: list[dict[str, Any]]  # "path": the file (resolved against HOME)
    experiment: str = ""  # the experiment the run comes from (its runs at several seeds share it)
    seed: int | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # the values a sweep set (dotted key -> value)
    tags: list[str] = dataclasses.field(default_factory=list)
    note: str | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.experiment = self.experiment or self.name

    @property
    def training_evaluations(self) -> list[dict[str, Any]]:
        return [e for e in self.evaluations if e["origin"] == "training"]

    def metric_history(self, name: str) -> list[tuple[int, float]]:
        """(epoch, value) of a metric over the training evaluations that computed it."""
        return [
            (e["epoch"], e["values"][name]["value"])
            for e in self.training_evaluations
            if name in e["values"] and e["values"][name]["value"] is not None
        ]

    def latest(self, name: str) -> dict[str, Any] | None:
        """The newest value (with detail) of a metric in any evaluation, or None."""
        for e in reversed(self.evaluations):
            if name in e["values"]:
                return {**e["values"][name], "epoch": e["epoch"], "origin": e["origin"], "evaluation": e["id"]}
        return None

    def artifact(self, kind: str, epoch: int | None = None) -> Path | None:
        """The newest artifact of a kind (of that epoch, if given) whose file exists."""
        found = [a for a in self.artifacts if a["kind"] == kind and (epoch is None or a["epoch"] == epoch)]
        found.sort(key=lambda a: (a["epoch"] or 0, a["created"]))
        for a in reversed(found):
            if Path(a["path"]).exists():
                return Path(a["path"])
        return None


@dataclasses.dataclass
class ExportData:
    home: Path
    runs: list[RunRecord]

    def studies(self) -> dict[str, list[RunRecord]]:
        out: dict[str, list[RunRecord]] = {}
        for run in self.runs:
            out.setdefault(run.study, []).append(run)
        return out


def collect(home: Path | Home, *, studies: list[str] | None = None, run_ids: list[int] | None = None, archived: bool = False) -> ExportData:
    """Read the selected runs (all, or those of ``studies`` and/or ``run_ids``) with everything recorded.
    Archived runs are left out unless ``archived`` or named in ``run_ids``."""
    home = as_home(home)
    store = home.store_label
    if not home.store_exists():
        raise ColdlabError(f"no store at {home.store_label}", hint="run a study first (coldlab run FILE), or pass --home", where=("--home",))
    conn = home.connect(readonly=True)
    rows = list_runs(conn)
    known_ids = {r["id"] for r in rows}
    known_studies = sorted({r["study"] for r in rows})
    for run_id in run_ids or []:
        if run_id not in known_ids:
            raise ColdlabError(f"no run with id {run_id} in {store}", hint="`coldlab ls` lists the runs", where=("--runs",))
    for study in studies or []:
        if study not in known_studies:
            raise ColdlabError(
                f"no runs of study {study!r} in {store}", hint="studies in the store: " + (", ".join(known_studies) or "none"), where=("--study",)
            )
    rows = [r for r in rows if archived or not r["archived"] or (run_ids and r["id"] in run_ids)]
    if studies or run_ids:
        rows = [r for r in rows if (studies and r["study"] in studies) or (run_ids and r["id"] in run_ids)]
    if not rows:
        raise ColdlabError(f"nothing to export: no run of {store} is selected", hint="run a study first (coldlab run FILE); archived runs need --all")
    tags = tags_of(conn, [int(r["id"]) for r in rows])
    runs = []
    for r in rows:
        runs.append(
            RunRecord(
                id=r["id"],
                study=r["study"],
                name=r["name"],
                status=r["status"],
                error=r["error"],
                config=json.loads(r["config"]),
                epoch=r["epoch"],
                epochs=r["epochs"],
                seconds=running_seconds(r),
                series=metric_series(conn, r["id"]),
                evaluations=evaluations(conn, r["id"]),
                experiment=r["experiment"] or r["name"],
                seed=r["seed"],
                params=json.loads(r["params"]) if r["params"] else {},
                tags=tags.get(int(r["id"]), []),
                note=r["note"],
                provenance=json.loads(r["provenance"]) if r["provenance"] else {},
                artifacts=[{**dict(a), "stored": a["path"], "path": str(home.file(a["path"]))} for a in artifacts(conn, r["id"])],
            )
        )
    conn.close()
    return ExportData(home.root, runs)
