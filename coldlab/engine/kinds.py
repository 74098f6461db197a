"""Run kinds (``kind = "..."`` of an experiment): one table the engine, the queue, the smoke budget and
the report dispatch through, instead of testing the kind's name where it matters.

- ``diffusion`` (the default): a network trained on a forward process, sampled and evaluated.
- ``autoencoder``: an autoencoder trained for latent diffusion; other runs (latent diffusion runs)
  load what it writes, so its runs are queued first and those runs wait for it.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from coldlab.config import AutoencoderEvalSettings, AutoencoderTrainSettings, EvalSettings, TrainSettings
from coldlab.errors import ColdlabError


@dataclasses.dataclass(frozen=True)
class RunKind:
    """What the rest of coldlab needs to know about a kind of run."""

    name: str
    #: "module:Class" of its trainer: ``Class(spec, run_dir, registry=, reporter=, device=, cache_dir=, home=)``
    #: with ``run(resume=...)``; imported when a run of the kind is trained
    trainer_path: str
    #: the component tables its specs carry (besides dataset, train and eval)
    components: tuple[str, ...]
    #: other runs load what its runs write (queued first; those runs wait for them)
    feeds_runs: bool = False
    #: its runs sample from a network: ``coldlab eval`` and the report's model figures apply
    samples: bool = True
    #: why ``coldlab eval`` does not apply (kinds that do not sample)
    no_eval_reason: str = ""
    #: its ``train`` and ``eval`` settings dataclasses
    #: whether higher is better for the values its runs record themselves (not metric plugins), for reports
    metric_directions: dict[str, bool | None] = dataclasses.field(default_factory=dict)
    train_settings: type = TrainSettings
    eval_settings: type = EvalSettings

    def trainer(self) -> Any:
        module, cls = self.trainer_path.split(":")
        return getattr(importlib.import_module(module), cls)


KINDS: dict[str, RunKind] = {
    "diffusion": RunKind("diffusion", "coldlab.engine.trainer:Trainer", ("network", "degradation", "prior", "sampler")),
    "autoencoder": RunKind(
        "autoencoder",
        "coldlab.engine.autoencoder_run:AutoencoderTrainer",
        ("autoencoder",),
        feeds_runs=True,
        samples=False,
        metric_directions={"recon-mse": False, "psnr": True, "kl": None},
        train_settings=AutoencoderTrainSettings,
        eval_settings=AutoencoderEvalSettings,
        no_eval_reason="it records its reconstruction error itself",
    ),
}


def kind_of(spec: dict[str, Any] | str) -> RunKind:
    """The :class:`RunKind` of a stored spec (no ``kind``: diffusion) or of a kind's name."""
    name = spec if isinstance(spec, str) else spec.get("kind", "diffusion")
    try:
        return KINDS[name]
    except KeyError:
        raise ColdlabError(f"unknown run kind {name!r}", hint="kinds: " + ", ".join(KINDS), where=("kind",)) from None
