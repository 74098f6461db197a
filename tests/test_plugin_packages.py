"""The packages under plugins/: installed and listed, public API only, and a broken plugin
component is reported with its package without taking the host down."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from coldlab import ColdlabError
from coldlab.plugins import PluginHost

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))
PUBLIC = {"coldlab", "coldlab.testing"}


def test_there_are_plugin_packages_of_several_kinds():
    names = {tomllib.loads((p / "pyproject.toml").read_text())["project"]["name"] for p in PACKAGES}
    assert {"coldlab-pixelate", "coldlab-sigmoid"} <= names


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_plugin_packages_import_only_the_public_api(package):
    bad = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "coldlab" and n not in PUBLIC]
    assert not bad, f"plugins may import only {sorted(PUBLIC)}: {bad}"


def test_coldlab_plugins_lists_the_installed_packages_with_their_versions():
    env = {k: v for k, v in os.environ.items() if k != "COLDLAB_LOAD_PLUGINS"}
    out = subprocess.run([sys.executable, "-m", "coldlab", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr
    listed = {p["package"]: p for p in json.loads(out.stdout)["plugins"]}
    for package in PACKAGES:
        project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
        assert project["name"] in listed, f"{project['name']} is not installed: pip install -e {package.relative_to(REPO)}"
        info = listed[project["name"]]
        assert info["version"] == project["version"] and info["error"] is None and info["components"]
    table = subprocess.run([sys.executable, "-m", "coldlab", "plugins"], capture_output=True, text=True, env=env, timeout=900)
    assert "coldlab-pixelate" in table.stdout and "pixelate" in table.stdout and "sigmoid" in table.stdout


EXPLODING = '''
import dataclasses
import torch
from coldlab import Degradation, Schedule, hookimpl, param

class Explodes(Schedule):
    def __init__(self, params):
        raise RuntimeError("constructor bug")

class BadDegrade(Degradation):
    target = "x0"
    @dataclasses.dataclass
    class Params:
        T: int = param(3, "steps")
    @property
    def T(self):
        return self.params.T
    def degrade(self, x, t, noise=None):
        raise ZeroDivisionError("degrade bug")

@hookimpl
def register_schedules(register):
    register("explodes", Explodes)

@hookimpl
def register_degradations(register):
    register("bad-degrade", BadDegrade)
'''


@pytest.fixture
def exploding(monkeypatch):
    module = types.ModuleType("coldlab_exploding")
    monkeypatch.setitem(sys.modules, "coldlab_exploding", module)
    exec(compile(EXPLODING, "coldlab_exploding.py", "exec"), module.__dict__)
    return PluginHost([module], entry_points=False).registry


def test_a_component_whose_constructor_raises_is_reported_with_its_package(exploding):
    with pytest.raises(ColdlabError, match=r"schedule 'explodes' \(from plugin package coldlab_exploding local\) failed to build: "
                                           r"RuntimeError: constructor bug"):
        exploding.build("degradation", {"name": "gaussian", "schedule": "explodes"})
    assert exploding.build("schedule", "linear").T == 1000  # the host keeps working


def test_an_exception_inside_a_plugin_is_blamed_on_its_package(exploding):
    import torch

    deg = exploding.build("degradation", "bad-degrade")
    with pytest.raises(ZeroDivisionError) as err:
        deg.training_batch(torch.zeros(2, 1, 4, 4))
    culprit = exploding.blame(err.value)
    assert culprit is not None and culprit.package == "coldlab_exploding"
    with pytest.raises(ZeroDivisionError) as own:
        1 / 0
    assert exploding.blame(own.value) is None


def test_a_failing_plugin_component_fails_only_its_run_and_names_the_package(exploding, tmp_path, monkeypatch):
    from coldlab import plugins
    from coldlab.engine.worker import run_worker
    from coldlab.store import connect, enqueue

    monkeypatch.setattr(plugins, "_HOST", types.SimpleNamespace(registry=exploding))
    conn = connect(tmp_path / "coldlab.db")
    base = {"study": "x", "dataset": {"name": "synthetic", "size": 8, "train": 32, "test": 16},
            "network": {"name": "cnn", "channels": [4, 4]}, "prior": "gaussian", "sampler": "cold-improved",
            "train": {"epochs": 1, "batch_size": 8}, "eval": {"every": 1, "samples": 4, "grid": 4}}
    bad = {**base, "name": "bad", "degradation": {"name": "bad-degrade", "T": 3}}
    good = {**base, "name": "good", "degradation": {"name": "zoom", "final_size": 4}}
    for spec in (bad, good):
        enqueue(conn, spec["study"], spec["name"], spec, epochs=1)
    run_worker(tmp_path, "cpu")
    rows = {r["name"]: r for r in conn.execute("SELECT * FROM runs")}
    assert rows["bad"]["status"] == "failed"
    assert "ZeroDivisionError in plugin package coldlab_exploding local: degrade bug" in rows["bad"]["error"]
    assert rows["good"]["status"] == "finished"
