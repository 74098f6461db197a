"""Diffusion runs: the assembled run (:class:`~coldlab.engine.run.RunComponents`) trained by the shared
:class:`~coldlab.engine.loop.TrainingLoop`; the degradation's target decides the loss. At evaluation
epochs: sampling weights, a sample grid and the run's metrics (and after the last epoch the report's
model-figure tensors and the guidance sweep)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from coldlab.components.metric import Metric
from coldlab.engine import figure_data
from coldlab.engine.evaluation import RunEvaluation, build_metrics, eval_settings, evaluate, save_samples
from coldlab.engine.loop import TrainingLoop
from coldlab.engine.reporter import Reporter, StopRequested
from coldlab.engine.run import RunComponents
from coldlab.files import save_atomic
from coldlab.imaging import save_grid
from coldlab.plugins import Registry

__all__ = ["Reporter", "StopRequested", "Trainer", "eval_settings"]


class Trainer:
    """Assembles a diffusion run from its resolved spec and trains it (``run()``)."""

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
        self.parts = RunComponents.from_spec(spec, registry, device, home=home, cache_dir=Path(cache_dir) if cache_dir else self.run_dir / "cache")
        self.device = self.parts.device
        self.train_cfg, self.eval_cfg = self.parts.train, self.parts.eval
        self.loss_fn = F.mse_loss if self.train_cfg.loss == "mse" else F.l1_loss
        if self.eval_cfg.cuda_graphs and not self.parts.cuda_graphs:
            reporter.log(f"eval.cuda_graphs is ignored on {self.device}: CUDA graphs need a CUDA device")
        self.loop = TrainingLoop(
            net=self.parts.net,
            ema=self.parts.ema,
            data=self.parts.data,
            settings=self.train_cfg,
            run_dir=self.run_dir,
            reporter=reporter,
            device=self.device,
            loss=lambda net, x, y, g: self.loss(x, y, g, net=net),
            evaluate=self.evaluate_epoch,
            eval_every=self.eval_cfg.every,
            labels=self.parts.conditional,
        )

    # the assembled parts, under the names tests and figures use
    net = property(lambda self: self.parts.net)
    ema = property(lambda self: self.parts.ema)
    data = property(lambda self: self.parts.data)
    images = property(lambda self: self.parts.images)
    codec = property(lambda self: self.parts.codec)
    degradation = property(lambda self: self.parts.degradation)
    sampler = property(lambda self: self.parts.sampler)
    prior = property(lambda self: self.parts.prior)
    conditional = property(lambda self: self.parts.conditional)
    sampling_net = property(lambda self: self.parts.sampling_net)
    epoch = property(lambda self: self.loop.epoch)
    step = property(lambda self: self.loop.step)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator, *, net: torch.nn.Module | None = None) -> torch.Tensor:
        """The training objective on a batch, through ``net`` (default: the run's network)."""
        z, t, target = self.degradation.training_batch(x, generator)
        t_frac = t.to(x.dtype) / self.degradation.T
        out = (net if net is not None else self.net)(z, t_frac, y)
        return self.loss_fn(out.float(), target.float())

    def run(self, *, resume: bool = True) -> str:
        """Train to ``train.epochs`` (see :meth:`coldlab.engine.loop.TrainingLoop.run`)."""
        return self.loop.run(resume=resume)

    # ---- evaluation --------------------------------------------------------------------
    def eval_context(
        self, *, sampler: Any = None, samples: int | None = None, guidance_scale: Any = "run", sample_class: Any = "run"
    ) -> RunEvaluation:
        """The run's :class:`RunEvaluation`; each generated batch is a step of progress (a stop request
        is honoured mid-evaluation)."""
        return self.parts.eval_context(
            sampler=sampler, samples=samples, guidance_scale=guidance_scale, sample_class=sample_class, on_batch=self.loop.beat
        )

    def save_weights(self, epoch: int) -> Path:
        """The sampling weights of an evaluation epoch, for ``coldlab eval --checkpoint EPOCH``."""
        return save_atomic(
            {"model": self.sampling_net.state_dict(), "epoch": epoch, "step": self.step, "ema": self.ema is not None},
            self.run_dir / f"weights-{epoch:04d}.pt",
        )

    def evaluate_epoch(self, epoch: int) -> None:
        """Weights, sample grid and metrics of an evaluation epoch (and after the last epoch the
        guidance sweep); parts already recorded are skipped, so an evaluation interrupted half-way is
        completed when the run resumes."""
        self._evaluate(epoch)
        if epoch == self.train_cfg.epochs:
            self.save_figure_data(epoch)
            self.guidance_sweep(epoch)

    def save_figure_data(self, epoch: int) -> None:
        """After the last epoch: the tensors the report's model figures show (:mod:`coldlab.engine.figure_data`),
        so ``coldlab export`` draws them without rebuilding the run."""
        path = figure_data.path_for(self.run_dir, epoch)
        if path.exists():
            return
        data = figure_data.compute(self.parts, epoch, on_batch=self.loop.beat)
        save_atomic(data, path)
        self.reporter.artifact("figures", str(path), epoch, self.step)

    def _evaluate(self, epoch: int) -> None:
        if self.eval_cfg.keep_weights:
            self.save_weights(epoch)
        key = f"training:{epoch}"
        specs = self.metric_specs(final=epoch == self.train_cfg.epochs)
        grid_path = self.run_dir / f"grid-{epoch:04d}.png"
        need_metrics = bool(specs) and not self.reporter.has_evaluation(key)
        if grid_path.exists() and not need_metrics:
            return
        ctx = self.eval_context()
        metrics = build_metrics(self.registry, specs) if need_metrics else []
        wants_samples = any(m.source == "samples" for _, m in metrics) and ctx.n_samples >= self.eval_cfg.grid
        if not grid_path.exists():
            grid = ctx.samples()[: self.eval_cfg.grid] if wants_samples else torch.cat(list(ctx.generate(self.eval_cfg.grid)))
            save_grid(grid, grid_path, self.images.value_range)
            self.reporter.artifact("grid", str(grid_path), epoch, self.step)
        if need_metrics:
            self._evaluate_and_record(ctx, metrics, specs, key, epoch, samples_file=f"samples-{epoch:04d}.pt")

    def metric_specs(self, *, final: bool) -> list[dict[str, Any]]:
        """The resolved metric tables of an evaluation (``final``: after the last epoch, with ``final_metrics``)."""
        specs = [dict(m) for m in self.eval_cfg.metrics if isinstance(m, dict)]
        return specs + ([dict(m) for m in self.eval_cfg.final_metrics if isinstance(m, dict)] if final else [])

    def guidance_sweep(self, epoch: int) -> None:
        """After the last epoch: ``eval.metrics`` again at every w of ``eval.guidance_sweep`` (one
        ``guidance`` evaluation each, keyed by w, so a resumed run does not repeat one)."""
        specs = self.metric_specs(final=False)
        for w in self.eval_cfg.guidance_sweep:
            key = f"guidance:{epoch}:w={w:g}"
            if not specs or self.reporter.has_evaluation(key):
                continue
            ctx = self.eval_context(guidance_scale=float(w))
            self._evaluate_and_record(ctx, build_metrics(self.registry, specs), specs, key, epoch, origin="guidance")

    def _evaluate_and_record(
        self,
        ctx: RunEvaluation,
        metrics: list[tuple[dict[str, Any], Metric]],
        specs: list[dict[str, Any]],
        key: str,
        epoch: int,
        *,
        origin: str = "training",
        samples_file: str | None = None,
    ) -> None:
        """Evaluate, keep the generated samples (if asked and made) and record the evaluation."""
        start = time.perf_counter()
        results = evaluate(ctx, metrics)
        seconds = time.perf_counter() - start
        if samples_file and ctx.has_samples:
            path = save_samples(ctx.samples(), ctx, self.run_dir / samples_file)
            self.reporter.artifact("samples", str(path), epoch, self.step)
        self.reporter.evaluation(
            key=key,
            epoch=epoch,
            step=self.step,
            sampler=self.parts.spec.sampler,
            settings=eval_settings(specs, ctx, "ema" if self.ema is not None else "model"),
            results=results,
            seconds=seconds,
            origin=origin,
        )
