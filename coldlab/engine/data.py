"""Loading a run's data: train/validation split with a fixed seed, the test set kept aside."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import torch

from coldlab.components.dataset import DataContext, data_root
from coldlab.engine.session import current_session
from coldlab.plugins import Registry


@dataclasses.dataclass
class RunData:
    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor
    shape: tuple[int, int, int]
    num_classes: int
    value_range: tuple[float, float]
    context: DataContext


def load_dataset(registry: Registry, spec: dict[str, Any] | str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset split, kept by the current data session (the runs of one worker share it; see
    :mod:`coldlab.engine.session`) per data root (``$COLDLAB_DATA`` changed in between reads the new root)."""
    return current_session().dataset((repr(spec), split, str(data_root())), lambda: registry.build("dataset", spec).load(split))


def load_run_data(
    registry: Registry,
    dataset_spec: dict[str, Any],
    *,
    val_fraction: float,
    seed: int,
    max_images: int = 0,
    device: torch.device | str = "cpu",
    codec: Any = None,
) -> RunData:
    """Split the training set (``val_fraction`` held out, fixed by ``seed``) and put it on ``device``.

    With a :class:`~coldlab.engine.latent.LatentCodec` the tensors are the images' latents (same split:
    the i-th latent is the i-th image's), ``shape`` is the latent shape, and the data context a
    degradation prepares with loads latents too."""
    dataset = registry.build("dataset", dataset_spec)

    def load(spec: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if codec is not None:
            return cast("tuple[torch.Tensor, torch.Tensor]", codec.encoded(lambda s, sp: load_dataset(registry, s, sp), spec, split))
        return load_dataset(registry, spec, split)

    images, labels = load(dataset_spec, "train")
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    if max_images:
        order = order[:max_images]
    n_val = int(round(len(order) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    shape = tuple(codec.latent_shape) if codec is not None else tuple(dataset.shape)
    ctx = DataContext(shape=shape, load=load, value_range=None if codec is not None else tuple(dataset.value_range))
    return RunData(
        train=images[train_idx].to(device),
        train_labels=labels[train_idx].to(device),
        val=images[val_idx].to(device),
        val_labels=labels[val_idx].to(device),
        shape=shape,
        num_classes=dataset.num_classes,
        value_range=tuple(dataset.value_range),
        context=ctx,
    )
