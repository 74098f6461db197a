"""docs/writing-a-plugin.md is true: its example package passes its contract tests and its
experiment validates."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / "docs" / "writing-a-plugin.md").read_text()


def block(first_line: str) -> str:
    """The fenced code block of the guide whose first line is ``first_line``."""
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", GUIDE, re.S):
        if body.startswith(first_line + "\n"):
            return body
    raise AssertionError(f"no code block starting with {first_line!r} in the guide")


@pytest.fixture
def checker(tmp_path):
    package = tmp_path / "src" / "coldlab_checker"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(block("# src/coldlab_checker/__init__.py"))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_checker.py").write_text(block("# tests/test_checker.py"))
    (tmp_path / "pyproject.toml").write_text(block("[build-system]"))
    return tmp_path


def test_the_guides_example_plugin_passes_its_contract_tests(checker):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checker / "src"), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(checker),
                          str(checker / "tests")], capture_output=True, text=True, env=env, cwd=checker, timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"\b(\d+) passed", out.stdout) and int(re.search(r"(\d+) passed", out.stdout).group(1)) >= 7


def test_the_guides_experiment_validates_with_the_plugin(checker, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(checker / "src"))
    import coldlab_checker

    from coldlab.config import load_experiments
    from coldlab.plugins import PluginHost

    try:
        import coldlab_sigmoid
    except ImportError:
        pytest.fail("coldlab-sigmoid is not installed: pip install -e plugins/coldlab-sigmoid (the README's test command does)")
    registry = PluginHost([coldlab_checker, coldlab_sigmoid], entry_points=False).registry
    toml = block("# experiments.toml")
    (tmp_path / "exp.toml").write_text(toml)
    [run] = load_experiments(tmp_path / "exp.toml", registry=registry)
    spec = run.to_dict()
    assert spec["degradation"] == {"name": "checker", "squares": 4, "seed": 0}
    deg = registry.build("degradation", spec["degradation"])
    assert deg.T == 16
    (tmp_path / "bad.toml").write_text(toml.replace("squares = 4", "squares = 0"))
    from coldlab import ColdlabError

    with pytest.raises(ColdlabError, match="parameter 'squares' must be at least 1, got 0") as err:
        load_experiments(tmp_path / "bad.toml", registry=registry)
    assert "checker-cold" in str(err.value) and "bad.toml" in str(err.value)
