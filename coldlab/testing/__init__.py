"""coldlab.testing: what a plugin's own tests use (part of coldlab's public API).

- Contract classes to subclass (name the subclass ``Test...`` and set ``spec`` and ``plugins``):
  :class:`ScheduleContract`, :class:`DegradationContract`, :class:`PriorContract`,
  :class:`NetworkContract`, :class:`SamplerContract`.
- Known-answer networks: :class:`OracleNetwork` (a perfect network for given images),
  :class:`ConstantNetwork`.
- Helpers: :func:`registry_with` (built-ins plus your plugin module, no entry points),
  :func:`synthetic_images`, :func:`data_context`, :func:`accelerators`.

Requires pytest (coldlab's ``dev`` extra).
"""

from coldlab.testing.contracts import (
    ComponentContract,
    DegradationContract,
    NetworkContract,
    PriorContract,
    SamplerContract,
    ScheduleContract,
)
from coldlab.testing.helpers import accelerators, data_context, registry_with, synthetic_images
from coldlab.testing.oracles import ConstantNetwork, OracleNetwork

__all__ = [
    "ComponentContract",
    "ConstantNetwork",
    "DegradationContract",
    "NetworkContract",
    "OracleNetwork",
    "PriorContract",
    "SamplerContract",
    "ScheduleContract",
    "accelerators",
    "data_context",
    "registry_with",
    "synthetic_images",
]
