"""Latent vs pixel diffusion: training and sampling cost of the same network in MNIST's pixel space
(1x28x28) and in the 4x7x7 latent space of study 003-latent's VAE (channels [32, 64]).

Both use the cnn of study 003-latent (channels [64, 128, 128, 64]) as a DDPM eps network (linear schedule,
T = 1000); the latent side also pays for decoding its samples. The VAE is untrained: cost does not depend
on its weights. Rounds alternate between the two so that both see the same machine state; prints
images/second for training steps and for DDIM-50 sampling, and the latent/pixel ratios.

    python tests/benchmarks/bench_latent.py [--steps 30] [--batch-size 128] [--samples 64] [--rounds 3] [--device cpu]

Not part of the default test run; needs no data.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from coldlab.plugins import get_registry

NETWORK = {"name": "cnn", "channels": [64, 128, 128, 64]}


def build(device: str):
    registry = get_registry()
    vae = registry.build("autoencoder", {"name": "vae", "channels": [32, 64], "latent_channels": 4}, shape=(1, 28, 28))
    vae = vae.to(device).eval().requires_grad_(False)
    degradation = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 1000}})
    sampler = registry.build("sampler", {"name": "ddim", "steps": 50, "clip_x0": False})
    nets = {}
    for side, shape in (("pixel", (1, 28, 28)), ("latent", tuple(vae.latent_shape))):
        torch.manual_seed(0)
        net = registry.build("network", NETWORK, shape=shape, num_classes=10).to(device)
        nets[side] = (net, shape, torch.optim.Adam(net.parameters(), lr=2e-4))
    return vae, degradation, sampler, nets


def train_rate(net, opt, degradation, shape, steps: int, batch: int, device: str) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, *shape, device=device)
    start = time.perf_counter()
    for _ in range(steps):
        z, t, target = degradation.training_batch(x, gen)
        loss = F.mse_loss(net(z, t.float() / degradation.T), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


@torch.no_grad()
def sample_rate(net, degradation, sampler, shape, n: int, device: str, decode=None) -> float:
    net.eval()
    z = torch.randn(n, *shape, device=device)
    start = time.perf_counter()
    images = sampler.sample(net, degradation, z, generator=torch.Generator(device=device).manual_seed(1)).images
    if decode is not None:
        images = decode(images)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    assert images.shape[1:] == (1, 28, 28)
    net.train()
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    vae, degradation, sampler, nets = build(args.device)
    rates = {(side, what): [] for side in nets for what in ("train", "sample")}
    for _ in range(args.rounds):
        for side, (net, shape, opt) in nets.items():
            rates[(side, "train")].append(train_rate(net, opt, degradation, shape, args.steps, args.batch_size, args.device))
            decode = vae.from_latent if side == "latent" else None
            rates[(side, "sample")].append(sample_rate(net, degradation, sampler, shape, args.samples, args.device, decode))
    best = {k: max(v) for k, v in rates.items()}
    print(f"device {args.device}, network {NETWORK}, {args.rounds} rounds (best of each)")
    for what, unit in (("train", "training images/s"), ("sample", "DDIM-50 samples/s (latent: decoded too)")):
        p, lat = best[("pixel", what)], best[("latent", what)]
        print(f"{unit}: pixel 1x28x28 {p:.1f}, latent {'x'.join(map(str, vae.latent_shape))} {lat:.1f}, ratio latent/pixel {lat / p:.2f}")


if __name__ == "__main__":
    main()
