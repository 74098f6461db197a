"""Seeded randomness: where a generator's numbers live."""

from __future__ import annotations

import torch


def generator_device(generator: torch.Generator | None, default: torch.device | str = "cpu") -> torch.device:
    """The device random numbers drawn with ``generator`` must be made on: the generator's own, or
    ``default`` without one (torch's global generator; the CPU unless said otherwise). Draw there, then move
    the result, so a seeded draw is the same whatever device the data is on."""
    return generator.device if generator is not None else torch.device(default)
