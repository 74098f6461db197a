import dataclasses
import json
import os
import subprocess
import sys
import types
import warnings

import pytest
import torch

import coldlab
from coldlab import ColdlabError, PluginLoadWarning, Schedule, hookimpl, param
from coldlab.hookspecs import KINDS
from coldlab.plugins import PluginHost, reset


class SquareRootSchedule(Schedule):
    """beta_t = beta_max * sqrt(t / T): a throwaway schedule for the plugin tests."""

    @dataclasses.dataclass
    class Params:
        T: int = param(10, "steps")
        beta_max: float = param(0.02, "beta_T")

    def compute_beta(self):
        t = torch.arange(1, self.params.T + 1, dtype=torch.float64)
        return self.params.beta_max * (t / self.params.T).sqrt()


def plugin_module(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(module, hook_name, hookimpl(fn))
    return module


def test_every_kind_has_a_hook_with_a_docstring():
    from coldlab import hookspecs

    for kind, hook_name in KINDS.items():
        spec = getattr(hookspecs, hook_name)
        assert spec.__doc__ and "register" in hook_name, kind


def test_a_throwaway_plugin_adds_a_component_that_building_uses():
    plugin = plugin_module("sqrt_plugin", register_schedules=lambda register: register("sqrt", SquareRootSchedule))
    host = PluginHost([plugin], entry_points=False)
    assert "sqrt" in host.registry.names("schedule")
    deg = host.registry.build("degradation", {"name": "gaussian", "schedule": {"name": "sqrt", "T": 4, "beta_max": 0.5}})
    assert deg.T == 4 and deg.schedule.beta[4].item() == pytest.approx(0.5)
    info = next(p for p in host.registry.plugins if p.name == "sqrt_plugin")
    assert info.components == {"schedule": ["sqrt"]} and info.error is None


def test_a_plugin_that_raises_is_reported_and_skipped_whole():
    def broken(register):
        register("half-done", SquareRootSchedule)
        raise RuntimeError("boom")

    good = plugin_module("good_plugin", register_schedules=lambda register: register("sqrt", SquareRootSchedule))
    bad = plugin_module("bad_plugin", register_schedules=broken)
    with pytest.warns(PluginLoadWarning, match="bad_plugin.*boom"):
        host = PluginHost([bad, good], entry_points=False)
    names = host.registry.names("schedule")
    assert "sqrt" in names and "half-done" not in names and "linear" in names
    info = next(p for p in host.registry.plugins if p.name == "bad_plugin")
    assert "RuntimeError: boom" in info.error and info.components == {}


def test_duplicate_names_are_reported_and_skipped():
    dup = plugin_module("dup_plugin", register_schedules=lambda register: register("linear", SquareRootSchedule))
    with pytest.warns(PluginLoadWarning, match="already registered by plugin 'coldlab.default_plugins.schedules'"):
        host = PluginHost([dup], entry_points=False)
    assert host.registry.get("schedule", "linear").plugin == "coldlab.default_plugins.schedules"
    twice = plugin_module("twice_plugin", register_schedules=lambda r: (r("a", SquareRootSchedule), r("a", SquareRootSchedule)))
    with pytest.warns(PluginLoadWarning, match="twice"):
        PluginHost([twice], entry_points=False)


def test_components_without_params_and_unknown_hooks_are_rejected():
    no_params = plugin_module("np_plugin", register_schedules=lambda register: register("bare", object))
    with pytest.warns(PluginLoadWarning, match="no Params dataclass"):
        host = PluginHost([no_params], entry_points=False)
    assert "bare" not in host.registry.names("schedule")
    unknown = plugin_module("unknown_hook_plugin", register_widgets=lambda register: None)
    with pytest.warns(PluginLoadWarning, match="unknown_hook_plugin"):
        host = PluginHost([unknown], entry_points=False)
    assert next(p for p in host.registry.plugins if p.name == "unknown_hook_plugin").error


@pytest.fixture
def fake_distributions(tmp_path, monkeypatch):
    """Two installed-looking distributions with 'coldlab' entry points: one good, one that fails to import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "coldlab_sqrt.py").write_text(
        "import dataclasses, torch\n"
        "from coldlab import Schedule, hookimpl, param\n"
        "class Sqrt(Schedule):\n"
        "    @dataclasses.dataclass\n"
        "    class Params:\n"
        "        T: int = param(10, 'steps')\n"
        "    def compute_beta(self):\n"
        "        return 0.01 * torch.arange(1, self.params.T + 1, dtype=torch.float64).sqrt()\n"
        "@hookimpl\n"
        "def register_schedules(register):\n"
        "    register('sqrt', Sqrt)\n"
    )
    (site / "coldlab_broken.py").write_text("raise ImportError('missing dependency xyz')\n")
    for dist, module in (("coldlab-sqrt", "coldlab_sqrt"), ("coldlab-broken", "coldlab_broken")):
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        (info / "entry_points.txt").write_text(f"[coldlab]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    reset()


def test_entry_point_plugins_load_and_broken_ones_are_reported(fake_distributions, monkeypatch):
    monkeypatch.delenv("COLDLAB_LOAD_PLUGINS", raising=False)
    with pytest.warns(PluginLoadWarning, match="coldlab-broken.*missing dependency xyz"):
        host = PluginHost()
    assert "sqrt" in host.registry.names("schedule")
    infos = {p.name: p for p in host.registry.plugins}
    assert infos["coldlab_sqrt"].package == "coldlab-sqrt" and infos["coldlab_sqrt"].version == "1.2.3"
    assert "import failed" in infos["coldlab_broken"].error


def test_coldlab_load_plugins_restricts_third_party_loading(fake_distributions, monkeypatch):
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "coldlab-sqrt")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginLoadWarning)  # the broken one is not even tried
        host = PluginHost()
    assert "sqrt" in host.registry.names("schedule")
    monkeypatch.setenv("COLDLAB_LOAD_PLUGINS", "")
    host = PluginHost()
    assert "sqrt" not in host.registry.names("schedule") and "linear" in host.registry.names("schedule")
    assert {p.package for p in host.registry.plugins} == {"coldlab"}


def test_cli_plugins_json_lists_components_and_errors(fake_distributions):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_distributions), *sys.path]),
           "COLDLAB_LOAD_PLUGINS": "coldlab-sqrt,coldlab-broken"}  # not the packages of plugins/, if installed
    out = subprocess.run([sys.executable, "-m", "coldlab", "plugins", "--json"], capture_output=True, text=True, env=env, check=True)
    data = json.loads(out.stdout)
    assert set(data["components"]) == set(KINDS)
    assert data["components"]["schedule"] == ["constant", "cosine", "cosine-plain", "inverse-linear", "linear", "sqrt"]
    assert data["components"]["sampler"] == ["cold-improved", "cold-naive", "ddim", "ddpm", "direct"]
    broken = next(p for p in data["plugins"] if p["package"] == "coldlab-broken")
    assert "missing dependency xyz" in broken["error"]
    table = subprocess.run([sys.executable, "-m", "coldlab", "plugins"], capture_output=True, text=True, env=env, check=True)
    assert "coldlab-sqrt" in table.stdout and "1.2.3" in table.stdout and "failed to load" in table.stdout


def test_public_api_is_what_plugins_need():
    for name in ("hookimpl", "param", "Schedule", "Degradation", "Prior", "Sampler", "Dataset", "Network", "ColdlabError"):
        assert hasattr(coldlab, name)
    assert coldlab.hookimpl.project_name == "coldlab"


def test_the_core_imports_without_textual():
    code = "import sys; sys.modules['textual'] = None; import coldlab, coldlab.cli, coldlab.plugins; coldlab.get_registry(); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cli_errors_are_one_line_without_traceback():
    out = subprocess.run([sys.executable, "-m", "coldlab"], capture_output=True, text=True)
    assert out.returncode == 2 and "plugins" in out.stdout
