"""Base classes of every component kind: what a plugin subclasses."""

from coldlab.components.autoencoder import Autoencoder
from coldlab.components.dataset import DataContext, Dataset, data_root
from coldlab.components.degradation import Degradation, DeviceCache, SizedDegradation, as_steps
from coldlab.components.executor import Executor, WorkerHandle, start_worker_process, wait_in_steps, worker_command
from coldlab.components.metric import EvalContext, Metric, MetricUnavailable, MetricValue, ReconstructionBatch, SampleBatch
from coldlab.components.network import Network
from coldlab.components.prior import Prior
from coldlab.components.randomness import generator_device
from coldlab.components.sampler import Sampler, SampleResult
from coldlab.components.schedule import Schedule
from coldlab.components.tracker import TrackedRun, Tracker

__all__ = [
    "start_worker_process",
    "worker_command",
    "wait_in_steps",
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
]
