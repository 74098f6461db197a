"""A run's assembled parts, built once from its resolved spec: the data split (images, and latents in
a latent diffusion run), the frozen latent codec, the degradation, sampler and prior (fitted), the
network and its EMA copy. No optimizer and no loop: :class:`~coldlab.engine.trainer.Trainer` trains
them; re-evaluation (``coldlab eval``) and the report's model figures load saved weights into them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coldlab.config import DiffusionSpec, EvalSettings, LoopSettings, RunSpec, TrainSettings, settings_of, stored_spec
from coldlab.engine.batching import sampling_network
from coldlab.engine.data import RunData, load_run_data
from coldlab.engine.evaluation import RunEvaluation
from coldlab.errors import ColdlabError
from coldlab.files import load_tensors
from coldlab.home import Home, as_home
from coldlab.plugins import Registry


def load_split(registry: Registry, spec: RunSpec, settings: LoopSettings, device: torch.device, codec: Any = None) -> RunData:
    """The run's train/validation split (``train.max_train_images`` caps the pool before the split)."""
    data = load_run_data(
        registry,
        spec.dataset,
        val_fraction=settings.val_fraction,
        seed=settings.seed,
        max_images=settings.max_train_images,
        device=device,
        codec=codec,
    )
    if data.train.shape[0] == 0:
        raise ColdlabError("no training images left after the validation split", where=("train", "val_fraction"))
    return data


class RunComponents:
    """The parts of a diffusion run (see the module doc); build with :meth:`from_spec`."""

    def __init__(
        self,
        *,
        spec: DiffusionSpec,
        registry: Registry,
        device: torch.device,
        cache_dir: Path,
        train: TrainSettings,
        eval: EvalSettings,
        images: RunData,
        data: RunData,
        codec: Any,
        degradation: Any,
        sampler: Any,
        prior: Any,
        net: torch.nn.Module,
        ema: torch.nn.Module | None,
    ) -> None:
        self.spec, self.registry, self.device, self.cache_dir = spec, registry, device, cache_dir
        self.train, self.eval = train, eval
        self.images, self.data, self.codec = images, data, codec
        self.degradation, self.sampler, self.prior, self.net, self.ema = degradation, sampler, prior, net, ema
        self.conditional = bool(spec.network.get("conditional", False))
        self._sampling_call: tuple[torch.nn.Module, torch.nn.Module, bool] | None = None

    @classmethod
    def from_spec(
        cls,
        spec: DiffusionSpec | dict[str, Any],
        registry: Registry,
        device: torch.device | str = "cpu",
        *,
        home: Home | Path | None = None,
        cache_dir: Path | None = None,
    ) -> RunComponents:
        """Assemble a diffusion run. ``home`` is the store's folder (a latent run finds the autoencoder run
        it names there); ``cache_dir`` holds the prior's fit and the evaluation caches (default
        ``HOME/cache``). ``spec``: the run's spec, or the JSON the store holds."""
        typed = stored_spec(spec) if isinstance(spec, dict) else spec
        if not isinstance(typed, DiffusionSpec):
            raise ColdlabError(f"a {typed.kind} run does not sample: it has no diffusion components", where=("kind",))
        spec = typed
        device = torch.device(device)
        home = as_home(home) if home is not None else None
        if cache_dir is None:
            if home is None:
                raise ValueError("RunComponents.from_spec needs home or cache_dir")
            cache_dir = home.cache
        train, evaluation = settings_of(TrainSettings, spec.train), settings_of(EvalSettings, spec.eval)
        images = load_split(registry, spec, train, device)
        codec, data = None, images
        if spec.latent:  # latent diffusion: the same split, as the frozen autoencoder's latents
            from coldlab.engine.latent import LatentCodec, autoencoder_path, load_autoencoder

            path = autoencoder_path(spec.latent, home.root if home is not None else None)
            codec = LatentCodec(load_autoencoder(path, registry, device), path)
            data = load_split(registry, spec, train, device, codec=codec)
        degradation = registry.build("degradation", spec.degradation)
        degradation.prepare(data.context)
        sampler = registry.build("sampler", spec.sampler)
        sampler.check(degradation)
        sampler.prepare(data.context)
        prior = registry.build("prior", spec.prior)
        prior.fit_cached(data.train.cpu(), degradation, Path(cache_dir))
        torch.manual_seed(train.seed)
        net = registry.build("network", spec.network, shape=data.shape, num_classes=data.num_classes).to(device)
        ema = copy.deepcopy(net).eval().requires_grad_(False) if train.ema > 0 else None
        return cls(
            spec=spec,
            registry=registry,
            device=device,
            cache_dir=Path(cache_dir),
            train=train,
            eval=evaluation,
            images=images,
            data=data,
            codec=codec,
            degradation=degradation,
            sampler=sampler,
            prior=prior,
            net=net,
            ema=ema,
        )

    @property
    def sampling_net(self) -> torch.nn.Module:
        """The weights samples come from: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.net

    @property
    def sampling_call(self) -> torch.nn.Module:
        """:attr:`sampling_net` as sampling calls it: compiled with ``train.compile``, replaying CUDA graphs with
        ``eval.cuda_graphs`` on a CUDA device (made once; loading other weights into :attr:`sampling_net` keeps
        it valid, since it shares the parameters)."""
        net = self.sampling_net
        if self._sampling_call is None or self._sampling_call[0] is not net:
            compiled, graphs = sampling_network(net, self.device, compile=self.train.compile, cuda_graphs=self.eval.cuda_graphs)
            self._sampling_call = (net, compiled, graphs)
        return self._sampling_call[1]

    @property
    def cuda_graphs(self) -> bool:
        """Whether sampling replays CUDA graphs (``eval.cuda_graphs`` on a CUDA device)."""
        return self.eval.cuda_graphs and self.device.type == "cuda"

    @functools.cached_property
    def train_cpu(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images and labels on the CPU (copied once, not at every evaluation; images, also
        in a latent diffusion run)."""
        return self.images.train.cpu(), self.images.train_labels.cpu()

    def eval_context(
        self,
        *,
        sampler: Any = None,
        samples: int | None = None,
        guidance_scale: Any = "run",
        sample_class: Any = "run",
        on_batch: Callable[[], None] | None = None,
    ) -> RunEvaluation:
        """An :class:`RunEvaluation` for the current sampling weights (guidance: the run's ``eval`` settings
        unless given)."""
        return RunEvaluation(
            registry=self.registry,
            dataset_spec=self.spec.dataset,
            net=self.sampling_call,
            degradation=self.degradation,
            sampler=sampler or self.sampler,
            prior=self.prior,
            shape=self.images.shape,
            num_classes=self.data.num_classes,
            value_range=self.images.value_range,
            device=self.device,
            codec=self.codec,
            samples=self.eval.samples if samples is None else samples,
            batch_size=self.eval.batch_size,
            seed=self.eval.seed,
            cache_dir=self.cache_dir,
            train_images=self.train_cpu[0],
            train_labels=self.train_cpu[1],
            train_loss=self.train.loss,
            on_batch=on_batch,
            guidance_scale=self.eval.guidance_scale if guidance_scale == "run" else guidance_scale,
            sample_class=self.eval.sample_class if sample_class == "run" else sample_class,
            cuda_graphs=self.cuda_graphs,
        )

    def load_weights(self, path: Path) -> tuple[int, int, str]:
        """Load the sampling weights of a ``weights-EPOCH.pt`` file or of a training checkpoint into
        :attr:`sampling_net`; returns (epoch, step, which: ``"ema"`` or ``"model"``)."""
        state = load_tensors(path)
        if "optimizer" in state:  # a full training checkpoint
            use_ema = self.ema is not None and state.get("ema") is not None
            self.sampling_net.load_state_dict(state["ema"] if use_ema else state["model"])
            return int(state["epoch"]), int(state["step"]), "ema" if use_ema else "model"
        self.sampling_net.load_state_dict(state["model"])
        return int(state["epoch"]), int(state["step"]), "ema" if state.get("ema") else "model"
