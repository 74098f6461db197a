"""Training throughput: coldlab's trainer vs a minimal hand-written PyTorch loop.

Both train the reports' `cnn` as a DDPM (linear schedule, T = 1000, eps target, MSE, Adam 2e-4)
on MNIST with the same batch size for the same number of steps, in this one process, alternating
rounds so that both see the same machine state. Prints images/second for each and their ratio.

    python tests/benchmarks/bench_training.py [--steps 200] [--batch-size 128] [--rounds 3] [--device cpu]

Not part of the default test run. MNIST comes from $COLDLAB_DATA (or ../shared/datasets).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
if "COLDLAB_DATA" not in os.environ and (REPO.parent / "shared" / "datasets").is_dir():
    os.environ["COLDLAB_DATA"] = str(REPO.parent / "shared" / "datasets")

from coldlab.config import EvalSettings, TrainSettings  # noqa: E402
from coldlab.engine.trainer import Reporter, Trainer  # noqa: E402
from coldlab.plugins import get_registry  # noqa: E402


class NullReporter(Reporter):
    """Records nothing."""


def spec(steps: int, batch_size: int) -> dict:
    registry = get_registry()
    import dataclasses

    train = dataclasses.asdict(TrainSettings())
    train.update(epochs=1, batch_size=batch_size, val_fraction=0.0, max_train_images=steps * batch_size, log_every=50)
    return {
        "study": "bench", "name": "bench", "seed": 0,
        "dataset": registry.resolve("dataset", "mnist"),
        "network": registry.resolve("network", "cnn"),
        "degradation": registry.resolve("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 1000}}),
        "prior": registry.resolve("prior", "gaussian"),
        "sampler": registry.resolve("sampler", "ddpm"),
        "train": train, "eval": dataclasses.asdict(EvalSettings()),
    }


def time_coldlab(trainer: Trainer, device: torch.device) -> float:
    trainer.loop.partial = None
    start = time.perf_counter()
    trainer.loop.train_epoch(1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_bare(images: torch.Tensor, steps: int, batch_size: int, device: torch.device) -> float:
    """The minimal loop: the same model, data on the device, closed-form noising."""
    torch.manual_seed(0)
    net = get_registry().build("network", "cnn", shape=(1, 28, 28)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    beta = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)]).float().to(device)
    perm = torch.randperm(images.shape[0])
    start = time.perf_counter()
    for b in range(steps):
        x = images[perm[b * batch_size : (b + 1) * batch_size].to(device)]
        t = torch.randint(1, 1001, (x.shape[0],), device=device)
        eps = torch.randn_like(x)
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        z = ab.sqrt() * x + (1 - ab).sqrt() * eps
        loss = F.mse_loss(net(z, t.float() / 1000), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())  # the trainer reads every loss too (for its log and the non-finite check)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    trainer = Trainer(spec(args.steps, args.batch_size), Path("/tmp/coldlab-bench"), registry=get_registry(),
                      reporter=NullReporter(), device=str(device))
    images = trainer.data.train
    time_bare(images, 5, args.batch_size, device)  # warm-up of both paths
    bare_times, coldlab_times = [], []
    for _ in range(args.rounds):
        bare_times.append(time_bare(images, args.steps, args.batch_size, device))
        coldlab_times.append(time_coldlab(trainer, device))
    n = args.steps * args.batch_size
    bare, ours = n / min(bare_times), n / min(coldlab_times)
    print(f"device {device}, {args.steps} steps of batch {args.batch_size}, best of {args.rounds} rounds")
    print(f"bare loop: {bare:10.1f} images/s")
    print(f"coldlab:   {ours:10.1f} images/s")
    print(f"ratio coldlab/bare: {ours / bare:.3f}")


if __name__ == "__main__":
    main()
