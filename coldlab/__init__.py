"""coldlab: an experiment manager for diffusion-model research.

The public API that plugins may use is what this module exports.
"""

import importlib
from typing import TYPE_CHECKING, Any

from coldlab.errors import ColdlabError, PluginLoadWarning

# Imported on first use (PEP 562), so that `coldlab --help`, `ls` and `show` do not import torch.
_LAZY = {
    **{
        name: "coldlab.components"
        for name in (
            "Autoencoder",
            "DataContext",
            "Dataset",
            "Degradation",
            "DeviceCache",
            "EvalContext",
            "Executor",
            "Metric",
            "MetricUnavailable",
            "MetricValue",
            "Network",
            "Prior",
            "ReconstructionBatch",
            "SampleBatch",
            "SampleResult",
            "Sampler",
            "Schedule",
            "SizedDegradation",
            "TrackedRun",
            "Tracker",
            "WorkerHandle",
            "as_steps",
            "data_root",
            "generator_device",
            "start_worker_process",
            "wait_in_steps",
            "worker_command",
        )
    },
    "hookimpl": "coldlab.hookspecs",
    "open": "coldlab.api",
    "Store": "coldlab.api",
    "NoParams": "coldlab.params",
    "SEED_MAX": "coldlab.params",
    "param": "coldlab.params",
    "build": "coldlab.plugins",
    "get_registry": "coldlab.plugins",
}


if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from coldlab.api import Store, open
    from coldlab.components import (
        Autoencoder,
        DataContext,
        Dataset,
        Degradation,
        DeviceCache,
        EvalContext,
        Executor,
        Metric,
        MetricUnavailable,
        MetricValue,
        Network,
        Prior,
        ReconstructionBatch,
        SampleBatch,
        Sampler,
        SampleResult,
        Schedule,
        SizedDegradation,
        TrackedRun,
        Tracker,
        WorkerHandle,
        as_steps,
        data_root,
        generator_device,
        start_worker_process,
        wait_in_steps,
        worker_command,
    )
    from coldlab.hookspecs import hookimpl
    from coldlab.params import SEED_MAX, NoParams, param
    from coldlab.plugins import build, get_registry


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'coldlab' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "Autoencoder",
    "ColdlabError",
    "DataContext",
    "Dataset",
    "EvalContext",
    "Degradation",
    "DeviceCache",
    "Executor",
    "Metric",
    "MetricUnavailable",
    "MetricValue",
    "Network",
    "NoParams",
    "PluginLoadWarning",
    "Prior",
    "ReconstructionBatch",
    "SampleBatch",
    "SEED_MAX",
    "SampleResult",
    "Sampler",
    "Schedule",
    "SizedDegradation",
    "Store",
    "TrackedRun",
    "Tracker",
    "WorkerHandle",
    "__version__",
    "as_steps",
    "build",
    "data_root",
    "generator_device",
    "get_registry",
    "hookimpl",
    "open",
    "param",
    "start_worker_process",
    "wait_in_steps",
    "worker_command",
]
