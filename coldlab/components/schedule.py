"""Noise schedules: per-step variance ``beta`` and its cumulative product ``alpha_bar``."""

from __future__ import annotations

from typing import Any

import torch

from coldlab.params import NoParams


class Schedule:
    """A schedule of ``T`` steps.

    Subclasses implement :meth:`compute_beta`, returning ``beta_1 .. beta_T`` (length T).
    The base class prepends step 0 (``beta_0 = 0``, ``alpha_bar_0 = 1``) so that both
    tensors are indexed directly by t in ``0..T``, and computes
    ``alpha_bar_t = prod_{s<=t} (1 - beta_s)`` in float64. Betas of 1 or more are allowed
    here (blur uses beta_t as a kernel variance); noise degradations reject them.
    """

    Params: type = NoParams
    #: the name and kind it was registered and built under: declared here, filled in by the registry that builds
    #: it (the constructor contract stays ``cls(params, **context)``); "" for one constructed directly
    component_name: str = ""
    component_kind: str = ""

    def __init__(self, params: Any) -> None:
        self.params = params
        beta = torch.as_tensor(self.compute_beta(), dtype=torch.float64).flatten()
        if beta.numel() < 1:
            raise ValueError("a schedule needs at least one step")
        if not torch.isfinite(beta).all() or (beta < 0).any():
            raise ValueError("every beta_t must be finite and >= 0; check beta_min, beta_max or C")
        self.beta = torch.cat([torch.zeros(1, dtype=torch.float64), beta])
        self.alpha_bar = torch.cumprod(1.0 - self.beta, dim=0)

    @property
    def T(self) -> int:
        return self.beta.numel() - 1

    def compute_beta(self) -> torch.Tensor:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """Plot-friendly arrays (t, beta, alpha_bar as lists) and the headline numbers."""
        return {
            "t": list(range(self.T + 1)),
            "beta": self.beta.tolist(),
            "alpha_bar": self.alpha_bar.tolist(),
            "T": self.T,
            "beta_min": float(self.beta[1:].min()),
            "beta_max": float(self.beta[1:].max()),
            "alpha_bar_T": float(self.alpha_bar[-1]),
        }
