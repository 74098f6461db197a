"""Autoencoder runs (``kind = "autoencoder"``): train an autoencoder on a dataset for latent diffusion.

The loop, checkpoints and exact resume are the diffusion trainer's; the loss is the autoencoder's own
(:meth:`coldlab.Autoencoder.loss`: reconstruction + ``kl_weight`` x KL). Per epoch the store gets
``train_loss`` and ``val_loss``; at every evaluation epoch a grid (validation images in the top half,
their reconstructions from the posterior mean in the same places of the bottom half) and an evaluation
with ``recon-mse`` (on the dataset's value range), ``psnr`` (dB, images mapped to [0, 1] and clamped, as the ``psnr`` metric) and ``kl``
over the validation images. After the last epoch the latents' scale factor is estimated on
``train.scale_images`` training images (1 / std of the posterior means, as latent diffusion does),
recorded as the ``scale_factor`` metric, and the autoencoder is written to ``autoencoder.pt`` in the
run's folder — the file latent diffusion runs naming this run load.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, cast

import torch

from coldlab.config import AutoencoderEvalSettings, AutoencoderSpec, AutoencoderTrainSettings, settings_of, stored_spec
from coldlab.engine.evaluation import MetricResult
from coldlab.engine.latent import AE_FILE, save_autoencoder
from coldlab.engine.loop import TrainingLoop
from coldlab.engine.reporter import Reporter
from coldlab.engine.run import load_split
from coldlab.errors import ColdlabError
from coldlab.imaging import psnr, save_grid, to_unit
from coldlab.plugins import Registry


class AutoencoderTrainer:
    """Trains the ``autoencoder`` of a run spec with the shared :class:`TrainingLoop`; ``run()`` as for
    diffusion runs."""

    def __init__(
        self,
        spec: dict[str, Any],
        run_dir: Path,
        *,
        registry: Registry,
        reporter: Reporter,
        device: str = "cpu",
        cache_dir: Path | None = None,
        home: Path | None = None,
    ) -> None:
        self.spec, self.run_dir, self.reporter, self.registry = spec, Path(run_dir), reporter, registry
        self.device = torch.device(device)
        typed = stored_spec(spec)
        if not isinstance(typed, AutoencoderSpec):
            raise ColdlabError(f"a {typed.kind} run is not an autoencoder run", where=("kind",))
        self.typed = typed
        self.train_cfg = settings_of(AutoencoderTrainSettings, typed.train)
        self.eval_cfg = settings_of(AutoencoderEvalSettings, typed.eval)
        self.data = load_split(registry, typed, self.train_cfg, self.device)
        torch.manual_seed(self.train_cfg.seed)
        self.net = registry.build("autoencoder", typed.autoencoder, shape=self.data.shape).to(self.device)
        self.loop = TrainingLoop(
            net=self.net,
            data=self.data,
            settings=self.train_cfg,
            run_dir=self.run_dir,
            reporter=reporter,
            device=self.device,
            loss=lambda net, x, y, g: self.loss(x, y, g, net=net),
            evaluate=self.evaluate_epoch,
            eval_every=self.eval_cfg.every,
        )

    step = property(lambda self: self.loop.step)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator, *, net: torch.nn.Module | None = None) -> torch.Tensor:
        """The autoencoder's own loss (its ``loss`` method; ``train.compile`` compiles ``forward``, which this loss does
        not go through, so it gains nothing for autoencoders)."""
        loss: torch.Tensor = cast(Any, net if net is not None else self.net).loss(x, generator)[0]
        return loss.float()

    def run(self, *, resume: bool = True) -> str:
        """Train to ``train.epochs`` (see :meth:`coldlab.engine.loop.TrainingLoop.run`)."""
        return self.loop.run(resume=resume)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Deterministic reconstructions (the decoded posterior mean) and the mean KL, in one pass."""
        self.net.eval()
        bs, recon, kl = self.eval_cfg.batch_size, [], 0.0
        for i in range(0, x.shape[0], bs):
            mean, logvar = self.net.encode(x[i : i + bs])
            recon.append(self.net.decode(mean))
            kl += float(self.net.kl(mean, logvar)) * mean.shape[0]
        return torch.cat(recon), kl / max(x.shape[0], 1)

    def evaluate_epoch(self, epoch: int) -> None:
        """Grid and reconstruction metrics (skipped where already recorded); after the last epoch the
        scale factor and ``autoencoder.pt``."""
        images = self.data.val if self.data.val.shape[0] else self.data.train
        grid_path = self.run_dir / f"grid-{epoch:04d}.png"
        if not grid_path.exists():
            shown = images[: self.eval_cfg.grid]
            save_grid(torch.cat([shown, self.reconstruct(shown)[0]]), grid_path, self.data.value_range, nrow=min(8, shown.shape[0]))
            self.reporter.artifact("grid", str(grid_path), epoch, self.step)
        key = f"training:{epoch}"
        if not self.reporter.has_evaluation(key):
            start = time.perf_counter()
            results = self.reconstruction_metrics(images)
            self.reporter.evaluation(
                key=key,
                epoch=epoch,
                step=self.step,
                sampler={"name": "autoencoder"},
                settings={"images": int(images.shape[0]), "weights": "model", "device": str(self.device)},
                results=results,
                seconds=time.perf_counter() - start,
            )
        if epoch == self.train_cfg.epochs:
            self.finalize(epoch)

    @torch.no_grad()
    def reconstruction_metrics(self, x: torch.Tensor) -> list[MetricResult]:
        """recon-mse on the value range; psnr exactly as the ``psnr`` metric computes it (images mapped to
        [0, 1] and clamped, per image, averaged); kl per latent element."""
        recon, kl = self.reconstruct(x)
        mse = float((recon - x).square().mean())

        def unit(images: torch.Tensor) -> torch.Tensor:
            return to_unit(images, self.data.value_range)

        detail = {"images": int(x.shape[0])}
        return [
            MetricResult("recon-mse", {"name": "recon-mse"}, mse, detail, None, 0.0),
            MetricResult("psnr", {"name": "psnr"}, float(psnr(unit(recon), unit(x)).mean()), detail, None, 0.0),
            MetricResult("kl", {"name": "kl"}, kl, detail, None, 0.0),
        ]

    def finalize(self, epoch: int) -> Path:
        """Estimate the latents' scale factor and write the autoencoder file."""
        n = self.train_cfg.scale_images or self.data.train.shape[0]
        self.net.eval()
        factor = self.net.estimate_scale(self.data.train[:n], batch_size=self.eval_cfg.batch_size)
        if not math.isfinite(factor):
            raise ColdlabError(
                f"the latents' scale factor is not finite ({factor}): the autoencoder diverged",
                hint="lower train.lr or raise autoencoder.kl_weight",
                where=("train", "lr"),
            )
        self.reporter.metrics([("scale_factor", self.step, epoch, factor, {"images": int(min(n, self.data.train.shape[0]))})])
        path = save_autoencoder(self.run_dir / AE_FILE, self.net, self.typed.autoencoder, self.typed.dataset)
        self.reporter.artifact("autoencoder", str(path), epoch, self.step)
        return path
