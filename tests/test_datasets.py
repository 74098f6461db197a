import pytest
import torch
from PIL import Image

from coldlab import ColdlabError, data_root
from conftest import needs_fashion, needs_mnist


@needs_mnist
def test_mnist_from_the_data_root(registry):
    ds = registry.build("dataset", "mnist")
    images, labels = ds.load("test")
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() == -0.5 and images.max() == 0.5
    assert labels.shape == (10000,) and set(labels.tolist()) == set(range(10))
    assert ds.num_classes == 10 and ds.shape == (1, 28, 28)
    train, _ = ds.load("train")
    assert train.shape[0] == 60000


@needs_fashion
def test_fashion_mnist_differs_from_mnist(registry):
    fashion, _ = registry.build("dataset", "fashion-mnist").load("test")
    assert fashion.shape == (10000, 1, 28, 28)
    assert fashion.mean() > -0.4  # clothes cover far more of the image than digits


def test_missing_data_names_the_root_and_layout(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("COLDLAB_DATA", str(tmp_path))
    assert data_root() == tmp_path
    for name, layout in (("mnist", "MNIST/raw/"), ("fashion-mnist", "FashionMNIST/raw/"), ("cifar10", "cifar-10-batches-py/")):
        with pytest.raises(ColdlabError) as err:
            registry.build("dataset", {"name": name, "download": False}).load("train")
        message = str(err.value)
        assert str(tmp_path) in message and layout in message and "COLDLAB_DATA" in message


def test_default_data_root_is_a_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("COLDLAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert data_root() == tmp_path / "coldlab" / "data"


def test_synthetic_is_deterministic_and_labelled(registry):
    ds = registry.build("dataset", {"name": "synthetic", "train": 64, "test": 16, "channels": 3, "size": 32})
    a, la = ds.load("train")
    b, lb = ds.load("train")
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert a.shape == (64, 3, 32, 32) and ds.shape == (3, 32, 32)
    assert a.min() >= -0.5 and a.max() <= 0.5
    test, _ = ds.load("test")
    assert test.shape[0] == 16 and not torch.equal(test, a[:16])
    # the images depend on their class: the class means differ
    m0, m1 = a[la == la[0]].mean(0), a[la != la[0]].mean(0)
    assert (m0 - m1).abs().max() > 0.3
    with pytest.raises(ValueError):
        ds.load("validation")


def test_image_folder(registry, tmp_path):
    for split in ("train", "test"):
        for cls, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            folder = tmp_path / "pics" / split / cls
            folder.mkdir(parents=True)
            for i in range(3 if split == "train" else 1):
                Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    ds = registry.build("dataset", {"name": "image-folder", "path": str(tmp_path / "pics"), "size": 16})
    images, labels = ds.load("train")
    assert images.shape == (6, 3, 16, 16) and ds.num_classes == 2
    assert images.min() == -1 and images.max() == 1
    blue = images[labels == 0]  # classes are sorted: blue = 0
    assert torch.all(blue[:, 2] == 1) and torch.all(blue[:, 0] == -1)
    test, _ = ds.load("test")
    assert test.shape == (2, 3, 16, 16)
    with pytest.raises(ColdlabError, match="does not exist"):
        registry.build("dataset", {"name": "image-folder", "path": str(tmp_path / "nope")}).load("train")


@needs_mnist
def test_the_dataset_cache_follows_the_data_root(registry, tmp_path, monkeypatch):
    from coldlab.engine.data import load_dataset

    offline = {"name": "mnist", "download": False}
    assert load_dataset(registry, offline, "test")[0].shape[0] == 10000  # now cached in this process
    monkeypatch.setenv("COLDLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(ColdlabError, match="dataset 'mnist' not found under"):
        load_dataset(registry, offline, "test")
