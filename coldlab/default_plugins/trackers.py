"""The built-in tracker: ``tensorboard`` writes TensorBoard event files into the run folder
(``runs/NNNNN/tensorboard/``; ``tensorboard --logdir HOME/runs`` shows every run). Needs the ``tensorboard``
package (``pip install 'coldlab[tensorboard]'``)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import Any

from coldlab import TrackedRun, Tracker, hookimpl, param
from coldlab.hookspecs import Register


class TensorBoardTracker(Tracker):
    """Scalars for every metric, the sample grids as images, the config and swept values as text."""

    @dataclasses.dataclass
    class Params:
        folder: str = param("tensorboard", "folder under the run folder that holds the event files")
        flush_secs: int = param(10, "how often the event file is flushed to disk, in seconds", min=1)

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.writer: Any = None

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("tensorboard") is None:
            return "the tensorboard tracker needs the tensorboard package (hint: pip install 'coldlab[tensorboard]')"
        return None

    def start(self, run: TrackedRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run.folder / self.params.folder), flush_secs=self.params.flush_secs)
        self.writer.add_text("config", "```\n" + json.dumps(run.config, indent=2, sort_keys=True) + "\n```", global_step=0)
        if run.params:
            self.writer.add_text("sweep", "\n".join(f"- {k} = {json.dumps(v)}" for k, v in run.params.items()), global_step=0)

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, global_step=step)

    def log_image(self, name: str, path: Path, step: int) -> None:
        from torchvision.io import ImageReadMode, read_image

        self.writer.add_image(name, read_image(str(path), ImageReadMode.RGB), global_step=step)

    def end(self, status: str) -> None:
        if self.writer is not None:
            self.writer.add_text("status", status)
            self.writer.close()
            self.writer = None


@hookimpl
def register_trackers(register: Register) -> None:
    register("tensorboard", TensorBoardTracker)
