"""One training loop for every degradation: the degradation's target decides the loss.

Randomness flows through two generators whose states are checkpointed (one on the CPU for
the batch order, one on the device for t and the noise), and the global torch RNG (dropout),
so a resumed run continues exactly where it stopped; on the CPU it ends with the same weights
as an uninterrupted run. Checkpoints are taken after every epoch and whenever the run is asked to
stop mid-epoch (cancel, Ctrl-C), with the position inside the epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from coldlab.config import EvalSettings, TrainSettings
from coldlab.engine.checkpoint import load_latest, save_checkpoint
from coldlab.engine.data import load_run_data
from coldlab.engine.evaluation import EvalContext, MetricResult, build_metrics, evaluate, save_samples
from coldlab.errors import ColdlabError
from coldlab.files import remove_torn, save_atomic
from coldlab.plugins import Registry


class Reporter:
    """Where a run's progress goes (the store, in a worker); this base records nothing."""

    def metrics(self, rows: list[tuple[str, int, int | None, float | None, dict | None]]) -> None:
        """Append (name, step, epoch, value, detail) rows to the run's metric series."""

    def artifact(self, kind: str, path: str, epoch: int | None, step: int | None) -> None:
        """Record a file the run produced."""

    def progress(self, epoch: int, step: int, total_steps: int) -> str | None:
        """Record progress; return a status (``"cancelled"``, ``"interrupted"``) if the run must stop."""
        return None

    def log(self, line: str) -> None:
        """One line for the run's log (``runs/NNNNN/run.log`` in a worker)."""

    def has_evaluation(self, key: str) -> bool:
        """Whether the evaluation ``key`` (``training:EPOCH``) is already recorded."""
        return False

    def evaluation(self, *, key: str, epoch: int, step: int, sampler: dict[str, Any], settings: dict[str, Any],
                   results: list[MetricResult], seconds: float, origin: str = "training") -> int | None:
        """Record one evaluation; a ``training`` one's values also join the run's metric series at ``step``
        (``guidance`` ones, of the final guidance sweep, do not)."""
        return None


class StopRequested(Exception):
    """Raised inside the loop when the run must stop; carries the status to end with."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class Trainer:
    """Builds a run's components from its resolved spec and trains it."""

    def __init__(self, spec: dict[str, Any], run_dir: Path, *, registry: Registry, reporter: Reporter,
                 device: str = "cpu", cache_dir: Path | None = None, home: Path | None = None) -> None:
        self._setup(spec, run_dir, registry=registry, reporter=reporter, device=device, cache_dir=cache_dir, home=home,
                    train_defaults=TrainSettings(), eval_defaults=EvalSettings())
        seed = self.train_cfg["seed"]
        self.images = self.load_data()
        self.codec = None
        if spec.get("latent"):  # latent diffusion: the same split, as the frozen autoencoder's latents
            from coldlab.engine.latent import LatentCodec, autoencoder_path, load_autoencoder

            path = autoencoder_path(spec["latent"], self.home)
            self.codec = LatentCodec(load_autoencoder(path, registry, self.device), path)
            self.data = self.load_data(codec=self.codec)
        else:
            self.data = self.images
        self.degradation = registry.build("degradation", spec["degradation"])
        self.degradation.prepare(self.data.context)
        self.sampler = registry.build("sampler", spec["sampler"])
        self.sampler.check(self.degradation)
        self.prior = registry.build("prior", spec["prior"])
        self.prior.fit_cached(self.data.train.cpu(), self.degradation, self.cache_dir)
        torch.manual_seed(seed)
        self.net = registry.build("network", spec["network"], shape=self.data.shape, num_classes=self.data.num_classes).to(self.device)
        self.conditional = bool(spec["network"].get("conditional", False))
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False) if self.train_cfg["ema"] > 0 else None
        self.loss_fn = F.mse_loss if self.train_cfg["loss"] == "mse" else F.l1_loss
        self._start_loop()

    def _setup(self, spec: dict[str, Any], run_dir: Path, *, registry: Registry, reporter: Reporter, device: str,
               cache_dir: Path | None, home: Path | None, train_defaults: Any, eval_defaults: Any) -> None:
        """What every kind of run shares: paths, device and the settings (ones added after a run was
        queued take their defaults)."""
        self.spec, self.run_dir, self.reporter, self.registry = spec, Path(run_dir), reporter, registry
        self.cache_dir = Path(cache_dir) if cache_dir else self.run_dir / "cache"
        self.home = Path(home) if home else None  # the HOME of the store (latent runs find their autoencoder run there)
        self.device = torch.device(device)
        self.train_cfg = {**dataclasses.asdict(train_defaults), **spec["train"]}
        self.eval_cfg = {**dataclasses.asdict(eval_defaults), **spec["eval"]}

    def load_data(self, codec: Any = None) -> Any:
        data = load_run_data(self.registry, self.spec["dataset"], val_fraction=self.train_cfg["val_fraction"],
                             seed=self.train_cfg["seed"], max_images=self.train_cfg["max_train_images"], device=self.device,
                             codec=codec)
        if data.train.shape[0] == 0:
            raise ColdlabError("no training images left after the validation split", where=("train", "val_fraction"))
        return data

    def _start_loop(self) -> None:
        """Optimizer, the seeded generators and the loop counters (after ``self.net`` is built)."""
        seed = self.train_cfg["seed"]
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.train_cfg["lr"], weight_decay=self.train_cfg["weight_decay"])
        self.cpu_gen = torch.Generator().manual_seed(seed)
        self.dev_gen = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.epoch, self.step, self.partial = 0, 0, None
        self.steps_per_epoch = math.ceil(self.data.train.shape[0] / self.train_cfg["batch_size"])

    # ---- state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "cpu_gen": self.cpu_gen.get_state(), "dev_gen": self.dev_gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "epoch": self.epoch, "step": self.step, "partial": self.partial,
        }

    def restore(self) -> bool:
        for torn in remove_torn(self.run_dir):
            self.reporter.log(f"removed {torn.name}, a file left half-written by a crash")
        state = load_latest(self.run_dir, log=self.reporter.log)
        if state is None:
            return False
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.cpu_gen.set_state(state["cpu_gen"])
        self.dev_gen.set_state(state["dev_gen"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.step, self.partial = state["epoch"], state["step"], state["partial"]
        return True

    def checkpoint(self) -> None:
        save_checkpoint(self.run_dir, self.epoch if self.partial is None else self.partial["epoch"], self.state())

    # ---- training ----------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        z, t, target = self.degradation.training_batch(x, generator)
        t_frac = t.to(x.dtype) / self.degradation.T
        out = self.net(z, t_frac, y) if self.conditional else self.net(z, t_frac)
        return self.loss_fn(out, target)

    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Each label replaced by the network's null label with probability ``train.label_dropout``
        (drawn from the run's seeded device generator, so a resumed run draws the same)."""
        drop = torch.rand(y.shape, generator=self.dev_gen, device=y.device) < self.train_cfg["label_dropout"]
        return torch.where(drop, torch.full_like(y, self.net.null_label), y)

    def beat(self) -> None:
        """Report progress after every step; stop (checkpointing first) when the reporter says so."""
        stop = self.reporter.progress(self.epoch, self.step, self.steps_per_epoch * self.train_cfg["epochs"])
        if stop:
            raise StopRequested(stop)

    def train_epoch(self, epoch: int) -> float:
        bs = self.train_cfg["batch_size"]
        if self.partial is not None and self.partial["epoch"] == epoch:
            perm, start, loss_sum, count = self.partial["perm"], self.partial["batch"], self.partial["loss_sum"], self.partial["count"]
        else:
            perm, start, loss_sum, count = torch.randperm(self.data.train.shape[0], generator=self.cpu_gen), 0, 0.0, 0
        self.net.train()
        for b in range(start, self.steps_per_epoch):
            idx = perm[b * bs : (b + 1) * bs].to(self.device)
            x = self.data.train[idx]
            y = self.data.train_labels[idx] if self.conditional else None
            if y is not None and self.train_cfg["label_dropout"] > 0:
                y = self.drop_labels(y)
            loss = self.loss(x, y, self.dev_gen)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ColdlabError(f"non-finite loss ({value}) at epoch {epoch}, step {self.step + 1}",
                                   hint="lower train.lr, or check the schedule and data scaling")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.ema is not None:
                with torch.no_grad():
                    for p_ema, p in zip(self.ema.parameters(), self.net.parameters()):
                        p_ema.lerp_(p, 1 - self.train_cfg["ema"])
            self.step += 1
            loss_sum, count = loss_sum + value * x.shape[0], count + x.shape[0]
            if self.step % self.train_cfg["log_every"] == 0:  # written as logged: the dashboard shows it live
                self.reporter.metrics([("train_loss_step", self.step, epoch, value, None)])
            self.partial = {"epoch": epoch, "batch": b + 1, "perm": perm, "loss_sum": loss_sum, "count": count}
            self.beat()
        return loss_sum / max(count, 1)

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if self.data.val.shape[0] == 0:
            return None
        self.net.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.train_cfg["seed"] + 2)  # same draws every epoch
        total, n = 0.0, 0
        for i in range(0, self.data.val.shape[0], self.train_cfg["batch_size"]):
            x = self.data.val[i : i + self.train_cfg["batch_size"]]
            y = self.data.val_labels[i : i + self.train_cfg["batch_size"]] if self.conditional else None
            total += float(self.loss(x, y, gen)) * x.shape[0]
            n += x.shape[0]
        return total / n

    # ---- evaluation --------------------------------------------------------------------
    @property
    def sampling_net(self) -> torch.nn.Module:
        """The weights samples come from: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.net

    def eval_context(self, *, sampler: Any = None, samples: int | None = None, guidance_scale: Any = "run",
                     sample_class: Any = "run") -> EvalContext:
        """An :class:`EvalContext` for the current sampling weights (guidance: the run's ``eval`` settings
        unless given)."""
        return EvalContext(
            registry=self.registry, dataset_spec=self.spec["dataset"], net=self.sampling_net, degradation=self.degradation,
            sampler=sampler or self.sampler, prior=self.prior, shape=self.images.shape, num_classes=self.data.num_classes,
            value_range=self.images.value_range, device=self.device, codec=self.codec,
            samples=self.eval_cfg["samples"] if samples is None else samples, batch_size=self.eval_cfg["batch_size"],
            seed=self.eval_cfg["seed"], cache_dir=self.cache_dir, train_images=self.train_cpu[0],
            train_labels=self.train_cpu[1], train_loss=self.train_cfg["loss"], on_batch=self.beat,
            guidance_scale=self.eval_cfg["guidance_scale"] if guidance_scale == "run" else guidance_scale,
            sample_class=self.eval_cfg["sample_class"] if sample_class == "run" else sample_class,
        )

    @functools.cached_property
    def train_cpu(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training images and labels on the CPU (copied once, not at every evaluation; images, also
        in a latent diffusion run)."""
        return self.images.train.cpu(), self.images.train_labels.cpu()

    def is_eval_epoch(self, epoch: int) -> bool:
        every = self.eval_cfg["every"]
        return epoch > 0 and ((every and epoch % every == 0) or epoch == self.train_cfg["epochs"])

    def save_weights(self, epoch: int) -> Path:
        """The sampling weights of an evaluation epoch, for ``coldlab eval --checkpoint EPOCH``."""
        return save_atomic({"model": self.sampling_net.state_dict(), "epoch": epoch, "step": self.step, "ema": self.ema is not None},
                           self.run_dir / f"weights-{epoch:04d}.pt")

    def save_grid(self, images: torch.Tensor, path: Path, nrow: int | None = None) -> Path:
        """Images (in the dataset's value range) as a PNG grid, ``nrow`` per row (default: a square)."""
        lo, hi = self.images.value_range
        nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
        save_image(((images.float().cpu() - lo) / (hi - lo)).clamp(0, 1), path, nrow=nrow)
        return path

    def evaluate_epoch(self, epoch: int) -> None:
        """Weights, sample grid and metrics of an evaluation epoch (and after the last epoch the
        guidance sweep); parts already recorded are skipped, so an evaluation interrupted half-way is
        completed when the run resumes."""
        self._evaluate(epoch)
        if epoch == self.train_cfg["epochs"]:
            self.guidance_sweep(epoch)

    def _evaluate(self, epoch: int) -> None:
        if self.eval_cfg["keep_weights"]:
            self.save_weights(epoch)
        key = f"training:{epoch}"
        specs = self.eval_cfg["metrics"] + (self.eval_cfg["final_metrics"] if epoch == self.train_cfg["epochs"] else [])
        grid_path = self.run_dir / f"grid-{epoch:04d}.png"
        need_metrics = bool(specs) and not self.reporter.has_evaluation(key)
        if grid_path.exists() and not need_metrics:
            return
        ctx = self.eval_context()
        metrics = build_metrics(self.registry, specs) if need_metrics else []
        wants_samples = any(m.source == "samples" for _, m in metrics) and ctx.n_samples >= self.eval_cfg["grid"]
        if not grid_path.exists():
            grid = ctx.samples()[: self.eval_cfg["grid"]] if wants_samples else torch.cat(list(ctx.generate(self.eval_cfg["grid"])))
            self.save_grid(grid, grid_path)
            self.reporter.artifact("grid", str(grid_path), epoch, self.step)
        if need_metrics:
            self._evaluate_and_record(ctx, metrics, specs, key, epoch, samples_file=f"samples-{epoch:04d}.pt")

    def guidance_sweep(self, epoch: int) -> None:
        """After the last epoch: ``eval.metrics`` again at every w of ``eval.guidance_sweep`` (one
        ``guidance`` evaluation each, keyed by w, so a resumed run does not repeat one)."""
        specs = self.eval_cfg["metrics"]
        for w in self.eval_cfg.get("guidance_sweep") or []:
            key = f"guidance:{epoch}:w={w:g}"
            if not specs or self.reporter.has_evaluation(key):
                continue
            ctx = self.eval_context(guidance_scale=float(w))
            self._evaluate_and_record(ctx, build_metrics(self.registry, specs), specs, key, epoch, origin="guidance")

    def _evaluate_and_record(self, ctx: EvalContext, metrics: list[Any], specs: list[dict[str, Any]], key: str, epoch: int,
                             *, origin: str = "training", samples_file: str | None = None) -> None:
        """Evaluate, keep the generated samples (if asked and made) and record the evaluation."""
        start = time.perf_counter()
        results = evaluate(ctx, metrics)
        seconds = time.perf_counter() - start
        if samples_file and ctx.has_samples:
            path = save_samples(ctx.samples(), ctx, self.run_dir / samples_file)
            self.reporter.artifact("samples", str(path), epoch, self.step)
        self.reporter.evaluation(key=key, epoch=epoch, step=self.step, sampler=self.spec["sampler"],
                                 settings=eval_settings(specs, ctx, "ema" if self.ema is not None else "model"),
                                 results=results, seconds=seconds, origin=origin)

    def run(self, *, resume: bool = True) -> str:
        """Train to the configured number of epochs; returns ``"finished"``.

        After every epoch: losses, then a checkpoint, then (at evaluation epochs) weights, grid and
        metrics. Raises :class:`StopRequested` (after checkpointing) when the reporter asks it to
        stop (cancel, Ctrl-C), and checkpoints before letting a ``KeyboardInterrupt`` through. A run
        whose worker lost its lease (``lost``) stops without a checkpoint: another worker may own the
        folder by then.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.restore()
        epochs = self.train_cfg["epochs"]
        try:
            if self.is_eval_epoch(self.epoch) and self.partial is None:
                self.evaluate_epoch(self.epoch)  # finish an evaluation a stop cut short
            while self.epoch < epochs:
                epoch = self.epoch + 1
                train_loss = self.train_epoch(epoch)
                val_loss = self.validation_loss()
                rows = [("train_loss", epoch, epoch, train_loss, None)]
                if val_loss is not None:
                    rows.append(("val_loss", epoch, epoch, val_loss, None))
                self.reporter.metrics(rows)
                self.epoch, self.partial = epoch, None
                self.checkpoint()
                if self.is_eval_epoch(epoch):
                    self.evaluate_epoch(epoch)
                self.beat()
        except (StopRequested, KeyboardInterrupt) as stop:
            if getattr(stop, "status", None) != "lost":
                self.checkpoint()
            raise
        return "finished"


def eval_settings(metrics: list[dict[str, Any]], ctx: EvalContext, weights: str, **extra: Any) -> dict[str, Any]:
    """What an evaluation was computed from (stored with it)."""
    guidance = {} if ctx.guidance_scale is None else {"guidance_scale": ctx.guidance_scale, "class": ctx.sample_class}
    return {"samples": ctx.n_samples, "batch_size": ctx.batch_size, "seed": ctx.seed, "weights": weights,
            "metrics": list(metrics), "device": str(ctx.device), **guidance, **extra}
