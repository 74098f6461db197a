"""Time to quality: how good are the samples after M minutes of training on this device?

Trains, one after the other, the reports' DDPM (``cnn`` [16, 32, 32, 16], study 000's linear schedule,
T = 1000, beta 1e-5..0.02, batch 128, Adam 2e-4) and the same DDPM with the ``convnext-unet``
(base 32, mults [1, 2, 4], as study 002) on MNIST, each for a wall-clock budget of ``--minutes``, through
coldlab's own trainer (the whole 60,000-image training set: ``val_fraction = 0``, no evaluation while
training). Then, for each: ``--samples`` samples (default 1,000) from the fixed start points with
``--sampler`` (default DDIM, 100 steps, eta 0 — the reports' 1,000-step DDPM would cost 10x the
sampling time on a CPU; ``--sampler ddpm --steps 0`` asks for it), their classifier FID and class
histogram, and a grid of 64 of them (``--out``, default ``bench-quality/``) to look at.

The floor for the FID is printed too: the classifier FID of 1,000 real MNIST test images (what a perfect
generator would score against the same statistics).

    python tests/benchmarks/bench_quality.py --minutes 30 [--models cnn,convnext-unet] [--device cpu]
        [--samples 1000] [--sampler ddim] [--steps 100] [--precision fp32] [--out bench-quality]

Ends with one JSON line (per model: steps, epochs, images/s, last logged training loss, classifier FID,
histogram, entropy). Not part of the test run. MNIST comes from $COLDLAB_DATA (or ../shared/datasets).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
if "COLDLAB_DATA" not in os.environ and (REPO.parent / "shared" / "datasets").is_dir():
    os.environ["COLDLAB_DATA"] = str(REPO.parent / "shared" / "datasets")

from coldlab.config import EvalSettings, TrainSettings  # noqa: E402
from coldlab.engine.evaluation import build_metrics, evaluate  # noqa: E402
from coldlab.engine.reporter import Reporter, StopRequested  # noqa: E402
from coldlab.engine.trainer import Trainer  # noqa: E402
from coldlab.imaging import save_grid  # noqa: E402
from coldlab.plugins import get_registry  # noqa: E402

NETWORKS: dict[str, dict[str, Any]] = {
    "cnn": {"name": "cnn", "channels": [16, 32, 32, 16]},
    "convnext-unet": {"name": "convnext-unet", "base_channels": 32, "channel_mults": [1, 2, 4]},
}
METRICS = ["classifier-fid", "class-histogram"]


class Budget(Reporter):
    """Stops the run once ``seconds`` of training have passed; keeps the logged step losses."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start = seconds, time.perf_counter()
        self.losses: list[tuple[int, float]] = []
        self.step = 0

    def metrics(self, rows: list[Any]) -> None:
        self.losses += [(step, value) for name, step, _, value, _ in rows if name == "train_loss_step"]

    def progress(self, epoch: int, step: int, total_steps: int) -> str | None:
        self.step = step
        return "interrupted" if time.perf_counter() - self.start >= self.seconds else None


def spec(network: str, args: argparse.Namespace) -> dict[str, Any]:
    registry = get_registry()
    train = dataclasses.asdict(TrainSettings())
    train.update(epochs=10_000, batch_size=128, lr=2e-4, val_fraction=0.0, log_every=100, precision=args.precision, compile=args.compile)
    evaluation = dataclasses.asdict(EvalSettings())
    evaluation.update(every=0, samples=args.samples, metrics=[registry.resolve("metric", m) for m in METRICS], batch_size=args.eval_batch)
    steps = None if args.steps == 0 else args.steps
    return {
        "study": "bench-quality",
        "name": network,
        "seed": 0,
        "dataset": registry.resolve("dataset", "mnist"),
        "network": registry.resolve("network", NETWORKS[network]),
        "degradation": registry.resolve(
            "degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 1000, "beta_min": 1e-5, "beta_max": 0.02}}
        ),
        "prior": registry.resolve("prior", "gaussian"),
        "sampler": registry.resolve("sampler", {"name": args.sampler, "steps": steps}),
        "train": train,
        "eval": evaluation,
    }


def real_floor(trainer: Trainer) -> float:
    """The classifier FID of 1,000 real test images against the same real statistics."""
    ctx = trainer.eval_context(samples=1000)
    images, _ = ctx.test_set()
    ctx.use_samples(images[:1000])
    (result,) = evaluate(ctx, build_metrics(get_registry(), ["classifier-fid"]))
    return float(result.value or 0.0)


def bench(network: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    run_dir = out / network
    shutil.rmtree(run_dir, ignore_errors=True)
    registry = get_registry()
    budget = Budget(args.minutes * 60)
    trainer = Trainer(spec(network, args), run_dir, registry=registry, reporter=budget, device=args.device, cache_dir=out / "cache")
    params = sum(p.numel() for p in trainer.net.parameters())
    budget.start = time.perf_counter()
    try:
        trainer.run(resume=False)
    except StopRequested:
        pass
    train_seconds = time.perf_counter() - budget.start
    budget.seconds = float("inf")  # evaluation is not cut short
    steps = trainer.step
    start = time.perf_counter()
    ctx = trainer.eval_context()
    results = {r.name: r for r in evaluate(ctx, build_metrics(registry, METRICS))}
    sample_seconds = time.perf_counter() - start
    grid = out / f"grid-{network}.png"
    save_grid(ctx.samples()[:64], grid, trainer.images.value_range)
    hist = results["class-histogram"]
    row = {
        "network": network,
        "parameters": params,
        "train_seconds": round(train_seconds, 1),
        "steps": steps,
        "epochs": round(steps / trainer.loop.steps_per_epoch, 2),
        "images_per_s": round(steps * 128 / train_seconds, 1),
        "last_train_loss_step": budget.losses[-1][1] if budget.losses else None,
        "classifier_fid": results["classifier-fid"].value,
        "histogram": hist.detail.get("counts"),
        "entropy_bits": hist.value,
        "confident_share": hist.detail.get("confident_share"),
        "eval_seconds": round(sample_seconds, 1),
        "grid": str(grid),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training budget per model (wall clock)")
    parser.add_argument("--models", default="cnn,convnext-unet")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sampler", default="ddim", choices=["ddim", "ddpm"])
    parser.add_argument("--steps", type=int, default=100, help="sampling steps (0: every step)")
    parser.add_argument("--eval-batch", type=int, default=250)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", default="bench-quality")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [bench(name, args, out) for name in args.models.split(",")]
    floor = real_floor(Trainer(spec("cnn", args), out / "floor", registry=get_registry(), reporter=Reporter(), device=args.device, cache_dir=out / "cache"))
    print(f"{args.minutes:g} min of training per model on {args.device}; {args.samples} samples by {args.sampler} ({args.steps or 'all'} steps)")
    print(f"real MNIST test images (the floor): classifier FID {floor:.2f}")
    for r in rows:
        print(
            f"{r['network']:14s} {r['parameters']:>9,d} params  {r['steps']:>6d} steps ({r['epochs']:.1f} epochs, {r['images_per_s']:.0f} img/s)  "
            f"classifier FID {r['classifier_fid']:.2f}  entropy {r['entropy_bits']:.2f} bits  histogram {r['histogram']}"
        )
    print(json.dumps({"device": args.device, "minutes": args.minutes, "sampler": args.sampler, "steps": args.steps, "real_floor": floor, "models": rows}))


if __name__ == "__main__":
    main()
