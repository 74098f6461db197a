"""coldlab: an experiment manager for diffusion-model research.

The public API that plugins may use is what this module exports.
"""

from coldlab.components import (
    Autoencoder,
    DataContext,
    Dataset,
    Degradation,
    DeviceCache,
    Executor,
    Metric,
    MetricUnavailable,
    MetricValue,
    Network,
    Prior,
    ReconstructionBatch,
    SampleBatch,
    SampleResult,
    Sampler,
    Schedule,
    SizedDegradation,
    WorkerHandle,
    as_steps,
    data_root,
)
from coldlab.errors import ColdlabError, PluginLoadWarning
from coldlab.hookspecs import hookimpl
from coldlab.params import NoParams, param
from coldlab.plugins import build, get_registry

__version__ = "0.1.0"

__all__ = [
    "Autoencoder",
    "ColdlabError",
    "DataContext",
    "Dataset",
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
    "SampleResult",
    "Sampler",
    "Schedule",
    "SizedDegradation",
    "WorkerHandle",
    "__version__",
    "as_steps",
    "build",
    "data_root",
    "get_registry",
    "hookimpl",
    "param",
]
