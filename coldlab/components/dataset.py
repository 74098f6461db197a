"""Image datasets, held in memory as tensors scaled to the dataset's value range."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coldlab.params import NoParams


def data_root() -> Path:
    """Where datasets live: ``$COLDLAB_DATA``, else ``$XDG_CACHE_HOME/coldlab/data`` (``~/.cache/coldlab/data``)."""
    env = os.environ.get("COLDLAB_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "coldlab" / "data"


class Dataset:
    """A dataset of images with integer labels.

    ``shape`` is (C, H, W); ``num_classes`` is 0 for unlabelled data; ``value_range``
    is what :meth:`load` scales pixels to ((-0.5, 0.5) for MNIST-like data, (-1, 1) for
    colour images). :meth:`load` returns ``(images, labels)`` for split ``"train"`` or
    ``"test"``: float32 images of shape (N, C, H, W) and int64 labels of shape (N,).
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 0
    value_range: tuple[float, float] = (-0.5, 0.5)

    def __init__(self, params: Any) -> None:
        self.params = params

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Images mapped from ``value_range`` to [0, 1] (for saving and display)."""
        from coldlab.imaging import to_unit

        return to_unit(images, self.value_range)


@dataclasses.dataclass
class DataContext:
    """What a component may ask of the data when it is prepared: the shape of what the network works on,
    a loader of datasets (``load(name or table, split)``) and the value range of the data (None where it
    has no bound: a latent diffusion run's latents)."""

    shape: tuple[int, ...]
    load: Callable[[Any, str], tuple[torch.Tensor, torch.Tensor]]
    value_range: tuple[float, float] | None = None
