"""coldlab-mlflow: the ``mlflow`` tracker (see README.md)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from coldlab import TrackedRun, Tracker, hookimpl, param

STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "cancelled": "KILLED"}
_BAD = re.compile(r"[^\w\-. /]")


def mlflow_name(text: str) -> str:
    """A metric or parameter name MLflow accepts (letters, digits, ``_ - . /`` and spaces)."""
    return _BAD.sub("_", text)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


class MlflowTracker(Tracker):
    """Mirrors a coldlab run to an MLflow run."""

    @dataclasses.dataclass
    class Params:
        tracking_uri: str = param("", "MLflow tracking URI (empty: the file store HOME/mlruns)")
        experiment: str = param("", "MLflow experiment name (empty: the coldlab study)")
        log_images: bool = param(True, "log the sample grids as artifacts")

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.client: Any = None
        self.run_id = ""

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("mlflow") is None:
            return "the mlflow tracker needs MLflow (hint: pip install mlflow-skinny)"
        return None

    def start(self, run: TrackedRun) -> None:
        import mlflow

        uri = self.params.tracking_uri or (run.home / "mlruns").resolve().as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the offline store: a folder
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        name = self.params.experiment or run.study
        found = self.client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        keep = Path(run.folder) / "mlflow-run-id"
        if keep.exists():  # a resumed coldlab run: the same MLflow run
            self.run_id = keep.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {"coldlab.run_id": str(run.id), "coldlab.study": run.study, "coldlab.experiment": run.experiment, "coldlab.seed": str(run.seed)}
        tags.update({f"sweep.{mlflow_name(k)}": json.dumps(v) for k, v in run.params.items()})
        created = self.client.create_run(experiment_id, run_name=run.name, tags=tags)
        self.run_id = created.info.run_id
        keep.write_text(self.run_id)
        from mlflow.entities import Param

        params = [Param(mlflow_name(k), json.dumps(v) if not isinstance(v, str) else v) for k, v in flatten(run.config).items()]
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(mlflow_name(k), float(v), now, int(step)) for k, v in values.items()])

    def log_image(self, name: str, path: Path, step: int) -> None:
        if self.params.log_images:
            self.client.log_artifact(self.run_id, str(path), artifact_path=mlflow_name(name))

    def end(self, status: str) -> None:
        if self.client is not None and self.run_id:
            self.client.set_terminated(self.run_id, status=STATUS.get(status, "FAILED"))


@hookimpl
def register_trackers(register: Any) -> None:
    register("mlflow", MlflowTracker)
