"""The plugin contract: one hook per component kind, registration by callback.

A plugin module (or package, through the ``coldlab`` entry-point group) implements
any of these hooks with ``@coldlab.hookimpl`` and calls ``register(name, cls)`` for
each component it adds. ``cls`` is a component class with a ``Params`` dataclass
(see :mod:`coldlab.params`) whose constructor takes that dataclass.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("coldlab")
hookimpl = pluggy.HookimplMarker("coldlab")

Register = Callable[[str, type], None]


@hookspec
def register_schedules(register: Register) -> None:
    """Register noise schedules (kind ``schedule``): subclasses of :class:`coldlab.Schedule`."""


@hookspec
def register_degradations(register: Register) -> None:
    """Register forward processes (kind ``degradation``): subclasses of :class:`coldlab.Degradation`."""


@hookspec
def register_priors(register: Register) -> None:
    """Register start-point distributions (kind ``prior``): subclasses of :class:`coldlab.Prior`."""


@hookspec
def register_networks(register: Register) -> None:
    """Register networks (kind ``network``): :class:`torch.nn.Module` subclasses taking
    ``(params, shape)`` and computing ``forward(z, t_frac, y=None)``."""


@hookspec
def register_samplers(register: Register) -> None:
    """Register reverse processes (kind ``sampler``): subclasses of :class:`coldlab.Sampler`."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register image datasets (kind ``dataset``): subclasses of :class:`coldlab.Dataset`."""


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics (kind ``metric``)."""


@hookspec
def register_autoencoders(register: Register) -> None:
    """Register autoencoders for latent diffusion (kind ``autoencoder``): subclasses of
    :class:`coldlab.Autoencoder` taking ``(params, shape)``."""


@hookspec
def register_executors(register: Register) -> None:
    """Register executors that run queued work (kind ``executor``)."""


@hookspec
def register_trackers(register: Register) -> None:
    """Register trackers that mirror runs to other tools (kind ``tracker``): subclasses of
    :class:`coldlab.Tracker` taking ``(params)``; selected per experiment with ``trackers = [...]``."""


#: kind name -> hook name, in the order kinds are listed everywhere.
KINDS: dict[str, str] = {
    "schedule": "register_schedules",
    "degradation": "register_degradations",
    "prior": "register_priors",
    "network": "register_networks",
    "sampler": "register_samplers",
    "dataset": "register_datasets",
    "metric": "register_metrics",
    "autoencoder": "register_autoencoders",
    "executor": "register_executors",
    "tracker": "register_trackers",
}
