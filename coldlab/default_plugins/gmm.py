"""The ``gmm`` prior: a Gaussian mixture fitted by EM to the fully degraded training images
(Bansal et al. for blur; report 004's future work for morph).

EM runs in torch (float64) with diagonal covariances by default; ``covariance = "full"``
fits full covariance matrices (slower: O(d^2) per image and component, fine for 28x28).
``reg`` is added to every variance so that nearly constant images (fully blurred ones) stay fittable.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, cast

import torch

from coldlab import SEED_MAX, Degradation, Prior, generator_device, hookimpl, param
from coldlab.hookspecs import Register


def _log_prob(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor, full: bool) -> torch.Tensor:
    """(N, K) log densities of each point under each component."""
    d = x.shape[1]
    if not full:
        diff = x[:, None, :] - means[None]  # N, K, d
        return -0.5 * ((diff**2 / covs[None]).sum(-1) + covs.log().sum(-1)[None] + d * math.log(2 * math.pi))
    chol = torch.linalg.cholesky(covs)  # K, d, d
    out = []
    for k in range(means.shape[0]):
        diff = (x - means[k]).T  # d, N
        sol = torch.linalg.solve_triangular(chol[k], diff, upper=False)
        logdet = 2 * chol[k].diagonal().log().sum()
        out.append(-0.5 * ((sol**2).sum(0) + logdet + d * math.log(2 * math.pi)))
    return torch.stack(out, 1)


def fit_gmm(x: torch.Tensor, k: int, iterations: int, reg: float, full: bool, seed: int) -> dict[str, torch.Tensor]:
    """Weights, means and covariances of a k-component mixture fitted to the rows of x by EM."""
    n, d = x.shape
    k = min(k, n)
    g = torch.Generator().manual_seed(seed)
    means = x[torch.randperm(n, generator=g)[:k]].clone()
    var = x.var(0) + reg
    covs = torch.diag_embed(var).expand(k, d, d).clone() if full else var.expand(k, d).clone()
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    previous = -math.inf
    for _ in range(iterations):
        log_joint = _log_prob(x, means, covs, full) + weights.log()[None]
        log_norm = torch.logsumexp(log_joint, 1, keepdim=True)
        resp = (log_joint - log_norm).exp()  # N, K
        nk = resp.sum(0) + 1e-10
        weights = nk / n
        means = (resp.T @ x) / nk[:, None]
        if full:
            covs = torch.stack([((resp[:, j, None] * (x - means[j])).T @ (x - means[j])) / nk[j] for j in range(k)]) + reg * torch.eye(
                d, dtype=x.dtype
            )
        else:
            covs = (resp.T @ x**2) / nk[:, None] - means**2 + reg
            covs = covs.clamp(min=reg)
        likelihood = float(log_norm.mean())
        if abs(likelihood - previous) < 1e-6 * max(1.0, abs(likelihood)):
            break
        previous = likelihood
    return {"weights": weights, "means": means, "covs": covs}


class GmmPrior(Prior):
    """z_T drawn from a Gaussian mixture fitted to D(x, T) of the training images."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        components: int = param(10, "number of mixture components", min=1)
        covariance: Literal["diag", "full"] = param("diag", "covariance type of each component")
        iterations: int = param(100, "maximum EM iterations", min=1)
        reg: float = param(1e-6, "added to every variance", min=0)
        max_images: int = param(5000, "fit on at most this many training images", min=1, smoke=256)
        seed: int = param(0, "seed of the initial means", min=0, max=SEED_MAX)

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        x = train_images[: self.params.max_images]
        degraded = torch.cat([degradation.degrade(b, degradation.T, degradation.sample_noise(b)) for b in torch.split(x, 1024)])
        flat = degraded.reshape(degraded.shape[0], -1).to(torch.float64).cpu()
        p = self.params
        self.state = fit_gmm(flat, p.components, p.iterations, p.reg, p.covariance == "full", p.seed)

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        weights, means, covs = self.state["weights"], self.state["means"], self.state["covs"]
        gdev = generator_device(generator)
        which = torch.multinomial(weights.to(gdev), n, replacement=True, generator=generator).cpu()
        noise = torch.randn((n, means.shape[1]), generator=generator, device=gdev, dtype=torch.float64).cpu()
        if covs.dim() == 3:
            z = means[which] + (torch.linalg.cholesky(covs)[which] @ noise[:, :, None]).squeeze(-1)
        else:
            z = means[which] + covs[which].sqrt() * noise
        return cast("torch.Tensor", z.reshape(n, *shape).to(device=device, dtype=torch.float32))


@hookimpl
def register_priors(register: Register) -> None:
    register("gmm", GmmPrior)
