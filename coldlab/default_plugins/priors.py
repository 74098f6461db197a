"""Built-in start-point priors (SPEC.md section 3), except ``gmm`` (see gmm.py)."""

from __future__ import annotations

import dataclasses
import os
from typing import cast

import torch
import torch.nn.functional as F

from coldlab import ColdlabError, Degradation, Prior, generator_device, hookimpl, param
from coldlab.hookspecs import Register


def _randint(high: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randint(0, high, (n,), generator=generator, device=generator_device(generator)).cpu()


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size block, placed as zoom places it (top-left at ceil((H - size)/2))."""
    H, W = images.shape[-2:]
    top, left = (H - size + 1) // 2, (W - size + 1) // 2
    return images[..., top : top + size, left : left + size]


def upscale_nearest(block: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Nearest-neighbour resize of (N, C, h, w) blocks to the image shape (C, H, W)."""
    return F.interpolate(block, size=tuple(shape[-2:]), mode="nearest")


class GaussianPrior(Prior):
    """z_T ~ N(0, I) (DDPM, DDIM)."""

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randn((n, *shape), generator=generator, device=generator_device(generator)).to(device)


class CentrePixelsPrior(Prior):
    """Each central pixel drawn independently from the categorical histogram (``levels`` bins
    over the data's range) of all training images' central pixels, then nearest-upscaled
    (report 000, for zoom)."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        size: int = param(4, "side of the central block", min=1)
        levels: int = param(256, "number of intensity levels of the histogram", min=2)

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        block = centre_crop(train_images, self.params.size)
        lo, hi = float(train_images.min()), float(train_images.max())
        span = hi - lo if hi > lo else 1.0
        idx = ((block - lo) / span * (self.params.levels - 1)).round().long()
        idx = idx.permute(1, 2, 3, 0).reshape(-1, block.shape[0])  # (C*size*size, N)
        counts = torch.zeros(idx.shape[0], self.params.levels)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float32))
        self.state = {"probs": counts / counts.sum(1, keepdim=True), "range": torch.tensor([lo, hi])}

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        probs, (lo, hi) = self.state["probs"], self.state["range"].tolist()
        levels = torch.multinomial(probs.to(generator_device(generator)), n, replacement=True, generator=generator).cpu()
        values = lo + levels.float() / (self.params.levels - 1) * (hi - lo)
        block = values.T.reshape(n, shape[0], self.params.size, self.params.size)
        return upscale_nearest(block, shape).to(device)


class CentrePatchesPrior(Prior):
    """A real central block of a random training image, nearest-upscaled (keeps spatial correlation)."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        size: int = param(4, "side of the central block", min=1)

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        self.state = {"patches": centre_crop(train_images, self.params.size).clone()}

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        patches = self.state["patches"]
        return upscale_nearest(patches[_randint(patches.shape[0], n, generator)], shape).to(device)


class FlatGaussianPrior(Prior):
    """A flat image whose intensity (per channel) ~ N(mu, sigma) fitted to the means of the fully
    degraded training images, plus ``noise`` * N(0, I) for diversity (report 002; Bansal: 0.002)."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        noise: float = param(0.002, "std of the per-pixel noise added to the flat image", min=0)
        max_images: int = param(10000, "fit on at most this many training images", min=1, smoke=256)

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        x = train_images[: self.params.max_images]
        means = []
        for batch in torch.split(x, 1024):
            noise = degradation.sample_noise(batch)
            means.append(degradation.degrade(batch, degradation.T, noise).mean(dim=(2, 3)))
        m = torch.cat(means)
        self.state = {"mu": m.mean(0), "sigma": m.std(0)}

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        g = generator_device(generator)
        mu, sigma = self.state["mu"].to(g), self.state["sigma"].to(g)
        level = mu + sigma * torch.randn((n, shape[0]), generator=generator, device=g)
        z = level[:, :, None, None].expand(n, *shape) + self.params.noise * torch.randn((n, *shape), generator=generator, device=g)
        return cast("torch.Tensor", z.to(device))


class DatasetImagePrior(Prior):
    """A random image of the morph-target dataset (report 004), optionally the mean of ``mix``
    random images (interpolation) and plus ``noise`` * N(0, I). Like morph itself, without noise
    it can only produce as many distinct start points as the target dataset has images."""

    needs_fit = True

    @dataclasses.dataclass
    class Params:
        noise: float = param(0.0, "lambda: std of Gaussian noise added (004 tried 0.001 to 0.5)", min=0)
        mix: int = param(1, "average this many random target images (004 tried 5, 10, 20)", min=1)

    def fit(self, train_images: torch.Tensor, degradation: Degradation) -> None:
        targets = getattr(degradation, "targets", None)
        if targets is None:
            raise ColdlabError(
                "prior 'dataset-image' needs a degradation with target images (morph)",
                hint="use it with degradation 'morph', after the degradation is prepared",
            )
        if self.params.mix < 1:
            raise ColdlabError("prior 'dataset-image' parameter 'mix' must be at least 1", where=("mix",))
        self.state = {"images": targets}

    def sample(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        images = self.state["images"]
        idx = _randint(images.shape[0], n * self.params.mix, generator)
        z = images[idx].reshape(n, self.params.mix, *images.shape[1:]).mean(1)
        if self.params.noise:
            g = generator_device(generator)
            z = z + self.params.noise * torch.randn(z.shape, generator=generator, device=g).cpu()
        return z.to(device)

    def fit_cached(self, train_images: torch.Tensor, degradation: Degradation, cache_dir: str | os.PathLike[str]) -> bool:
        """Nothing to cache: the images belong to the target dataset, so fit (cheap) every time."""
        self.fit(train_images, degradation)
        return False


@hookimpl
def register_priors(register: Register) -> None:
    register("gaussian", GaussianPrior)
    register("centre-pixels", CentrePixelsPrior)
    register("centre-patches", CentrePatchesPrior)
    register("flat-gaussian", FlatGaussianPrior)
    register("dataset-image", DatasetImagePrior)
