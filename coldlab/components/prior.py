"""Start points z_T for unconditional sampling."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from coldlab.components.naming import name_of
from coldlab.files import load_tensors, save_atomic
from coldlab.params import NoParams

if TYPE_CHECKING:
    from coldlab.components.degradation import Degradation


def images_fingerprint(images: torch.Tensor) -> str:
    """A cheap, stable fingerprint of a tensor of images (shape and a strided checksum)."""
    flat = images.detach().reshape(-1).to(torch.float64).cpu()
    step = max(1, flat.numel() // 65536)
    sample = flat[::step]
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(sample.numpy().tobytes())
    h.update(f"{float(flat.sum()):.10e}".encode())
    return h.hexdigest()[:16]


class Prior:
    """A distribution of start points.

    Priors with ``needs_fit = True`` learn from the training images (and the degradation)
    in :meth:`fit`, keep what they learn in :meth:`state_dict`, and can cache it on disk with
    :meth:`fit_cached`. :meth:`sample` draws ``n`` start points of image ``shape``.
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""
    needs_fit: bool = False

    def __init__(self, params: Any) -> None:
        self.params = params
        self.state: dict[str, torch.Tensor] = {}

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        """Learn from the training images; the base prior learns nothing."""

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = dict(state)

    def cache_key(self, train_images: torch.Tensor, degradation: Degradation) -> str:
        """Identifies what a fit depends on: this prior, the degradation and the images."""
        desc = {
            "prior": name_of(self),
            "params": repr(dataclasses.asdict(self.params))
            if dataclasses.is_dataclass(self.params) and not isinstance(self.params, type)
            else repr(self.params),
            "degradation": name_of(degradation),
            "degradation_params": repr(getattr(degradation, "params", None)),
            "images": images_fingerprint(train_images),
        }
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]

    def fit_cached(self, train_images: torch.Tensor, degradation: Degradation, cache_dir: str | os.PathLike[str]) -> bool:
        """Fit, or load an earlier fit of the same prior, degradation and images.

        Returns True when the state came from the cache (``fit`` was not called).
        """
        if not self.needs_fit:
            return False
        path = Path(cache_dir) / f"prior-{self.cache_key(train_images, degradation)}.pt"
        if path.exists():
            self.load_state_dict(load_tensors(path))
            return True
        self.fit(train_images, degradation)
        save_atomic({k: v.detach().cpu() for k, v in self.state_dict().items()}, path)
        return False
