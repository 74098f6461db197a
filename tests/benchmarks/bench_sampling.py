"""Sampling throughput: coldlab's evaluation sampler vs a minimal hand-written DDIM loop.

Both sample the reports' ``cnn`` (random weights: speed does not depend on them) with DDIM (eta 0,
``--steps`` steps, x0 clipped to the data range) on the linear schedule (T = 1000), ``--samples`` samples,
in this one process, alternating rounds:

- minimal: one batch of all samples, alpha_bar precomputed on the device, ``torch.inference_mode``;
- coldlab: ``RunEvaluation.generate`` (the engine's path: prior start points, lockstep sampling, the network
  called on chunks of ``--batch-size`` (default ``auto``), progress after each call), optionally compiled
  (``--compile``) or with CUDA graphs (``--cuda-graphs``, CUDA only).

Prints network evaluations per second (samples x steps / seconds) for each, then one JSON line with
``coldlab_vs_minimal`` (ratio of the best rounds).

    python tests/benchmarks/bench_sampling.py [--samples 500] [--steps 50] [--rounds 3] [--device cpu]
        [--batch-size auto|N] [--compile] [--cuda-graphs]

Not part of the default test run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from coldlab.engine.batching import sampling_network
from coldlab.engine.evaluation import RunEvaluation
from coldlab.plugins import get_registry

SHAPE = (1, 28, 28)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def minimal(net: torch.nn.Module, n: int, steps: int, device: torch.device) -> float:
    beta = torch.linspace(1e-5, 0.02, 1000, dtype=torch.float64)
    ab = torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - beta, 0)]).float().to(device)
    seq = torch.linspace(1000, 0, steps + 1).round().long().tolist()
    gen = torch.Generator(device=device).manual_seed(0)
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        z = torch.randn((n, *SHAPE), generator=gen, device=device)
        for t, t_next in zip(seq[:-1], seq[1:], strict=True):
            eps = net(z, torch.full((n,), t / 1000, device=device), None)
            x0 = ((z - (1 - ab[t]).sqrt() * eps) / ab[t].sqrt()).clamp(-0.5, 0.5)
            eps = (z - ab[t].sqrt() * x0) / (1 - ab[t]).sqrt()
            z = ab[t_next].sqrt() * x0 + (1 - ab[t_next]).sqrt() * eps
    sync(device)
    return time.perf_counter() - start


def coldlab_rate(ctx: RunEvaluation, n: int, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in ctx.generate(n):
        pass
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--cuda-graphs", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    registry = get_registry()
    torch.manual_seed(0)
    net = registry.build("network", "cnn", shape=SHAPE).to(device).eval()
    sampler = registry.build("sampler", {"name": "ddim", "steps": args.steps})
    sampler.value_range = (-0.5, 0.5)
    degradation = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 1000, "beta_min": 1e-5, "beta_max": 0.02}})
    call, graphs = sampling_network(net, device, compile=args.compile, cuda_graphs=args.cuda_graphs)
    batch = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    ctx = RunEvaluation(registry=registry, dataset_spec={"name": "mnist"}, net=call, degradation=degradation, sampler=sampler,
                        prior=registry.build("prior", "gaussian"), shape=SHAPE, num_classes=10, value_range=(-0.5, 0.5), device=device,
                        samples=args.samples, batch_size=batch, seed=0, cache_dir=Path("/tmp/coldlab-bench-cache"),
                        cuda_graphs=graphs)
    minimal(net, min(args.samples, 16), 2, device)  # warm-up of both paths (and compilation)
    coldlab_rate(ctx, args.samples, device)
    times: dict[str, list[float]] = {"minimal": [], "coldlab": []}
    for _ in range(args.rounds):
        times["minimal"].append(minimal(net, args.samples, args.steps, device))
        times["coldlab"].append(coldlab_rate(ctx, args.samples, device))
    evals = args.samples * args.steps
    rate = {k: evals / min(v) for k, v in times.items()}
    print(f"device {device}, {args.samples} samples x {args.steps} DDIM steps, best of {args.rounds} rounds, chunk {ctx.chunk_size()}")
    for k, v in rate.items():
        print(f"{k:8s} {v:10.1f} network evaluations/s")
    print(json.dumps({
        "device": str(device), "samples": args.samples, "steps": args.steps, "rounds": args.rounds, "chunk": ctx.chunk_size(),
        "compile": args.compile, "cuda_graphs": graphs,
        "evaluations_per_s": {k: round(v, 1) for k, v in rate.items()},
        "coldlab_vs_minimal": round(rate["coldlab"] / rate["minimal"], 3),
    }))


if __name__ == "__main__":
    main()
