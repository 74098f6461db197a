"""``coldlab run``: validate, enqueue, start worker processes, and show progress from the store.

Workers are separate processes (``coldlab worker``); this process only reads the store to draw
rich progress bars, so it can be closed (Ctrl-C checkpoints the runs and marks them interrupted).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from coldlab.config import load_experiments
from coldlab.engine.budget import smoke, with_epochs
from coldlab.engine.data import load_dataset
from coldlab.errors import ColdlabError
from coldlab.plugins import get_registry
from coldlab.store import connect, enqueue, get_run, mark, requeue

RESUMABLE = ("interrupted", "failed", "cancelled")


def default_home() -> Path:
    return Path(os.environ.get("COLDLAB_HOME", "coldlab-runs"))


def default_devices(device: str | None, workers: int | None) -> list[str]:
    """One worker per visible GPU, else one on the CPU; ``--device`` pins every worker to one device."""
    import torch

    if device:
        return [device] * (workers or 1)
    gpus = torch.cuda.device_count()
    if gpus:
        n = workers or gpus
        return [f"cuda:{i % gpus}" for i in range(n)]
    return ["cpu"] * (workers or 1)


def dataset_missing(spec: dict[str, Any]) -> str | None:
    """Why the run's data (and a morph target) cannot be read offline, or None."""
    registry = get_registry()
    wanted = [spec["dataset"]]
    if spec.get("degradation", {}).get("name") == "morph":
        wanted.append({"name": spec["degradation"]["target_dataset"]})
    for ds in wanted:
        offline = {**ds, "download": False} if "download" in registry.resolve("dataset", ds) else ds
        try:
            load_dataset(registry, offline, "test")  # cached: each dataset is read once per invocation
        except ColdlabError as err:
            return f"{err}; smoke runs never download (a run without --smoke does, when online)"
    return None


def queue_runs(conn: Any, runs: list[Any], prepare: Any = None) -> Iterator[tuple[Any, dict[str, Any], int, bool]]:
    """Enqueue resolved runs, autoencoder runs first, so that each latent diffusion run records the id of
    the autoencoder run it loads and waits for; yields (run, stored spec, id, created). ``prepare`` turns a
    spec into the one stored (``--smoke``, ``--epochs``)."""
    autoencoder_ids: dict[tuple[str, str], int] = {}
    for run in sorted(runs, key=lambda r: r.kind != "autoencoder"):
        spec = run.to_dict()
        depends_on = None
        if spec.get("latent") and "run" in spec["latent"]:
            depends_on = autoencoder_ids[(spec["latent"]["study"], spec["latent"]["run"])]
            spec["latent"]["run_id"] = depends_on
        if prepare is not None:
            spec = prepare(spec)
        run_id, created = enqueue(conn, spec["study"], spec["name"], spec, epochs=spec["train"]["epochs"], depends_on=depends_on)
        if run.kind == "autoencoder":
            autoencoder_ids[(run.study, run.name)] = run_id
        yield run, spec, run_id, created


def enqueue_file(path: str, home: Path, *, only: list[str] | None, smoke_run: bool, epochs: int | None,
                 resume: bool, console: Console) -> list[int]:
    """Validate the file and queue its runs; returns the ids this invocation waits for."""
    runs = load_experiments(path, only=only)
    conn = connect(home / "coldlab.db")
    ids = []

    def prepare(spec: dict[str, Any]) -> dict[str, Any]:
        spec = smoke(spec) if smoke_run else spec
        return with_epochs(spec, epochs) if epochs is not None else spec

    for run, spec, run_id, created in queue_runs(conn, runs, prepare):
        row = get_run(conn, run_id)
        if not created and json.loads(row["config"]) != spec:
            raise ColdlabError(f"experiment {spec['name']!r} changed since it was queued as run {run_id}",
                               hint="rename the experiment, or use another --home for the new settings", where=(path, spec["name"]))
        if smoke_run and row["status"] in ("queued", "skipped"):
            reason = dataset_missing(spec)
            if reason:
                mark(conn, run_id, "skipped", reason)
                console.print(f"[yellow]skipped[/yellow] {spec['name']}: {reason}")
                continue
            if row["status"] == "skipped":
                requeue(conn, run_id)
                row = get_run(conn, run_id)
        if row["status"] == "skipped" and row["depends_on"] is not None and row["error"] and \
                get_run(conn, row["depends_on"])["status"] in ("queued", "running", "finished"):
            requeue(conn, run_id)  # its autoencoder run failed before and is queued again (or done) now
            row = get_run(conn, run_id)
        if row["status"] in RESUMABLE:
            if not resume:
                console.print(f"[yellow]{spec['name']} is {row['status']}[/yellow]: pass --resume to continue it from its checkpoint")
                continue
            requeue(conn, run_id)
        if row["status"] == "finished":
            console.print(f"{spec['name']} already finished (run {run_id})")
            continue
        ids.append(run_id)
    conn.close()
    return ids


def _progress_rows(conn, ids: list[int]) -> list[Any]:
    marks = ",".join("?" * len(ids))
    return conn.execute(
        f"SELECT r.*, (SELECT value FROM metrics m WHERE m.run_id = r.id AND m.name LIKE 'train_loss%' "
        f"ORDER BY m.recorded DESC, m.step DESC LIMIT 1) AS loss FROM runs r WHERE r.id IN ({marks}) ORDER BY r.id", ids
    ).fetchall()


def watch(home: Path, ids: list[int], procs: list[Any], console: Console) -> None:
    """Draw one bar per active run plus the queue until every worker has exited."""
    conn = connect(home / "coldlab.db", readonly=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        queue_task = progress.add_task("queue", total=len(ids), info="")
        tasks: dict[int, int] = {}
        while True:
            rows = _progress_rows(conn, ids)
            done = sum(r["status"] not in ("queued", "running") for r in rows)
            progress.update(queue_task, completed=done, info=f"{done}/{len(ids)} done")
            for r in rows:
                if r["status"] == "running" or r["id"] in tasks:
                    shown = min(r["epoch"] + 1, r["epochs"]) if r["status"] == "running" else r["epoch"]
                    info = f"epoch {shown}/{r['epochs']} step {r['step']}" + (f" loss {r['loss']:.4f}" if r["loss"] is not None else "")
                    if r["status"] not in ("queued", "running"):
                        info += f" [{r['status']}]"
                    total = max(r["total_steps"], 1)
                    if r["id"] not in tasks:
                        tasks[r["id"]] = progress.add_task(f"{r['name']} ({r['device']})", total=total, info=info)
                    completed = total if r["status"] == "finished" else r["step"]
                    progress.update(tasks[r["id"]], total=total, completed=completed, info=info)
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
    conn.close()


def run_file(path: str, *, home: Path, only: list[str] | None = None, smoke_run: bool = False, epochs: int | None = None,
             workers: int | None = None, device: str | None = None, resume: bool = False,
             executor: str | dict[str, Any] = "local") -> int:
    """The ``coldlab run`` command; returns the exit code (0 all finished, 1 otherwise).

    ``executor`` (a name or table) is the executor plugin that starts the workers (default ``local``).
    """
    console = Console(stderr=True)
    try:
        starter = get_registry().build("executor", executor)
    except ColdlabError as err:
        raise err.at("--executor") from None
    ids = enqueue_file(path, home, only=only, smoke_run=smoke_run, epochs=epochs, resume=resume, console=console)
    if not ids:
        console.print("nothing to run")
        return 0
    devices = default_devices(device, workers)
    logs = home / "logs"
    procs = starter.start(home, devices, logs)
    try:
        watch(home, ids, procs, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: checkpointing the running runs...[/yellow]")
        for p in procs:
            if p.poll() is None:
                p.interrupt()
        for p in procs:
            p.wait()
    conn = connect(home / "coldlab.db", readonly=True)
    rows = [get_run(conn, i) for i in ids]
    bad = [r for r in rows if r["status"] != "finished"]
    for r in bad:
        console.print(f"[red]{r['name']}[/red] {r['status']}" + (f": {r['error']}" if r["error"] else ""))
    if any(r["status"] == "interrupted" for r in bad):
        console.print(f"continue with: coldlab run {path} --resume" + (f" --home {home}" if str(home) != str(default_home()) else ""))
    console.print(f"{len(rows) - len(bad)}/{len(rows)} runs finished; store: {home / 'coldlab.db'}; worker logs: {logs}")
    return 0 if not bad else 1
