"""Which executor starts the workers, and with what parameters: the experiments file's ``[executor]``
table (``name`` plus that executor's parameters), then ``--executor NAME`` and ``--executor-option
KEY=VALUE`` on the command line. A ``--executor`` that names another executor than the file's table
drops the table's parameters; each option then sets one parameter (its value read as a TOML value:
``gpus=2``, ``partition=gpu``, ``extra=["--qos=high"]``). The parameters are validated by the executor's
``Params`` like every component's; errors name the file or the option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from coldlab.config import read_toml
from coldlab.errors import ColdlabError


def file_executor(path: str | Path) -> dict[str, Any] | None:
    """The ``[executor]`` table of an experiments file, or None."""
    table = read_toml(Path(path)).get("executor")
    if table is None:
        return None
    where = (str(path), "executor")
    if not isinstance(table, dict):
        raise ColdlabError("'executor' must be a table", hint='write [executor] with name = "local" (or ray, slurm) and its parameters', where=where)
    if not isinstance(table.get("name"), str):
        raise ColdlabError("the [executor] table needs a name", hint='add name = "local" (or ray, slurm)', where=(*where, "name"))
    return dict(table)


def parse_option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value): the value as TOML reads it, else the plain text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ColdlabError(
            f"bad --executor-option {text!r}", hint="write KEY=VALUE, e.g. --executor-option partition=gpu", where=("--executor-option",)
        )
    from coldlab.config import tomllib  # type: ignore[attr-defined]  # tomllib, or tomli before Python 3.11

    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


def executor_spec(path: str | Path | None, name: str | None, options: list[str] | None) -> tuple[str | dict[str, Any], dict[str, tuple[str, ...]]]:
    """The executor as the registry builds it (a name or a table), and where each parameter came from
    (key -> location for error messages; ``""``: the executor's name)."""
    table = file_executor(path) if path is not None else None
    where: tuple[str, ...] = (str(path), "executor") if table is not None else ()
    if name and (table is None or table["name"] != name):
        table, where = {"name": name}, ("--executor",)
    table = dict(table or {"name": "local"})
    origins = {key: where for key in table if key != "name"}
    origins[""] = where
    for text in options or []:
        key, value = parse_option(text)
        if key == "name":
            raise ColdlabError("the executor is chosen with --executor NAME, not an option", where=("--executor-option",))
        table[key] = value
        origins[key] = ("--executor-option",)
    return (table["name"] if len(table) == 1 else table), origins
