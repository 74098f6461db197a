"""Train the bundled classifier of ``mnist`` or ``fashion-mnist`` reproducibly::

    COLDLAB_DATA=../shared/datasets python -m coldlab.default_plugins.metrics.train_classifier --dataset mnist

Single-threaded and deterministic, so the same command gives the same weights (and SHA-256).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import torch

from coldlab.default_plugins.metrics.classifier import BUNDLED, WEIGHTS_DIR, accuracy, package, train_classifier


def main(argv: list[str] | None = None) -> int:
    """Train the bundled classifier of a dataset reproducibly and write its weights."""
    from coldlab.plugins import get_registry

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", required=True, choices=sorted(BUNDLED))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="output file (default: the bundled weights file)")
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # the same sums in the same order on every machine
    registry = get_registry()
    dataset = registry.build("dataset", args.dataset)
    images, labels = dataset.load("train")
    test_x, test_y = dataset.load("test")
    start = time.perf_counter()
    model = train_classifier(images, labels, dataset.num_classes, epochs=args.epochs, seed=args.seed)
    acc = accuracy(model, test_x, test_y)
    command = f"python -m coldlab.default_plugins.metrics.train_classifier --dataset {args.dataset} --epochs {args.epochs} --seed {args.seed}"
    blob = package(model, {"dataset": {"name": args.dataset}, "epochs": args.epochs, "seed": args.seed, "test_accuracy": acc, "command": command})
    out = Path(args.out) if args.out else WEIGHTS_DIR / BUNDLED[args.dataset]
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    out.write_bytes(buffer.getvalue())
    print(
        f"{args.dataset}: test accuracy {acc:.4f}, {time.perf_counter() - start:.0f} s, "
        f"sha256 {blob['info']['sha256'][:16]}, {out.stat().st_size // 1024} KiB -> {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
