"""Built-in datasets (SPEC.md section 6), read through torchvision from the data root.

The data root is ``$COLDLAB_DATA`` (default: ``~/.cache/coldlab/data``), in torchvision's
layout (``MNIST/raw/...``, ``FashionMNIST/raw/...``, ``cifar-10-batches-py/...``). With
``download = true`` (the default) torchvision fetches missing data into it; when that is
impossible the error names the root, the layout expected, and how to fix it.
MNIST and FashionMNIST are scaled to [-0.5, 0.5] (the reports' convention), colour data to [-1, 1].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coldlab import SEED_MAX, ColdlabError, Dataset, data_root, hookimpl, param
from coldlab.components.naming import name_of
from coldlab.hookspecs import Register

_SPLITS = ("train", "test")


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _open_torchvision(factory: Callable[..., Any], name: str, layout: str, root: Path, train: bool, download: bool) -> Any:
    """Open a torchvision dataset, turning 'not found' and failed downloads into one clear error."""
    try:
        return factory(str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:
        how = "it could not be downloaded" if download else "download = false"
        why = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise ColdlabError(
            f"dataset {name!r} not found under {root} ({how}: {why[:300]})",
            hint=f"put the files at {root}/{layout} (torchvision's layout), or set COLDLAB_DATA to a folder that has them",
        ) from None


@dataclasses.dataclass
class _DownloadParams:
    download: bool = param(True, "let torchvision download missing files into the data root")


class _TorchvisionGrey(Dataset):
    """MNIST-like: 28x28 greyscale, 10 classes, scaled to [-0.5, 0.5]."""

    Params = _DownloadParams
    shape = (1, 28, 28)
    num_classes = 10
    value_range = (-0.5, 0.5)
    folder = ""

    def factory(self) -> Callable[..., Any]:
        raise NotImplementedError

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        _check_split(split)
        ds = _open_torchvision(self.factory(), name_of(self), f"{self.folder}/raw/", data_root(), split == "train", self.params.download)
        images = ds.data.to(torch.float32).div_(255.0).sub_(0.5).unsqueeze(1)
        return images, ds.targets.to(torch.long)


class MNIST(_TorchvisionGrey):
    folder = "MNIST"

    def factory(self) -> Any:
        from torchvision.datasets import MNIST as tv

        return tv


class FashionMNIST(_TorchvisionGrey):
    folder = "FashionMNIST"

    def factory(self) -> Any:
        from torchvision.datasets import FashionMNIST as tv

        return tv


class CIFAR10(Dataset):
    """CIFAR-10: 32x32 RGB, 10 classes, scaled to [-1, 1]."""

    Params = _DownloadParams
    shape = (3, 32, 32)
    num_classes = 10
    value_range = (-1.0, 1.0)

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        _check_split(split)
        from torchvision.datasets import CIFAR10 as tv

        ds = _open_torchvision(tv, "cifar10", "cifar-10-batches-py/", data_root(), split == "train", self.params.download)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).to(torch.float32).div_(127.5).sub_(1.0)
        return images.contiguous(), torch.tensor(ds.targets, dtype=torch.long)


class ImageFolder(Dataset):
    """Any folder of class sub-folders (torchvision ImageFolder), resized and centre-cropped to
    ``size``, scaled to [-1, 1]. ``path`` is relative to the data root unless absolute. If it
    holds ``train/`` and ``test/`` folders those are the splits; otherwise the test split is the
    last ``test_fraction`` of a fixed shuffle of all its images."""

    @dataclasses.dataclass
    class Params:
        path: str = param("images", "folder of class sub-folders (e.g. ImageNet-100's train/)")
        size: int = param(64, "images are resized and centre-cropped to size x size", min=1)
        channels: int = param(3, "3 for RGB, 1 for greyscale", min=1)
        test_fraction: float = param(0.1, "share held out as the test split when there is no test/ folder", min=0, lt=1)
        max_images: int = param(0, "load at most this many images per split (0: all)", min=0)

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.shape = (params.channels, params.size, params.size)
        self.value_range = (-1.0, 1.0)
        root = Path(params.path).expanduser()
        self.root = root if root.is_absolute() else data_root() / root
        class_root = self.root / "train" if (self.root / "train").is_dir() and (self.root / "test").is_dir() else self.root
        self.num_classes = sum(1 for d in class_root.iterdir() if d.is_dir()) if class_root.is_dir() else 0

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        _check_split(split)
        from torchvision import datasets, transforms

        if not self.root.is_dir():
            raise ColdlabError(f"image folder {self.root} does not exist", hint="set 'path' (relative to COLDLAB_DATA or absolute)", where=("path",))
        p = self.params
        steps = [transforms.Resize(p.size), transforms.CenterCrop(p.size)]
        if p.channels == 1:
            steps.append(transforms.Grayscale(1))
        steps.append(transforms.PILToTensor())
        tf = transforms.Compose(steps)
        split_dir = self.root / split
        if (self.root / "train").is_dir() and (self.root / "test").is_dir():
            folder = datasets.ImageFolder(str(split_dir), transform=tf)
            indices = list(range(len(folder)))
        else:
            folder = datasets.ImageFolder(str(self.root), transform=tf)
            order = torch.randperm(len(folder), generator=torch.Generator().manual_seed(0)).tolist()
            cut = len(order) - int(round(len(order) * p.test_fraction))
            indices = order[cut:] if split == "test" else order[:cut]
        if p.max_images:
            indices = indices[: p.max_images]
        if not indices:
            raise ColdlabError(f"image folder {self.root} has no images for split {split!r}", where=("path",))
        items = [folder[i] for i in indices]
        images = torch.stack([img for img, _ in items]).to(torch.float32).div_(127.5).sub_(1.0)
        return images, torch.tensor([label for _, label in items], dtype=torch.long)


class Synthetic(Dataset):
    """Small generated data for tests and smoke runs: class k is a bright square at a
    class-dependent position on a dark background, plus a little noise, in [-0.5, 0.5]."""

    @dataclasses.dataclass
    class Params:
        size: int = param(28, "image side", min=1)
        channels: int = param(1, "image channels", min=1)
        classes: int = param(10, "number of classes", min=0)
        train: int = param(512, "training images", min=1)
        test: int = param(128, "test images", min=1)
        seed: int = param(0, "generator seed", min=0, max=SEED_MAX)

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        if params.size < 4 or params.classes < 1 or params.channels < 1:
            raise ValueError("synthetic data needs size >= 4, classes >= 1 and channels >= 1")
        self.shape = (params.channels, params.size, params.size)
        self.num_classes = params.classes

    def load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        _check_split(split)
        p = self.params
        n = p.train if split == "train" else p.test
        g = torch.Generator().manual_seed(p.seed * 2 + (split == "test"))
        labels = torch.randint(0, p.classes, (n,), generator=g)
        side = max(2, p.size // 4)
        span = p.size - side
        angle = labels.float() * (2 * torch.pi / p.classes)
        top = ((torch.sin(angle) + 1) / 2 * span).round().long()
        left = ((torch.cos(angle) + 1) / 2 * span).round().long()
        rows = torch.arange(p.size)
        inside_r = (rows[None] >= top[:, None]) & (rows[None] < (top + side)[:, None])
        inside_c = (rows[None] >= left[:, None]) & (rows[None] < (left + side)[:, None])
        square = (inside_r[:, :, None] & inside_c[:, None, :]).float()
        images = square[:, None].expand(n, p.channels, p.size, p.size) * 0.8 - 0.4
        images = images + 0.05 * torch.randn(images.shape, generator=g)
        return images.clamp(-0.5, 0.5).contiguous(), labels


@hookimpl
def register_datasets(register: Register) -> None:
    register("mnist", MNIST)
    register("fashion-mnist", FashionMNIST)
    register("cifar10", CIFAR10)
    register("image-folder", ImageFolder)
    register("synthetic", Synthetic)
