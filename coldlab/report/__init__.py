"""``coldlab export``: comparison tables, figures and a self-contained HTML report from the store.

The report reads the store read-only. Figures from the stored numbers (curves, metric histories,
class histograms, K-S curves, sample grids) are drawn as they are; figures of the model (degradation
strips, reconstructions, trajectories, the prior's histogram) are drawn from the tensors each run stored
after its last epoch, or, for a run stored before those existed, computed from its newest saved weights
on the CPU with the run's evaluation seed.

``export`` is imported on first use: reading runs (``collect``, the dashboard's compare screen) needs
neither matplotlib nor torch.
"""

from typing import Any

from coldlab.report.collect import ExportData, RunRecord, collect

__all__ = ["ExportData", "RunRecord", "collect", "export"]


def __getattr__(name: str) -> Any:
    if name == "export":
        from coldlab.report.export import export

        return export
    raise AttributeError(name)
