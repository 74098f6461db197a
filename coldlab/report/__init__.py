"""``coldlab export``: comparison tables, figures and a self-contained HTML report from the store.

The report reads the store read-only. Figures from the stored numbers (curves, metric histories,
class histograms, K-S curves, sample grids) are drawn as they are; figures that need the model
(degradation strips, reconstructions, trajectories, the prior's histogram) load the run's newest
saved weights and compute them at export time, on the CPU, with the run's evaluation seed — the
report says so under each of them.
"""

from coldlab.report.collect import ExportData, RunRecord, collect
from coldlab.report.export import export

__all__ = ["ExportData", "RunRecord", "collect", "export"]
