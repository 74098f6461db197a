"""Is a run's data there? Before any worker starts, ``coldlab run`` checks every dataset its runs
read (and a morph degradation's target dataset); a missing one is downloaded when the dataset can
download (torchvision shows a progress bar), unless ``COLDLAB_OFFLINE=1``. When it cannot be had,
the reason names the data root and what to put where, and the runs that need it are skipped.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from coldlab.engine.data import load_dataset
from coldlab.errors import ColdlabError

DOWNLOAD_TIMEOUT_S = 60.0


def offline() -> bool:
    """``COLDLAB_OFFLINE=1``: never download (the tests set it)."""
    return os.environ.get("COLDLAB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def datasets_of(spec: dict[str, Any], registry: Any) -> list[Any]:
    """The datasets a run reads: its own, and those its degradation loads (morph's target dataset)."""
    wanted = [spec["dataset"]] if spec.get("dataset") else []
    if spec.get("degradation"):
        wanted += registry.build("degradation", spec["degradation"]).datasets()
    return wanted


class DataCheck:
    """Checks datasets once per invocation (and downloads each at most once)."""

    def __init__(self, registry: Any, on_download: Callable[[str], None] = lambda message: None, *, download: bool = True) -> None:
        self.registry, self.on_download, self.download = registry, on_download, download
        self.verdicts: dict[str, str | None] = {}

    def missing(self, spec: dict[str, Any]) -> list[str]:
        """Why the run's data cannot be read: one reason per missing dataset (empty when all are there)."""
        reasons = []
        for ds in datasets_of(spec, self.registry):
            full = self.registry.resolve("dataset", ds)
            key = repr(sorted(full.items()))
            if key not in self.verdicts:
                self.verdicts[key] = self._check(full)
            verdict = self.verdicts[key]
            if verdict:
                reasons.append(verdict)
        return reasons

    def _check(self, full: dict[str, Any]) -> str | None:
        local = {**full, "download": False} if "download" in full else full
        try:
            load_dataset(self.registry, local, "test")
            return None
        except ColdlabError as err:
            if not full.get("download"):
                return str(err)
            if offline():
                return f"{err}; not downloaded: COLDLAB_OFFLINE is set"
            if not self.download:
                return f"{err}; not downloaded by a dry run (coldlab run downloads it)"
        self.on_download(f"downloading dataset {full['name']!r}...")
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            self.registry.build("dataset", full).load("train")
            load_dataset(self.registry, local, "test")
            return None
        except ColdlabError as err:
            return str(err)
        finally:
            socket.setdefaulttimeout(previous)
