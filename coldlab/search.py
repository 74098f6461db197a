"""Search expressions for ``coldlab ls --where``, ``coldlab export --where`` and ``coldlab.open(HOME).runs(where=...)``.

An expression is ``FIELD OP VALUE``, parsed (never evaluated)::

    config.degradation.schedule.max_beta >= 0.1     a dotted key of the run's stored spec
    metric.classifier-fid < 40                      a metric's latest value
    param.train.lr = 0.0001                         a value a sweep set
    tag = baseline        status != failed          study ~ "000*"
    experiment = ddpm     name ~ "*seed1"           id > 10        seed = 0        note ~ "*diverged*"

``OP`` is one of ``= != < <= > >= ~`` (``~``: a glob, ``*`` and ``?``; ``==`` is read as ``=``). ``VALUE``
is a number, ``true``/``false``, or text (quotes optional; quote text that looks like a number). Numbers
compare as numbers; ``<``, ``<=``, ``>``, ``>=`` need a number. Lists and tables compare as their compact
JSON (``config.network.channels = [32,64]``). A run that lacks the field (a metric it never recorded, a
key its spec does not have) matches no condition on it. ``tag = T`` holds when the run has tag T,
``tag != T`` when it lacks it, ``tag ~ G`` when one of its tags matches the glob. Several expressions must
all hold.

Sort keys (``--sort``) are fields too (``metric.fid``, ``config.train.lr``, ``created``); ``-KEY`` sorts
descending; runs without the field come last.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from coldlab.dotted import lookup
from coldlab.errors import ColdlabError
from coldlab.params import suggest

OPS = ("<=", ">=", "!=", "==", "=", "<", ">", "~")
PLAIN = ("tag", "status", "study", "experiment", "name", "id", "seed", "note", "created", "epoch")
DOTTED = ("config", "metric", "param", "provenance")
FIELDS_HINT = "fields: config.KEY, metric.NAME, param.KEY, provenance.KEY, " + ", ".join(PLAIN)
_EXPR = re.compile(r"^\s*([A-Za-z_][\w.\-]*?)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$", re.S)


@dataclasses.dataclass(frozen=True)
class Condition:
    field: str  # one of PLAIN or DOTTED
    key: str  # the dotted key after config./metric./param. ("" for a plain field)
    op: str
    value: Any  # float, bool or str
    text: str  # the expression as given


def _value(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) or text.lower() in ("inf", "-inf", "nan") else text


def check_field(name: str, what: str, text: str) -> tuple[str, str]:
    """(field, dotted key) of ``name``; an unknown one is a one-line error naming it."""
    head, _, key = name.partition(".")
    if head in DOTTED and key:
        return head, key
    if name in PLAIN:
        return name, ""
    if head in DOTTED:
        raise ColdlabError(f"{what} {text!r}: {head!r} needs a key, e.g. {head}.NAME", hint=FIELDS_HINT)
    raise ColdlabError(f"{what} {text!r}: unknown field {name!r}{suggest(name, [*PLAIN, *DOTTED])}", hint=FIELDS_HINT)


def parse(text: str) -> Condition:
    """One ``--where`` expression as a :class:`Condition`; a bad one is a one-line error naming the token."""
    match = _EXPR.match(text)
    if not match:
        bad = re.search(r"[!<>=~]+", text)
        token = bad.group(0) if bad else text.strip().split(" ")[0] if text.strip() else ""
        why = f"bad operator {token!r}" if bad else "no operator" if text.strip() else "empty expression"
        raise ColdlabError(f"--where {text!r}: {why}", hint="write FIELD OP VALUE with OP one of " + " ".join(o for o in OPS if o != "=="))
    name, op, raw = match.groups()
    op = "=" if op == "==" else op
    if raw[:1] in "=<>!~" and raw:
        raise ColdlabError(f"--where {text!r}: bad operator {op + raw[0]!r}", hint="operators: " + " ".join(o for o in OPS if o != "=="))
    if not raw:
        raise ColdlabError(f"--where {text!r}: no value after {op!r}", hint='write e.g. status = finished, or quote text: note ~ "*x*"')
    field, key = check_field(name, "--where", text)
    value = _value(raw)
    if op in ("<", "<=", ">", ">=") and not isinstance(value, float):
        raise ColdlabError(f"--where {text!r}: {op!r} needs a number, got {raw!r}", hint="compare text with = != or ~ (a glob)")
    if field == "tag" and op not in ("=", "!=", "~"):
        raise ColdlabError(f"--where {text!r}: tags take = != or ~, not {op!r}", hint="e.g. tag = baseline")
    if field == "status" and op in ("=", "!=") and not isinstance(value, bool):
        from coldlab.store.status import STATUSES

        if str(value) not in STATUSES:
            raise ColdlabError(
                f"--where {text!r}: unknown status {value!r}{suggest(str(value), list(STATUSES))}", hint="statuses: " + ", ".join(STATUSES)
            )
    return Condition(field, key, op, value, text)


def parse_all(texts: Iterable[str] | str | None) -> list[Condition]:
    if texts is None:
        return []
    return [parse(t) for t in ([texts] if isinstance(texts, str) else texts)]


def field_value(record: dict[str, Any], field: str, key: str = "") -> tuple[bool, Any]:
    """(found, value) of a field of a run record (see :func:`coldlab.store.catalog.run_record`)."""
    if field == "config":
        return lookup(record["config"], key)
    if field == "provenance":
        return lookup(record["provenance"], key)
    if field == "metric":
        value = record["metrics"].get(key)
        return value is not None, value
    if field == "param":
        return key in record["params"], record["params"].get(key)
    value = record.get(field)
    return value is not None, value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def matches(cond: Condition, record: dict[str, Any]) -> bool:
    if cond.field == "tag":
        tags = record["tags"]
        if cond.op == "~":
            return any(fnmatch.fnmatchcase(t, _text(cond.value)) for t in tags)
        return (_text(cond.value) in tags) == (cond.op == "=")
    found, value = field_value(record, cond.field, cond.key)
    if not found:
        return False
    if cond.op == "~":
        return fnmatch.fnmatchcase(_text(value), _text(cond.value))
    left, right = _number(value), _number(cond.value)
    if left is not None and right is not None:
        return {"=": left == right, "!=": left != right, "<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cond.op]
    if cond.op in ("=", "!="):
        same = _text(value) == _text(cond.value).replace(" ", "") if isinstance(value, (list, dict)) else _text(value) == _text(cond.value)
        return same == (cond.op == "=")
    return False  # an order on something that is not a number


def select(records: Sequence[dict[str, Any]], conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    """The records every condition holds for, in their order."""
    return [r for r in records if all(matches(c, r) for c in conditions)]


def sort_records(records: list[dict[str, Any]], key: str | None) -> list[dict[str, Any]]:
    """Records sorted by a field (``-FIELD``: descending); runs without it last, ties by id."""
    if not key:
        return records
    descending = key.startswith("-")
    field, sub = check_field(key.lstrip("-"), "--sort", key)

    present: list[tuple[tuple[int, Any], dict[str, Any]]] = []
    missing = []
    for record in records:
        found, value = field_value(record, field, sub)
        if field == "tag":
            found, value = bool(record["tags"]), ",".join(record["tags"])
        if not found:
            missing.append(record)
            continue
        number = _number(value)
        present.append(((0, number) if number is not None else (1, _text(value)), record))
    present.sort(key=lambda pair: pair[0], reverse=descending)  # stable: ties keep their (id) order
    return [r for _, r in present] + missing
