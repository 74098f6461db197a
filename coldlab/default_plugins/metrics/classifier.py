"""The small classifier behind ``classifier-fid`` and ``class-histogram``.

coldlab ships trained weights for ``mnist`` and ``fashion-mnist`` (``weights/*.pt`` beside this
file), made by ``train_classifier.py``'s command line (run from the repository root)::

    COLDLAB_DATA=../shared/datasets python -m coldlab.default_plugins.metrics.train_classifier --dataset mnist
    COLDLAB_DATA=../shared/datasets python -m coldlab.default_plugins.metrics.train_classifier --dataset fashion-mnist

For any other labelled dataset a classifier is trained on first use (``epochs`` of the metric,
default 5) and cached under ``HOME/cache/classifiers``. Every value records the extractor's
name and the SHA-256 of its weights, so numbers from different classifiers are never mixed up.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_DIR = Path(__file__).with_name("weights")
BUNDLED = {"mnist": "mnist.pt", "fashion-mnist": "fashion-mnist.pt"}
FEATURES = 128


class SmallClassifier(nn.Module):
    """Three conv layers, average pooling to 3x3, a 128-wide feature layer, a linear head.

    Works for any image size and channel count; ``features`` (the 128 ReLU activations
    before the head) are what ``classifier-fid`` compares.
    """

    num_features = FEATURES

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(3),
            nn.Flatten(),
            nn.Linear(576, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast("torch.Tensor", self.head(self.body(x)))


class FeatureView(nn.Module):
    """The classifier as a feature extractor (torchmetrics' FID calls ``forward``)."""

    def __init__(self, classifier: SmallClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = FEATURES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x.float())


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the weights themselves (independent of how the file was written)."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch):
        correct += int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
    return correct / max(1, images.shape[0])


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    min_steps: int = 200,
    device: torch.device | str = "cpu",
    on_step: Any = None,
) -> SmallClassifier:
    """Train a :class:`SmallClassifier` with Adam on ``images`` (in the dataset's value range) for
    ``epochs`` epochs, or more if that is fewer than ``min_steps`` steps (small datasets); ``on_step`` is
    called before every step (a run's progress beat: a cancel stops the training of its classifier)."""
    torch.manual_seed(seed)
    model = SmallClassifier(images.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = -(-images.shape[0] // batch_size)
    for _ in range(max(epochs, -(-min_steps // steps_per_epoch))):
        model.train()
        perm = torch.randperm(images.shape[0], generator=gen)
        for i in range(0, images.shape[0], batch_size):
            if on_step is not None:
                on_step()
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(images[idx].to(device)), labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return model.eval().requires_grad_(False)


def package(model: SmallClassifier, info: dict[str, Any]) -> dict[str, Any]:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {"state_dict": state, "info": {**info, "sha256": state_hash(state)}}


def load(blob: dict[str, Any], channels: int, num_classes: int, device: torch.device | str) -> tuple[SmallClassifier, dict[str, Any]]:
    model = SmallClassifier(channels, num_classes)
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval().requires_grad_(False), dict(blob["info"])


def classifier_for(ctx: Any, *, epochs: int = 5) -> tuple[SmallClassifier, dict[str, Any]]:
    """The classifier of the context's dataset: bundled weights, else trained once and cached.

    Raises :class:`MetricUnavailable` for unlabelled datasets. The result is shared by every
    metric of one evaluation (``ctx.shared``).
    """
    from coldlab.components.metric import MetricUnavailable

    if "classifier" in ctx.shared:
        return cast("tuple[SmallClassifier, dict[str, Any]]", ctx.shared["classifier"])
    name = ctx.dataset_spec["name"]
    channels = ctx.shape[0]
    if ctx.num_classes < 2:
        raise MetricUnavailable(f"dataset {name!r} has no class labels, so no classifier can be trained for it")
    if name in BUNDLED and (WEIGHTS_DIR / BUNDLED[name]).exists():
        blob = torch.load(WEIGHTS_DIR / BUNDLED[name], map_location="cpu", weights_only=True)
        source = f"bundled ({BUNDLED[name]})"
    else:

        def train() -> dict[str, torch.Tensor]:
            images, labels = ctx.train_set()
            model = train_classifier(images, labels, ctx.num_classes, epochs=epochs, device=ctx.device, on_step=ctx.on_batch)
            test_x, test_y = ctx.test_set()
            acc = accuracy(model, test_x.to(ctx.device), test_y.to(ctx.device))
            blob = package(model, {"dataset": ctx.dataset_spec, "epochs": epochs, "test_accuracy": acc})
            return {**blob["state_dict"], "_test_accuracy": torch.tensor(acc)}

        flat = ctx.cached("classifiers", {"dataset": ctx.dataset_spec, "epochs": epochs, "shape": ctx.shape, "classes": ctx.num_classes}, train)
        state = {k: v for k, v in flat.items() if not k.startswith("_")}
        blob = {
            "state_dict": state,
            "info": {"dataset": ctx.dataset_spec, "epochs": epochs, "test_accuracy": float(flat["_test_accuracy"]), "sha256": state_hash(state)},
        }
        source = "trained on first use (cached)"
    model, info = load(blob, channels, ctx.num_classes, ctx.device)
    info["source"] = source
    ctx.shared["classifier"] = (model, info)
    return model, info
