"""A component's name in messages and cache keys."""

from __future__ import annotations

from typing import Any


def name_of(component: Any) -> str:
    """The name a component was registered and built under (``component_name``, declared by every base class
    and filled in by the registry that builds it), or its class name for one constructed directly."""
    return str(getattr(component, "component_name", "") or type(component).__name__)
