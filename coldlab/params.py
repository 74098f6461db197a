"""Component parameters declared as data, and their validation.

Every component class carries a ``Params`` dataclass: typed fields with defaults,
each documented through :func:`param`. A field whose value is itself a component
(a degradation's schedule, say) is declared with ``param(..., kind="schedule")``;
the host builds it from its table before the component is constructed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, get_args, get_origin

from coldlab.errors import ColdlabError

_MISSING = dataclasses.MISSING
INT_MAX = 2**63 - 1  # SQLite's (and torch's) largest integer: any int parameter must fit
SEED_MAX = 2**63 - 16  # seeds: seed + a few offsets must still fit


def param(
    default: Any = _MISSING,
    doc: str = "",
    *,
    kind: str | None = None,
    min: float | None = None,
    max: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    smoke: float | None = None,
) -> Any:
    """Declare one documented parameter of a component.

    ``default`` may be a list or dict (copied per instance). ``kind`` marks a nested
    component of that kind, given in TOML as a name or a ``{name = ..., ...}`` table.
    ``min``/``max`` (inclusive) and ``gt``/``lt`` (exclusive) bound a number (each element of a
    list of numbers); a value outside is a located error naming the key and the range.
    Every integer must also fit in 64 bits.

    ``smoke``: the parameter's cap at the smoke budget (``coldlab run --smoke``): a value above it, or
    one meaning "all" (None or 0), becomes ``smoke`` (see :func:`smoke_capped`). Declare it on every
    parameter that sets how much work a component does (images, samples, steps, epochs).
    """
    metadata: dict[str, Any] = {"doc": doc}
    if smoke is not None:
        metadata["smoke"] = smoke
    if kind is not None:
        metadata["kind"] = kind
    bounds = {k: v for k, v in (("min", min), ("max", max), ("gt", gt), ("lt", lt)) if v is not None}
    if bounds:
        metadata["bounds"] = bounds
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: _copy(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def smoke_capped(params_cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a resolved table of ``params_cls``) at the smoke budget: each parameter declared with
    ``smoke=N`` becomes ``min(value, N)``, or N where the value is None or 0 ("all")."""
    out = dict(values)
    for f in dataclasses.fields(params_cls):
        cap = f.metadata.get("smoke")
        if cap is None or f.name not in out:
            continue
        value = out[f.name]
        out[f.name] = cap if value is None or value == 0 else min(value, cap)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclasses.dataclass
class NoParams:
    """A component without parameters."""


def range_text(bounds: dict[str, float]) -> str:
    """``at least 1``, ``in [0, 1)``, ``above 0`` ... for errors and documentation."""
    lo = ("[", bounds["min"]) if "min" in bounds else ("(", bounds["gt"]) if "gt" in bounds else None
    hi = ("]", bounds["max"]) if "max" in bounds else (")", bounds["lt"]) if "lt" in bounds else None
    if lo and hi:
        return f"in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f"at least {lo[1]:g}" if lo[0] == "[" else f"above {lo[1]:g}"
    if hi:
        return f"at most {hi[1]:g}" if hi[0] == "]" else f"below {hi[1]:g}"
    return ""


def out_of_range(value: Any, bounds: dict[str, float]) -> bool:
    """Whether a number (or any number in a list) breaks ``bounds`` (NaN breaks any bound)."""
    if isinstance(value, (list, tuple)):
        return any(out_of_range(v, bounds) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not (
        ("min" not in bounds or value >= bounds["min"])
        and ("max" not in bounds or value <= bounds["max"])
        and ("gt" not in bounds or value > bounds["gt"])
        and ("lt" not in bounds or value < bounds["lt"])
    )


def too_large(value: Any) -> bool:
    """An integer (anywhere in nested lists and tables) that does not fit in 64 bits."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -INT_MAX - 1 <= value <= INT_MAX
    if isinstance(value, (list, tuple)):
        return any(too_large(v) for v in value)
    if isinstance(value, dict):
        return any(too_large(v) for v in value.values())
    return False


def describe(params_cls: type) -> list[dict[str, Any]]:
    """Rows (name, type, default, doc, kind) for documentation and ``coldlab plugins``."""
    hints = typing.get_type_hints(params_cls)
    rows = []
    for f in dataclasses.fields(params_cls):
        if f.default is not _MISSING:
            default = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append(
            {
                "name": f.name,
                "type": type_name(hints[f.name]),
                "default": default,
                "doc": f.metadata.get("doc", ""),
                "kind": f.metadata.get("kind"),
                "range": range_text(f.metadata.get("bounds", {})),
            }
        )
    return rows


def type_name(annotation: Any) -> str:
    """A readable name for a type annotation: ``int``, ``list[float]``, ``one of 'a', 'b'``."""
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in get_args(annotation))
    if origin in (list, tuple):
        args = get_args(annotation)
        inner = type_name(args[0]) if args else "any"
        return f"list of {inner}"
    if origin is dict:
        return "table"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def _matches(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if annotation is type(None):
        return value is None
    if origin is Literal:
        return value in get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(annotation))
    if origin in (list, tuple):
        args = get_args(annotation)
        if not isinstance(value, (list, tuple)):
            return False
        inner = args[0] if args else Any
        return all(_matches(v, inner) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return isinstance(value, annotation)


def _coerce(value: Any, annotation: Any) -> Any:
    """Ints become floats where a float is declared; lists stay lists."""
    if annotation is float and isinstance(value, int):
        return float(value)
    origin = get_origin(annotation)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        args = get_args(annotation)
        inner = args[0] if args else Any
        return [_coerce(v, inner) for v in value]
    if origin in (typing.Union, types.UnionType):
        for a in get_args(annotation):
            if _matches(value, a):
                return _coerce(value, a)
    return value


def suggest(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate(params_cls: type, values: dict[str, Any], *, component: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Check ``values`` against ``params_cls``.

    Returns the coerced plain values and, separately, the nested-component fields
    (field name -> kind) that the caller must build. Raises :class:`ColdlabError`
    naming the key for unknown keys and wrong types.
    """
    hints = typing.get_type_hints(params_cls)
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    nested: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            valid = ", ".join(sorted(fields)) or "none"
            raise ColdlabError(
                f"unknown parameter {key!r} for {component}{suggest(key, list(fields))}",
                hint=f"valid parameters: {valid}",
                where=(key,),
            )
        f = fields[key]
        if "kind" in f.metadata:
            nested[key] = f.metadata["kind"]
            clean[key] = value
            continue
        annotation = hints[key]
        if too_large(value):
            raise ColdlabError(
                f"{component} parameter {key!r} is too large: integers must fit in 64 bits (at most {INT_MAX})",
                hint=f"{key}: {f.metadata.get('doc', '')}".rstrip(": "),
                where=(key,),
            )
        if not _matches(value, annotation):
            raise ColdlabError(
                f"{component} parameter {key!r} must be {type_name(annotation)}, got {value!r}",
                hint=f"{key}: {f.metadata.get('doc', '')}".rstrip(": "),
                where=(key,),
            )
        bounds = f.metadata.get("bounds")
        if bounds and out_of_range(value, bounds):
            raise ColdlabError(
                f"{component} parameter {key!r} must be {range_text(bounds)}, got {value!r}",
                hint=f"{key}: {f.metadata.get('doc', '')}".rstrip(": "),
                where=(key,),
            )
        clean[key] = _coerce(value, annotation)
    for name, f in fields.items():
        if "kind" in f.metadata:
            nested[name] = f.metadata["kind"]
        if name not in clean and f.default is _MISSING and f.default_factory is _MISSING:
            raise ColdlabError(f"{component} needs parameter {name!r}", hint=f.metadata.get("doc"), where=(name,))
    return clean, nested
