"""Dotted keys into nested tables (``degradation.schedule.max_beta``): flattening a spec for ``diff`` and
``ls --where config.KEY``, and setting one value for a sweep."""

from __future__ import annotations

from typing import Any


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``. Lists are values; an empty table
    below the top is kept as ``{}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        if not value and prefix:
            out[prefix] = {}
        return out
    return {prefix: value}


def lookup(table: dict[str, Any], key: str) -> tuple[bool, Any]:
    """(found, value) of a dotted key in nested tables."""
    node: Any = table
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def assign(table: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``table`` with the dotted ``key`` set to ``value``. A component given by its name on the
    way (``sampler = "ddim"``) becomes a table (``{name = "ddim"}``) so its parameters can be set; a missing
    table on the way is created. Raises KeyError naming the part that is neither a table nor a name."""
    parts = key.split(".")
    out = dict(table)
    node = out
    for i, part in enumerate(parts[:-1]):
        inner = node.get(part, {})
        if isinstance(inner, str):
            inner = {"name": inner}
        if not isinstance(inner, dict):
            raise KeyError(".".join(parts[: i + 1]))
        inner = dict(inner)
        node[part] = inner
        node = inner
    node[parts[-1]] = value
    return out
