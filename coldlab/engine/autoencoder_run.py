"""Autoencoder runs (``kind = "autoencoder"``): train an autoencoder on a dataset for latent diffusion.

The loop, checkpoints and exact resume are the diffusion trainer's; the loss is the autoencoder's own
(:meth:`coldlab.Autoencoder.loss`: reconstruction + ``kl_weight`` x KL). Per epoch the store gets
``train_loss`` and ``val_loss``; at every evaluation epoch a grid (validation images in the top half,
their reconstructions from the posterior mean in the same places of the bottom half) and an evaluation
with ``recon-mse`` (on the dataset's value range), ``psnr`` (dB, images mapped to [0, 1]) and ``kl``
over the validation images. After the last epoch the latents' scale factor is estimated on
``train.scale_images`` training images (1 / std of the posterior means, as latent diffusion does),
recorded as the ``scale_factor`` metric, and the autoencoder is written to ``autoencoder.pt`` in the
run's folder — the file latent diffusion runs naming this run load.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from coldlab.config import AutoencoderEvalSettings, AutoencoderTrainSettings
from coldlab.engine.evaluation import MetricResult
from coldlab.engine.latent import AE_FILE, save_autoencoder
from coldlab.engine.trainer import Reporter, Trainer
from coldlab.plugins import Registry

METRIC_DIRECTIONS = {"recon-mse": False, "psnr": True, "kl": None}  # whether higher is better (reports)


class AutoencoderTrainer(Trainer):
    """Trains the ``autoencoder`` of a run spec; ``run()`` as for diffusion runs."""

    def __init__(self, spec: dict[str, Any], run_dir: Path, *, registry: Registry, reporter: Reporter,
                 device: str = "cpu", cache_dir: Path | None = None, home: Path | None = None) -> None:
        self._setup(spec, run_dir, registry=registry, reporter=reporter, device=device, cache_dir=cache_dir, home=home,
                    train_defaults=AutoencoderTrainSettings(), eval_defaults=AutoencoderEvalSettings())
        self.train_cfg.setdefault("label_dropout", 0.0)
        self.images = self.data = self.load_data()
        self.codec = None
        torch.manual_seed(self.train_cfg["seed"])
        self.net = registry.build("autoencoder", spec["autoencoder"], shape=self.data.shape).to(self.device)
        self.conditional, self.ema = False, None
        self._start_loop()

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        return self.net.loss(x, generator)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstructions: the decoded posterior mean."""
        self.net.eval()
        bs = self.eval_cfg["batch_size"]
        return torch.cat([self.net.decode(self.net.encode(x[i : i + bs])[0]) for i in range(0, x.shape[0], bs)])

    def evaluate_epoch(self, epoch: int) -> None:
        """Grid and reconstruction metrics (skipped where already recorded); after the last epoch the
        scale factor and ``autoencoder.pt``."""
        images = self.data.val if self.data.val.shape[0] else self.data.train
        grid_path = self.run_dir / f"grid-{epoch:04d}.png"
        if not grid_path.exists():
            self.save_pairs(images[: self.eval_cfg["grid"]], grid_path)
            self.reporter.artifact("grid", str(grid_path), epoch, self.step)
        key = f"training:{epoch}"
        if not self.reporter.has_evaluation(key):
            start = time.perf_counter()
            results = self.reconstruction_metrics(images)
            self.reporter.evaluation(key=key, epoch=epoch, step=self.step, sampler={"name": "autoencoder"},
                                     settings={"images": int(images.shape[0]), "weights": "model", "device": str(self.device)},
                                     results=results, seconds=time.perf_counter() - start)
        if epoch == self.train_cfg["epochs"]:
            self.finalize(epoch)

    def save_pairs(self, x: torch.Tensor, path: Path) -> Path:
        lo, hi = self.data.value_range
        recon = self.reconstruct(x)
        unit = ((torch.cat([x, recon]).float().cpu() - lo) / (hi - lo)).clamp(0, 1)
        save_image(unit, path, nrow=min(8, x.shape[0]))
        return path

    @torch.no_grad()
    def reconstruction_metrics(self, x: torch.Tensor) -> list[MetricResult]:
        lo, hi = self.data.value_range
        recon = self.reconstruct(x)
        mse = float((recon - x).square().mean())
        per_image = ((recon - x) / (hi - lo)).square().flatten(1).mean(1).clamp(min=1e-12)
        psnr = float((-10.0 * per_image.log10()).mean())  # mean over images of 10 log10(1 / mse), images in [0, 1]
        bs = self.eval_cfg["batch_size"]
        kl = 0.0
        for i in range(0, x.shape[0], bs):
            mean, logvar = self.net.encode(x[i : i + bs])
            kl += float(0.5 * (mean.square() + logvar.exp() - 1 - logvar).mean()) * mean.shape[0]
        n = int(x.shape[0])
        detail = {"images": n}
        return [MetricResult("recon-mse", {"name": "recon-mse"}, mse, detail, None, 0.0),
                MetricResult("psnr", {"name": "psnr"}, psnr, detail, None, 0.0),
                MetricResult("kl", {"name": "kl"}, kl / n, detail, None, 0.0)]

    def finalize(self, epoch: int) -> Path:
        """Estimate the latents' scale factor and write the autoencoder file."""
        n = self.train_cfg["scale_images"] or self.data.train.shape[0]
        self.net.eval()
        factor = self.net.estimate_scale(self.data.train[:n], batch_size=self.eval_cfg["batch_size"])
        if not math.isfinite(factor):
            raise RuntimeError(f"the latents' scale factor is not finite ({factor})")
        self.reporter.metrics([("scale_factor", self.step, epoch, factor, {"images": int(min(n, self.data.train.shape[0]))})])
        path = save_autoencoder(self.run_dir / AE_FILE, self.net, self.spec["autoencoder"], self.spec["dataset"])
        self.reporter.artifact("autoencoder", str(path), epoch, self.step)
        return path


def trainer_for(spec: dict[str, Any]) -> type[Trainer]:
    """The trainer class of a run spec's kind."""
    return AutoencoderTrainer if spec.get("kind") == "autoencoder" else Trainer
