"""The ``coldlab`` command line (kept thin: each command calls into the package)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Sequence

from coldlab.errors import ColdlabError, PluginLoadWarning


def _plugins(args: argparse.Namespace) -> int:
    from coldlab.plugins import get_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)  # shown in the listing instead
        registry = get_registry()
    if args.json:
        print(json.dumps(registry.as_json(), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="coldlab plugins")
    for col in ("plugin", "package", "version", "components", "error"):
        table.add_column(col, overflow="fold")
    for info in registry.plugins:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in info.components.items()]
        table.add_row(info.name, info.package, info.version, "\n".join(parts), info.error or "", style="red" if info.error else None)
    console = Console()
    console.print(table)
    failed = [p for p in registry.plugins if p.error]
    if failed:
        console.print(f"[red]{len(failed)} plugin(s) failed to load and were skipped.[/red]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from coldlab import __version__

    parser = argparse.ArgumentParser(prog="coldlab", description="Experiment manager for diffusion-model research.")
    parser.add_argument("--version", action="version", version=f"coldlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("plugins", help="list loaded plugins, their components and load errors")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_plugins)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ColdlabError as err:
        if args.debug:
            raise
        print(f"coldlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coldlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
