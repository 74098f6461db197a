"""Shared fixtures. Tests are hermetic: no third-party plugins load unless a test asks,
and real datasets come from ../shared/datasets (or $COLDLAB_DATA) without downloads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets"

os.environ.setdefault("COLDLAB_LOAD_PLUGINS", "")
os.environ["COLDLAB_OFFLINE"] = "1"  # tests never download: a missing dataset is reported, not fetched
if "COLDLAB_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["COLDLAB_DATA"] = str(SHARED_DATA)

torch.set_num_threads(2)


def real_data_available(folder: str) -> bool:
    root = Path(os.environ.get("COLDLAB_DATA", "")) / folder / "raw"
    return root.is_dir() and any(root.iterdir())


needs_mnist = pytest.mark.skipif(not real_data_available("MNIST"), reason="MNIST not found under COLDLAB_DATA (../shared/datasets)")
needs_fashion = pytest.mark.skipif(not real_data_available("FashionMNIST"), reason="FashionMNIST not found under COLDLAB_DATA")


@pytest.fixture
def registry():
    from coldlab.plugins import get_registry

    return get_registry()


@pytest.fixture
def images():
    """A small batch of structured images in [-0.5, 0.5] (not constant, so blur and zoom act)."""
    g = torch.Generator().manual_seed(0)
    return (torch.rand((6, 1, 28, 28), generator=g) - 0.5)


def install_plugin(folder: Path, dist: str, module: str, source: str) -> None:
    """A plugin package as pip would leave it: the module and a dist-info with its entry point."""
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[coldlab]\n{module} = {module}\n")


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """Load the plugin packages installed under tmp_path/site, here and in worker processes."""
    from coldlab import plugins

    site = tmp_path / "site"
    site.mkdir()

    def use(dist, module, source):
        install_plugin(site, dist, module, source)
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", dist)
        monkeypatch.setattr(plugins, "_HOST", None)

    yield use


from pg import pg_server, pg_url  # noqa: E402,F401  (the PostgreSQL fixtures, shared with plugins/conftest.py)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The store of one test, on each backend in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "coldlab.db")
    return request.getfixturevalue("pg_url")
