"""Training throughput: coldlab's trainer vs a minimal hand-written PyTorch loop vs the usual tutorial loop.

All three train the reports' `cnn` as a DDPM (linear schedule, T = 1000, eps target, MSE, Adam 2e-4)
on MNIST with the same batch size for the same number of steps, in this one process, alternating
rounds so that all see the same machine state:

- minimal: the data as one tensor on the device, closed-form noising, no host synchronisation per step;
- tutorial: torchvision's MNIST dataset with ToTensor/Normalize through a DataLoader (shuffle, the default
  num_workers=0), fp32, ``loss.item()`` every step — what a researcher writes first;
- coldlab: the trainer's epoch (``--precision``, ``--compile``, ``--channels-last`` as in ``train``).

Prints images/second for each, then one JSON line with the ratios (``coldlab_vs_minimal``,
``coldlab_vs_tutorial``: ratios of images/s, best round of each).

    python tests/benchmarks/bench_training.py [--steps 200] [--batch-size 128] [--rounds 3] [--device cpu]
        [--precision fp32|bf16|fp16] [--compile] [--channels-last]

Not part of the default test run. MNIST comes from $COLDLAB_DATA (or ../shared/datasets).
"""

from __future__ import annotations

import argparse
import json
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


def spec(steps: int, batch_size: int, **train_settings) -> dict:
    registry = get_registry()
    import dataclasses

    train = dataclasses.asdict(TrainSettings())
    train.update(epochs=1, batch_size=batch_size, val_fraction=0.0, max_train_images=steps * batch_size, log_every=50, **train_settings)
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
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_tutorial(steps: int, batch_size: int, device: torch.device) -> float:
    """The tutorial loop: torchvision dataset and transforms, a DataLoader, ``.item()`` every step."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    data = datasets.MNIST(os.environ["COLDLAB_DATA"], train=True, download=False,
                          transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (1.0,))]))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    net = get_registry().build("network", "cnn", shape=(1, 28, 28)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    beta = torch.linspace(1e-4, 0.02, 1000)
    alpha_bar = torch.cumprod(1 - beta, 0).to(device)
    start = time.perf_counter()
    for step, (x, _) in enumerate(loader):
        if step == steps:
            break
        x = x.to(device)
        t = torch.randint(0, 1000, (x.shape[0],), device=device)
        eps = torch.randn_like(x)
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        loss = F.mse_loss(net(ab.sqrt() * x + (1 - ab).sqrt() * eps, t.float() / 1000), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # logged every step
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    settings = {"precision": args.precision, "compile": args.compile, "channels_last": args.channels_last}
    trainer = Trainer(spec(args.steps, args.batch_size, **settings), Path("/tmp/coldlab-bench"), registry=get_registry(),
                      reporter=NullReporter(), device=str(device))
    images = trainer.data.train
    time_bare(images, 5, args.batch_size, device)  # warm-up of every path (and compilation)
    time_tutorial(5, args.batch_size, device)
    trainer.loop.steps_per_epoch = 5
    time_coldlab(trainer, device)
    trainer.loop.steps_per_epoch = args.steps
    times: dict[str, list[float]] = {"minimal": [], "tutorial": [], "coldlab": []}
    for _ in range(args.rounds):
        times["minimal"].append(time_bare(images, args.steps, args.batch_size, device))
        times["tutorial"].append(time_tutorial(args.steps, args.batch_size, device))
        times["coldlab"].append(time_coldlab(trainer, device))
    n = args.steps * args.batch_size
    rate = {k: n / min(v) for k, v in times.items()}
    print(f"device {device}, {args.steps} steps of batch {args.batch_size}, best of {args.rounds} rounds, coldlab {settings}")
    for k, v in rate.items():
        print(f"{k:9s} {v:10.1f} images/s")
    print(json.dumps({
        "device": str(device), "steps": args.steps, "batch_size": args.batch_size, "rounds": args.rounds, **settings,
        "images_per_s": {k: round(v, 1) for k, v in rate.items()},
        "coldlab_vs_minimal": round(rate["coldlab"] / rate["minimal"], 3),
        "coldlab_vs_tutorial": round(rate["coldlab"] / rate["tutorial"], 3),
    }))


if __name__ == "__main__":
    main()
