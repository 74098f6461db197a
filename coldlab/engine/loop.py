"""The training loop every kind of run shares: epochs of shuffled batches, the optimizer, EMA, the
seeded generators, checkpoints and exact resume.

Randomness flows through two generators whose states are checkpointed (one on the CPU for the batch
order, one on the device for t and the noise), and the global torch RNG (dropout), so a resumed run
continues exactly where it stopped; on the CPU it ends with the same weights as an uninterrupted run.
Checkpoints are taken after every epoch and whenever the run is asked to stop mid-epoch (cancel,
Ctrl-C), with the position inside the epoch.

What a kind of run adds is its loss and what it does at an evaluation epoch: a
:class:`TrainingLoop` is built with both (see :class:`coldlab.engine.trainer.Trainer` and
:class:`coldlab.engine.autoencoder_run.AutoencoderTrainer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch

from coldlab.config import AutoencoderTrainSettings, TrainSettings
from coldlab.engine.checkpoint import load_latest, save_checkpoint
from coldlab.engine.data import RunData
from coldlab.engine.reporter import Reporter, StopRequested
from coldlab.errors import ColdlabError
from coldlab.files import remove_torn

#: loss(net, x, labels or None, generator) -> scalar tensor; ``net`` is the network to train through (compiled
#: with ``train.compile``), sharing its parameters with the loop's ``net``
LossFn = Callable[[torch.nn.Module, torch.Tensor, "torch.Tensor | None", torch.Generator], torch.Tensor]
AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingLoop:
    """Trains ``net`` on ``data.train`` with ``loss``; ``evaluate(epoch)`` runs at evaluation epochs.

    ``settings`` are the run's loop settings (``epochs``, ``lr``, ``ema``, ``label_dropout`` where the
    kind has them); ``labels``: whether batches carry their labels (a class-conditional network), in
    which case ``label_dropout`` replaces some with the network's ``null_label``.
    """

    def __init__(
        self,
        *,
        net: torch.nn.Module,
        data: RunData,
        settings: TrainSettings | AutoencoderTrainSettings,
        run_dir: Path,
        reporter: Reporter,
        device: torch.device,
        loss: LossFn,
        evaluate: Callable[[int], None],
        eval_every: int,
        ema: torch.nn.Module | None = None,
        labels: bool = False,
    ) -> None:
        self.net, self.ema, self.data, self.settings = net, ema, data, settings
        self.run_dir, self.reporter, self.device = Path(run_dir), reporter, device
        self.loss, self.evaluate, self.eval_every, self.labels = loss, evaluate, eval_every, labels
        self.epochs: int = settings.epochs
        self.ema_decay: float = getattr(settings, "ema", 0.0)
        self.label_dropout: float = getattr(settings, "label_dropout", 0.0)
        self.precision: str = getattr(settings, "precision", "fp32")
        self.autocast_dtype = AUTOCAST.get(self.precision)
        self.channels_last: bool = getattr(settings, "channels_last", False)
        if self.channels_last:
            net.to(memory_format=torch.channels_last)
        if device.type == "cuda":  # TF32 matmuls and convolutions (fp32 storage, tensor cores)
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        fused = True if device.type == "cuda" else None  # one kernel for the whole update where the device has it
        self.optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=fused)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.train_net: torch.nn.Module = cast(torch.nn.Module, torch.compile(net)) if getattr(settings, "compile", False) else net
        self.cpu_gen = torch.Generator().manual_seed(settings.seed)
        self.dev_gen = torch.Generator(device=device).manual_seed(settings.seed + 1)
        self.epoch, self.step = 0, 0
        self.partial: dict[str, Any] | None = None
        self.steps_per_epoch = math.ceil(data.train.shape[0] / settings.batch_size)

    # ---- state -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "cpu_gen": self.cpu_gen.get_state(),
            "dev_gen": self.dev_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "epoch": self.epoch,
            "step": self.step,
            "partial": self.partial,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
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
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        return True

    def checkpoint(self) -> None:
        save_checkpoint(self.run_dir, self.epoch if self.partial is None else self.partial["epoch"], self.state())

    # ---- training ----------------------------------------------------------------------
    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Each label replaced by the network's null label with probability ``train.label_dropout``
        (drawn from the run's seeded device generator, so a resumed run draws the same)."""
        drop = torch.rand(y.shape, generator=self.dev_gen, device=y.device) < self.label_dropout
        null_label = int(cast(Any, self.net).null_label)
        return torch.where(drop, torch.full_like(y, null_label), y)

    def beat(self) -> None:
        """Report progress after every step; stop (checkpointing first) when the reporter says so."""
        stop = self.reporter.progress(self.epoch, self.step, self.steps_per_epoch * self.epochs)
        if stop:
            raise StopRequested(stop)

    def autocast(self) -> Any:
        """Mixed precision for the forward pass and the loss (``train.precision``); a no-op in fp32."""
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def batch(self, idx: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        x = images[idx]
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def check_finite(self, window: torch.Tensor, first: int, epoch: int) -> None:
        """One host synchronisation: raise if a loss from step ``first`` to the current step was not finite."""
        if not bool(torch.isfinite(window)):
            steps = f"step {self.step}" if first >= self.step else f"steps {first}-{self.step}"
            raise ColdlabError(
                f"non-finite loss at epoch {epoch}, {steps}", hint="lower train.lr, or check the schedule and data scaling (fp16: try bf16)"
            )

    def train_epoch(self, epoch: int) -> float:
        """One epoch. The losses stay on the device: the host waits for them (and checks they are finite) only
        every ``log_every`` steps, at the epoch's end and before a checkpoint, never at every step."""
        bs = self.settings.batch_size
        acc = torch.float32 if self.device.type == "mps" else torch.float64
        if self.partial is not None and self.partial["epoch"] == epoch:
            perm, start, count = self.partial["perm"], self.partial["batch"], self.partial["count"]
            loss_sum = torch.as_tensor(self.partial["loss_sum"], dtype=acc).to(self.device)
        else:
            perm, start, count = torch.randperm(self.data.train.shape[0], generator=self.cpu_gen), 0, 0
            loss_sum = torch.zeros((), dtype=acc, device=self.device)
        self.net.train()
        window, first = torch.zeros((), dtype=acc, device=self.device), self.step + 1
        try:
            for b in range(start, self.steps_per_epoch):
                idx = perm[b * bs : (b + 1) * bs].to(self.device, non_blocking=True)
                x = self.batch(idx, self.data.train)
                y = self.data.train_labels[idx] if self.labels else None
                if y is not None and self.label_dropout > 0:
                    y = self.drop_labels(y)
                with self.autocast():
                    loss = self.loss(self.train_net, x, y, self.dev_gen)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.ema is not None:
                    with torch.no_grad():
                        for p_ema, p in zip(self.ema.parameters(), self.net.parameters(), strict=True):
                            p_ema.lerp_(p, 1 - self.ema_decay)
                self.step += 1
                value = loss.detach().to(acc)
                window = window + value
                loss_sum, count = loss_sum + value * x.shape[0], count + x.shape[0]
                if self.step % self.settings.log_every == 0:  # written as logged: the dashboard shows it live
                    self.check_finite(window, first, epoch)
                    window, first = torch.zeros_like(window), self.step + 1
                    self.reporter.metrics([("train_loss_step", self.step, epoch, float(value), None)])
                self.partial = {"epoch": epoch, "batch": b + 1, "perm": perm, "loss_sum": loss_sum, "count": count}
                self.beat()
        except StopRequested:
            self.check_finite(window, first, epoch)  # no checkpoint of weights a non-finite step already spoiled
            raise
        self.check_finite(window, first, epoch)
        return float(loss_sum) / max(int(count), 1)

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if self.data.val.shape[0] == 0:
            return None
        self.net.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.settings.seed + 2)  # same draws every epoch
        bs = self.settings.batch_size
        total, n = 0.0, 0
        for i in range(0, self.data.val.shape[0], bs):
            x = self.data.val[i : i + bs]
            y = self.data.val_labels[i : i + bs] if self.labels else None
            total += float(self.loss(self.net, x, y, gen)) * x.shape[0]  # fp32, not compiled: comparable across settings
            n += x.shape[0]
        return total / n

    def is_eval_epoch(self, epoch: int) -> bool:
        every = self.eval_every
        return epoch > 0 and ((every > 0 and epoch % every == 0) or epoch == self.epochs)

    def run(self, *, resume: bool = True) -> str:
        """Train to the configured number of epochs; returns ``"finished"``.

        After every epoch: losses, then a checkpoint, then (at evaluation epochs) ``evaluate(epoch)``.
        Raises :class:`StopRequested` (after checkpointing) when the reporter asks it to stop (cancel,
        Ctrl-C), and checkpoints before letting a ``KeyboardInterrupt`` through. A run whose worker
        lost its lease (``lost``) stops without a checkpoint: another worker may own the folder by then.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.restore()
        try:
            if self.is_eval_epoch(self.epoch) and self.partial is None:
                self.evaluate(self.epoch)  # finish an evaluation a stop cut short
            while self.epoch < self.epochs:
                epoch = self.epoch + 1
                train_loss = self.train_epoch(epoch)
                val_loss = self.validation_loss()
                rows: list[tuple[str, int, int | None, float | None, dict[str, Any] | None]] = [("train_loss", epoch, epoch, train_loss, None)]
                if val_loss is not None:
                    rows.append(("val_loss", epoch, epoch, val_loss, None))
                self.reporter.metrics(rows)
                self.epoch, self.partial = epoch, None
                self.checkpoint()
                if self.is_eval_epoch(epoch):
                    self.evaluate(epoch)
                self.beat()
        except (StopRequested, KeyboardInterrupt) as stop:
            if getattr(stop, "status", None) != "lost":
                self.checkpoint()
            raise
        return "finished"
