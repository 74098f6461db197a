"""How numbers, durations and ETAs are written for people: one set for the CLI, the dashboard and
the report."""

from __future__ import annotations

import hashlib
import re
from typing import Any


def format_number(x: float | None) -> str:
    """A metric value for a table cell: 4 significant digits, scientific when very large or small."""
    if x is None:
        return ""
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3e}"


def format_eta(seconds: float | None) -> str:
    """``12m05s`` / ``2h03m`` (empty when unknown)."""
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def format_duration(seconds: float | None) -> str:
    """A run's wall time: ``8.4 s``, ``3m12s``, ``2h03m`` (empty when unknown)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    return format_eta(seconds)


def describe_value(value: float | None, detail: dict[str, Any]) -> str:
    """A metric value as shown to people: the number, or why there is none."""
    if detail.get("unavailable"):
        return f"unavailable: {detail['unavailable']}"
    if value is None:
        return "none" + (" (p-value never above alpha: z_t never looks Gaussian)" if "first_t" in detail else "")
    return f"{value:.6g}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_safe(text: str) -> str:
    """A user string (a study or run name) as part of a file name: kept as it is when it only holds
    letters, digits, ``.``, ``_`` and ``-``; else those runs replaced by ``_`` and a short hash of
    the original added, so two names never share a file."""
    safe = _UNSAFE.sub("_", text).strip("._")[:80] or "_"
    if safe != text:
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return safe
