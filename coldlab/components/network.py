"""Networks: ``nn.Module`` s built from ``(params, shape, num_classes)``."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from coldlab.params import NoParams


class Network(nn.Module):
    """Base of the built-in networks.

    ``forward(z, t_frac, y=None)``: ``z`` of shape (B, C, H, W), ``t_frac = t / T`` of shape (B,),
    ``y`` class labels (B,) or None. Every network takes ``y`` (the engine always passes it: None for
    an unconditional run; a network without labels ignores it). A class-conditional network (``conditional = true``)
    has ``num_classes + 1`` label embeddings; the last is the null label, used when ``y`` is
    None or an entry equals :attr:`null_label` (classifier-free guidance).
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""

    def __init__(self, params: Any, shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 0) -> None:
        super().__init__()
        self.params = params
        self.shape = tuple(shape)
        self.num_classes = int(num_classes)
        if getattr(params, "conditional", False) and self.num_classes < 1:
            raise ValueError("a conditional network needs a dataset with class labels (num_classes > 0)")

    @property
    def null_label(self) -> int:
        return self.num_classes

    def label_embedding(self, dim: int) -> nn.Embedding | None:
        """An embedding of ``num_classes + 1`` labels (the last is null), if conditional."""
        if getattr(self.params, "conditional", False):
            return nn.Embedding(self.num_classes + 1, dim)
        return None

    def embed_labels(self, embedding: nn.Embedding | None, y: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        if embedding is None:
            return None
        if y is None:
            y = torch.full((batch,), self.null_label, dtype=torch.long, device=device)
        return cast("torch.Tensor | None", embedding(y.to(device=device, dtype=torch.long)))
