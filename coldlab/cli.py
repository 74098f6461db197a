"""The ``coldlab`` command line (kept thin: each command calls into the package)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, cast

from coldlab.errors import ColdlabError, PluginLoadWarning

if TYPE_CHECKING:
    from coldlab.home import Home


def _plugins(args: argparse.Namespace) -> int:
    from coldlab.plugins import get_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)  # shown in the listing instead
        registry = get_registry()
    if args.json:
        print(json.dumps(registry.as_json(), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="coldlab plugins")
    for col in ("plugin", "package", "version", "components", "error"):
        table.add_column(col, overflow="fold")
    for info in registry.plugins:
        parts = [f"{kind}: {', '.join(names)}" for kind, names in info.components.items()]
        table.add_row(
            *(escape(str(v)) for v in (info.name, info.package, info.version, "\n".join(parts), info.error or "")),
            style="red" if info.error else None,
        )
    console = Console()
    console.print(table)
    failed = [p for p in registry.plugins if p.error]
    if failed:
        console.print(f"[red]{len(failed)} plugin(s) failed to load and were skipped.[/red]")
    return 0


def _home(args: argparse.Namespace) -> Home:
    from coldlab.home import Home

    store = getattr(args, "store", None)
    if args.home:
        return Home(args.home, store or os.environ.get("COLDLAB_STORE") or None)
    return Home.default(store)


def _run(args: argparse.Namespace) -> int:
    if args.dry_run:
        from rich.console import Console

        from coldlab.engine.launcher import default_devices
        from coldlab.engine.plan import plan_file

        return plan_file(
            args.file,
            _home(args),
            only=args.only,
            smoke_run=args.smoke,
            epochs=args.epochs,
            devices=default_devices(args.device, args.workers),
            resume=args.resume,
            calibrate_runs=not args.no_calibrate,
            console=Console(),
            as_json=args.json,
        )
    if args.no_calibrate or args.json:
        raise ColdlabError("--no-calibrate and --json go with --dry-run", hint="coldlab run FILE --dry-run [--no-calibrate] [--json]")
    from coldlab.engine.launcher import run_file

    return run_file(
        args.file,
        home=_home(args),
        only=args.only,
        smoke_run=args.smoke,
        epochs=args.epochs,
        workers=args.workers,
        device=args.device,
        resume=args.resume,
        executor=args.executor,
        executor_options=args.executor_option,
        max_attempts=args.max_attempts,
        queue_only=args.queue_only,
    )


def _worker(args: argparse.Namespace) -> int:
    import torch

    from coldlab.engine.worker import run_worker

    device = args.device if args.device not in (None, "auto") else ("cuda" if torch.cuda.is_available() else "cpu")
    counts = run_worker(_home(args), device, requeue_on_term=args.requeue_on_term)
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "queue empty", file=sys.stderr)
    if "requeue" in counts:  # preempted: its run is back in the queue; 75 (EX_TEMPFAIL) says "start me again"
        return 75
    return 0 if set(counts) <= {"finished"} else 1


def _ls(args: argparse.Namespace) -> int:
    from coldlab.runs_view import print_ls

    sort = ("-" + args.sort.lstrip("-") if args.desc else args.sort) if args.sort else None
    if args.desc and not args.sort:
        raise ColdlabError("--desc needs --sort KEY", hint="e.g. coldlab ls --sort metric.fid --desc")
    return print_ls(_home(args), args.json, args.where, sort=sort, limit=args.limit, columns=args.columns, archived=args.all)


def _tag(args: argparse.Namespace) -> int:
    from coldlab.workflow import tag_command

    return tag_command(_home(args), args.items)


def _note(args: argparse.Namespace) -> int:
    from coldlab.workflow import note_command

    return note_command(_home(args), args.run, args.text)


def _archive(args: argparse.Namespace) -> int:
    from coldlab.workflow import archive_command

    return archive_command(_home(args), args.runs, args.undo)


def _rm(args: argparse.Namespace) -> int:
    from coldlab.workflow import remove_command

    return remove_command(_home(args), args.runs)


def _diff(args: argparse.Namespace) -> int:
    from coldlab.diff import print_diff

    return print_diff(_home(args), args.a, args.b, args.json)


def _show(args: argparse.Namespace) -> int:
    from coldlab.runs_view import print_show

    return print_show(_home(args), args.run, args.json)


def _eval(args: argparse.Namespace) -> int:
    import torch

    from coldlab.engine.reevaluate import evaluate_run, print_evaluation
    from coldlab.engine.session import data_session

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sample_class = None if args.sample_class is None else ("all" if args.sample_class == "all" else _class_index(args.sample_class))
    with data_session():
        out = evaluate_run(
            _home(args),
            args.run,
            epoch=args.checkpoint,
            metrics=args.metrics,
            sampler=args.sampler,
            steps=args.steps,
            samples=args.samples,
            device=device,
            guidance=args.guidance,
            sample_class=sample_class,
        )
    print_evaluation(out, args.json)
    return 0


def _class_index(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ColdlabError(f"--class must be 'all' or a class index, got {text!r}", where=("--class",)) from None


def _export(args: argparse.Namespace) -> int:
    from coldlab.engine.session import data_session
    from coldlab.report.export import export, parse_formats

    formats = parse_formats(args.format)
    run_ids = args.runs
    if args.where:
        from coldlab.runs_view import find_runs

        found = [r["id"] for r in find_runs(_home(args), args.where, archived=args.all)]
        if not found:
            raise ColdlabError("no run matches " + " and ".join(repr(w) for w in args.where), hint="try the same --where with coldlab ls")
        run_ids = sorted(set(found) & set(run_ids)) if run_ids else found
        if not run_ids:
            raise ColdlabError("no run given with --runs matches --where", hint="try the same --where with coldlab ls")
    with data_session():  # the model figures' datasets, dropped when the export ends
        manifest = export(
            _home(args),
            Path(args.out),
            studies=args.study,
            run_ids=run_ids,
            formats=formats,
            archived=args.all,
            model_figures=not args.no_model_figures,
            warn=lambda m: print(f"coldlab: warning: {m}", file=sys.stderr),
        )
    n_fig = sum(len(s["figures"]) for s in manifest["studies"])
    written = "report.html, " if "report" in manifest else ""
    print(
        f"exported {len(manifest['studies'])} studies to {args.out}: {written}{n_fig} figures, tables ({', '.join(formats)}), manifest.json",
        file=sys.stderr,
    )
    return 0


def _tui(args: argparse.Namespace) -> int:
    try:
        from coldlab.tui.app import run
    except ImportError as err:
        raise ColdlabError(f"the dashboard needs Textual: {err}", hint="pip install textual") from None
    return run(_home(args), archived=args.all)


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit 2), with the way to the command's help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"coldlab: error: {message} (hint: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from coldlab import __version__

    parser = _Parser(prog="coldlab", description="Experiment manager for diffusion-model research.")
    parser.add_argument("--version", action="version", version=f"coldlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("plugins", help="list loaded plugins, their components and load errors")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_plugins)

    home_help = "folder of coldlab.db and the run folders (default: $COLDLAB_HOME or ./coldlab-runs)"
    store_help = "the store: a SQLite file or sqlite:///PATH, or postgresql://USER@HOST/DB (default: $COLDLAB_STORE, else HOME/coldlab.db)"
    p = sub.add_parser("run", help="validate a TOML file, queue its experiments and run them")
    p.add_argument("file")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these experiments or studies")
    p.add_argument("--smoke", action="store_true", help="tiny budget: check the study end to end")
    p.add_argument("--epochs", type=_positive, help="override every experiment's epochs")
    p.add_argument("--workers", type=_positive, help="worker processes (default: one per GPU, else 1)")
    p.add_argument("--device", help="device for every worker (cpu, cuda, cuda:1, ...)")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.add_argument("--resume", action="store_true", help="continue interrupted, failed or cancelled runs")
    p.add_argument("--executor", metavar="NAME", help="executor plugin that starts the workers (default: the file's [executor] table, else local)")
    p.add_argument(
        "--executor-option", action="append", metavar="KEY=VALUE", help="an executor parameter (repeat), e.g. partition=gpu; overrides [executor]"
    )
    p.add_argument("--max-attempts", type=_positive, default=3, metavar="N", help="a new run whose worker process dies N times fails (default: 3)")
    p.add_argument(
        "--queue-only", action="store_true", help="queue the runs and exit: workers started elsewhere (coldlab worker --store URL) take them"
    )
    p.add_argument("--dry-run", action="store_true", help="queue nothing: list the runs, their steps and sampling work, and an estimated time")
    p.add_argument("--no-calibrate", action="store_true", help="with --dry-run: count steps only, no timing on the device")
    p.add_argument("--json", action="store_true", help="with --dry-run: one JSON object")
    p.set_defaults(func=_run)

    p = sub.add_parser("worker", help="claim and run queued runs until the queue is empty")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ..., or auto (default: cuda if available, else cpu)")
    p.add_argument("--requeue-on-term", action="store_true", help="SIGTERM checkpoints the run and queues it again, as SIGUSR2 does (batch jobs)")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_worker)

    p = sub.add_parser("eval", help="evaluate a run again (other checkpoint, metrics, sampler or steps)")
    p.add_argument("run", type=int)
    p.add_argument("--checkpoint", type=int, metavar="EPOCH", help="weights of this epoch (default: the newest)")
    p.add_argument("--metrics", nargs="+", metavar="NAME", help="metrics (default: the run's eval.metrics)")
    p.add_argument("--sampler", metavar="NAME", help="sample with this sampler instead of the run's")
    p.add_argument("--steps", type=_positive, metavar="S", help="number of sampling steps (samplers with a steps parameter)")
    p.add_argument("--samples", type=_positive, metavar="N", help="generated samples (default: the run's eval.samples)")
    p.add_argument("--guidance", type=float, metavar="W", help="classifier-free guidance scale (conditional networks)")
    p.add_argument("--class", dest="sample_class", metavar="C", help="with --guidance: a class index, or all (balanced)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_eval)

    p = sub.add_parser("export", help="comparison tables, figures and an HTML report of the store")
    p.add_argument("--out", required=True, help="folder to write into (created)")
    p.add_argument("--study", nargs="+", metavar="NAME", help="only these studies")
    p.add_argument("--runs", nargs="+", type=int, metavar="ID", help="only these runs (with --study: either)")
    p.add_argument("--format", default="md,csv,latex,html,json", help="comma-separated: md,csv,latex,html,json (default: all)")
    p.add_argument(
        "--no-model-figures",
        action="store_true",
        help="skip figures computed from saved weights (degradation strips, reconstructions, trajectories, prior)",
    )
    p.add_argument("--where", action="append", metavar="EXPR", help="only runs where EXPR holds (as for coldlab ls; repeat: all must hold)")
    p.add_argument("--all", action="store_true", help="include archived runs")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_export)

    p = sub.add_parser("tui", help="the dashboard: queue and watch runs live")
    p.add_argument("--all", action="store_true", help="show archived runs too")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_tui)

    p = sub.add_parser("ls", help="list runs (search with --where)")
    p.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="FIELD OP VALUE, e.g. 'metric.fid < 40', 'config.train.lr = 2e-4', 'tag = baseline' (repeat: all must hold)",
    )
    p.add_argument("--sort", metavar="KEY", help="sort by a field (metric.fid, config.train.lr, created, ...); --sort=-KEY or --desc: descending")
    p.add_argument("--desc", action="store_true", help="sort descending")
    p.add_argument("--limit", type=_positive, metavar="N", help="show at most N runs")
    p.add_argument("--columns", nargs="+", metavar="COL", help="columns: id study name status epoch time 'train loss' metrics tags note, or fields")
    p.add_argument("--all", action="store_true", help="include archived runs")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_ls)

    p = sub.add_parser("tag", help="add (+TAG) and remove (-TAG) tags of runs: coldlab tag 3 4 +baseline -draft")
    p.add_argument("items", nargs="+", metavar="RUN|+TAG|-TAG")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_tag)

    p = sub.add_parser("note", help='set a run\'s note: coldlab note 3 "diverged after epoch 20" ("" removes it)')
    p.add_argument("run", type=int)
    p.add_argument("text")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_note)

    p = sub.add_parser("archive", help="hide runs from ls, export and the dashboard (--undo: show them again)")
    p.add_argument("runs", nargs="+", type=int, metavar="RUN")
    p.add_argument("--undo", action="store_true", help="show the runs again")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_archive)

    p = sub.add_parser("rm", help="delete runs and their folders (not a running run)")
    p.add_argument("runs", nargs="+", type=int, metavar="RUN")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.set_defaults(func=_rm)

    p = sub.add_parser("diff", help="config keys, final metrics and provenance that differ between two runs")
    p.add_argument("a", type=int, metavar="RUN")
    p.add_argument("b", type=int, metavar="RUN")
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_diff)

    p = sub.add_parser("show", help="one run: config, status, metrics, artifacts")
    p.add_argument("run", type=int)
    p.add_argument("--home", help=home_help)
    p.add_argument("--store", metavar="URL", help=store_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code. Errors are one line on stderr (``--debug``: tracebacks);
    Ctrl-C at any moment and a closed pipe (``coldlab plugins --json | head``) end quietly."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra and getattr(args, "func", None) is _tag:  # -TAG looks like an option to argparse
            args.items += extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        if args.func is not _plugins:  # a plugin that failed to load is reported by `coldlab plugins`, once
            warnings.simplefilter("ignore", PluginLoadWarning)
        return cast("int", args.func(args))
    except ColdlabError as err:
        if debug:
            raise
        print(f"coldlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("coldlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away: say nothing more
        try:  # as the Python docs advise: point stdout at devnull so the flush at exit does not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except Exception as err:  # a bug: still one line, with the way to the traceback
        if debug:
            raise
        print(f"coldlab: internal error: {type(err).__name__}: {err} (hint: rerun with --debug for the traceback, and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
