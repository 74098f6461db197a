"""The engine's seams (issue 15): contracts live with the components, a run is assembled once, run
kinds and component capabilities are dispatched through tables, not tested by name."""

from __future__ import annotations

import ast
from pathlib import Path

import coldlab
from coldlab.components.metric import EvalContext

ROOT = Path(coldlab.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_components_never_import_the_engine():
    offenders = {p.name: sorted(m for m in _imports(p) if m.startswith("coldlab.engine"))
                 for p in (ROOT / "components").glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_eval_context_is_public_and_the_engine_implements_it(tmp_path):
    import torch

    from coldlab.engine.evaluation import RunEvaluation
    from coldlab.plugins import get_registry

    assert coldlab.EvalContext is EvalContext
    registry = get_registry()
    deg = registry.build("degradation", {"name": "gaussian", "schedule": {"name": "linear", "T": 10}})
    net = registry.build("network", {"name": "cnn", "channels": [4]}, shape=(1, 8, 8), num_classes=0)
    ctx = RunEvaluation(registry=registry, dataset_spec={"name": "synthetic"}, net=net, degradation=deg,
                        sampler=registry.build("sampler", "ddim"), prior=registry.build("prior", "gaussian"), shape=(1, 8, 8),
                        num_classes=0, value_range=(-0.5, 0.5), device="cpu", samples=4, batch_size=2, seed=0,
                        cache_dir=tmp_path)
    assert isinstance(ctx, EvalContext)
    assert ctx.requested_labels() is None
    assert torch.equal(ctx.to_unit(torch.tensor([-0.5, 0.0, 0.5, 9.0])), torch.tensor([0.0, 0.5, 1.0, 1.0]))
