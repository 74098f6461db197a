"""How evaluation feeds the network: samples in lockstep, the network called on chunks sized to the device.

An evaluation samples up to :data:`GROUP` samples together, step by step: the start points and every
random draw of a step are made for the whole group at once, and only the network's forward pass is cut
into chunks (:class:`ChunkedNetwork`). So the numbers an evaluation gives do not depend on the chunk
size (``eval.batch_size``), up to floating-point rounding in the network, and the chunk can be sized to
the device's free memory (``eval.batch_size = "auto"``, :func:`auto_chunk`) without two machines
disagreeing about the same seed.

The sampling network is compiled when ``train.compile`` is set (:func:`sampling_network`), and with
``eval.cuda_graphs`` on a CUDA device its fixed-shape forward passes are replayed as CUDA graphs
(``torch.compile(mode="reduce-overhead")``); each chunk's output is then copied out of the graph's
memory before the next replay overwrites it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

#: samples sampled together (a constant, not a machine's property: results never depend on the machine)
GROUP = 10_000
#: the chunk on devices whose free memory is not measured (CPU, MPS): large batches gain nothing there
HOST_CHUNK = 250
#: the largest chunk "auto" picks on a GPU, and the share of the free memory it may fill
MAX_CHUNK, MEMORY_SHARE = 8192, 0.5
PROBE = 16


class ChunkedNetwork(nn.Module):
    """``net`` called on at most ``size`` samples at a time; ``after_call()`` runs after each call (progress,
    and the point where a stop request reaches an evaluation)."""

    def __init__(self, net: nn.Module, size: int, after_call: Callable[[], None] | None = None, *, graphs: bool = False) -> None:
        super().__init__()
        self.net, self.size, self.graphs = net, max(1, int(size)), graphs
        self.after_call = after_call or (lambda: None)

    def __getattr__(self, name: str) -> Any:
        """What a sampler reads of the network (``params``, ``null_label``) comes from the wrapped one."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["net"], name)

    def forward(self, z: torch.Tensor, t_frac: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        outs = []
        for i in range(0, z.shape[0], self.size):
            sl = slice(i, i + self.size)
            if self.graphs:  # a new replay: the previous outputs were copied out already
                torch.compiler.cudagraph_mark_step_begin()  # type: ignore[no-untyped-call]
            out = cast("torch.Tensor", self.net(z[sl], t_frac[sl], None if y is None else y[sl]))
            outs.append(out.clone() if self.graphs else out)
            self.after_call()
        return outs[0] if len(outs) == 1 else torch.cat(outs)


def eager(net: nn.Module) -> nn.Module:
    """The module behind a compiled one (``torch.compile`` keeps it as ``_orig_mod``)."""
    return cast(nn.Module, getattr(net, "_orig_mod", net))


@torch.inference_mode()
def auto_chunk(net: nn.Module, sample_shape: tuple[int, ...], device: torch.device, *, labels: bool = False, cap: int | None = None) -> int:
    """The chunk ``eval.batch_size = "auto"`` uses: on a CUDA device as many samples as half its free memory
    holds, from the peak memory of a probe forward pass of :data:`PROBE` samples (at most :data:`MAX_CHUNK`);
    elsewhere :data:`HOST_CHUNK`. ``cap``: never more than this (the samples an evaluation needs)."""
    limit = MAX_CHUNK if cap is None else max(1, min(MAX_CHUNK, cap))
    if device.type != "cuda":
        return min(HOST_CHUNK, limit)
    net = eager(net)
    z = torch.zeros((PROBE, *sample_shape), device=device)
    t = torch.full((PROBE,), 0.5, device=device)
    null = int(getattr(net, "null_label", 0) or 0)
    y = torch.full((PROBE,), null, dtype=torch.long, device=device) if labels else None
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    net(z, t, y)
    torch.cuda.synchronize(device)
    per_sample = max((torch.cuda.max_memory_allocated(device) - base) / PROBE, 1.0)
    free, _ = torch.cuda.mem_get_info(device)
    reusable = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return max(1, min(limit, int(MEMORY_SHARE * (free + reusable) / per_sample)))


def sampling_network(net: nn.Module, device: torch.device, *, compile: bool, cuda_graphs: bool) -> tuple[nn.Module, bool]:
    """The network sampling calls: ``net``, compiled with ``compile``; with ``cuda_graphs`` on CUDA compiled to
    replay CUDA graphs. Returns (network, whether it replays graphs). ``cuda_graphs`` elsewhere is ignored
    (the caller logs that it was)."""
    graphs = cuda_graphs and device.type == "cuda"
    if graphs:
        return cast(nn.Module, torch.compile(net, mode="reduce-overhead")), True
    if compile:
        return cast(nn.Module, torch.compile(net)), False
    return net, False
