"""What the dashboard shows, read from the store (read-only) without Textual: the runs table,
the selected run's series, its latest sample grid and log tail, and the devices.

Kept free of Textual so it can be tested and benchmarked on its own; the app calls
:func:`load_snapshot` from a worker thread and renders the result on the UI thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coldlab.home import Home, as_home
from coldlab.store.connection import db_errors
from coldlab.store.queries import (
    artifacts,
    eta_seconds,
    find_run,
    latest_artifact,
    latest_evaluation_value,
    latest_metrics,
    list_runs,
    recent_values,
    training_evaluation_values,
)
from coldlab.store.records import tags_of

SERIES = ("train_loss", "val_loss", "fid", "classifier-fid")
LOSS_NAMES = ("train_loss_step", "train_loss")


@dataclasses.dataclass
class RunRow:
    id: int
    study: str
    name: str
    status: str
    device: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    priority: int
    train_loss: float | None
    val_loss: float | None
    fid: float | None
    fid_name: str  # "fid" or "classifier-fid": whichever the run has (fid first)
    eta_s: float | None
    cancel_requested: bool
    error: str | None
    depends_on: int | None = None  # the run this one waits for (a latent run's autoencoder run)
    tags: list[str] = dataclasses.field(default_factory=list)
    archived: bool = False

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else (1.0 if self.status == "finished" else 0.0)


@dataclasses.dataclass
class RunDetail:
    id: int
    config: dict[str, Any]
    series: dict[str, list[float]]
    grid: Path | None
    log_tail: list[str]
    error: str | None
    note: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # swept values
    grids: list[tuple[int, Path]] = dataclasses.field(default_factory=list)  # (epoch, file) of every sample grid, oldest first


@dataclasses.dataclass
class Snapshot:
    rows: list[RunRow]
    detail: RunDetail | None
    seconds: float  # how long reading took
    taken: float
    matching: set[int] | None = None  # the ids the filter's expressions hold for (None: no filter)
    store_missing: bool = False  # HOME has no store yet


def _first(values: dict[str, float | None], names: tuple[str, ...]) -> float | None:
    for name in names:
        if values.get(name) is not None:
            return float(values[name])  # type: ignore[arg-type]
    return None


def load_rows(conn: sqlite3.Connection, now: float | None = None, *, archived: bool = False) -> list[RunRow]:
    """The runs table (archived runs only with ``archived``)."""
    now = time.time() if now is None else now
    rows = []
    latest = latest_metrics(conn, names=(*LOSS_NAMES, "val_loss"))
    tags = tags_of(conn)
    for r in list_runs(conn):
        if r["archived"] and not archived:
            continue
        fid, fid_name = latest_evaluation_value(conn, r["id"], ("fid", "classifier-fid"))
        values = latest.get(r["id"], {})
        rows.append(
            RunRow(
                id=r["id"],
                study=r["study"],
                name=r["name"],
                status=r["status"],
                device=r["device"] or "",
                epoch=r["epoch"],
                epochs=r["epochs"],
                step=r["step"],
                total_steps=r["total_steps"],
                priority=r["priority"],
                train_loss=_first(values, LOSS_NAMES),
                val_loss=_first(values, ("val_loss",)),
                fid=fid,
                fid_name=fid_name,
                eta_s=eta_seconds(r, now),
                cancel_requested=bool(r["cancel_requested"]),
                error=r["error"],
                depends_on=r["depends_on"],
                tags=tags.get(int(r["id"]), []),
                archived=bool(r["archived"]),
            )
        )
    return rows


def series(conn: sqlite3.Connection, run_id: int, limit: int = 400) -> dict[str, list[float]]:
    """The last ``limit`` points of train loss (per step), validation loss, FID and classifier FID."""
    out: dict[str, list[float]] = {}
    for name, source in (("train_loss", "train_loss_step"), ("val_loss", "val_loss")):
        out[name] = recent_values(conn, run_id, source, limit)
        if not out[name] and name == "train_loss":
            out[name] = recent_values(conn, run_id, "train_loss", limit)
    for name in ("fid", "classifier-fid"):
        out[name] = training_evaluation_values(conn, run_id, name)[-limit:]
    return out


def log_tail(home: Path | Home, run_id: int, lines: int = 12) -> list[str]:
    """The last lines of the run's log (``run.log``, written by its worker), then of its error log."""
    home = as_home(home)
    out: list[str] = []
    for path in (home.run_log(run_id), home.error_log(run_id)):
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(path) - 32768))
                out += fh.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
    return out[-lines:]


def load_detail(conn: sqlite3.Connection, home: Path | Home, run_id: int) -> RunDetail | None:
    home = as_home(home)
    r = find_run(conn, run_id)
    if r is None:
        return None
    stored = latest_artifact(conn, run_id, "grid")
    grid = home.file(stored) if stored and home.file(stored).exists() else None
    grids = sorted({int(a["epoch"]): home.file(a["path"]) for a in artifacts(conn, run_id, "grid") if a["epoch"] is not None}.items())
    return RunDetail(
        id=run_id,
        config=json.loads(r["config"]),
        series=series(conn, run_id),
        grid=grid,
        log_tail=log_tail(home, run_id),
        error=r["error"],
        note=r["note"],
        tags=tags_of(conn, [run_id])[run_id],
        params=json.loads(r["params"]) if r["params"] else {},
        grids=[(epoch, path) for epoch, path in grids if path.exists()],
    )


def matching_ids(conn: Any, conditions: list[Any], *, archived: bool = False) -> set[int]:
    """The runs every condition (:func:`coldlab.search.parse`) holds for, as ``coldlab ls --where`` selects them."""
    from coldlab.search import select
    from coldlab.store.catalog import run_records

    return {int(r["id"]) for r in select(run_records(conn, archived=archived), conditions)}


def load_snapshot(
    home: Path | Home,
    selected: int | None,
    *,
    now: Callable[[], float] = time.time,
    archived: bool = False,
    where: list[Any] | None = None,
) -> Snapshot:
    """Everything one refresh needs, through a read-only connection opened and closed here (archived runs
    only with ``archived``; ``where``: parsed ``--where`` conditions, whose matching ids land in ``matching``)."""
    start = time.perf_counter()
    home = as_home(home)
    if not home.store_exists():
        return Snapshot([], None, time.perf_counter() - start, now(), store_missing=True)
    conn = home.connect(readonly=True)
    try:
        try:
            rows = load_rows(conn, now(), archived=archived)
        except db_errors():  # the file exists a moment before its tables do
            return Snapshot([], None, time.perf_counter() - start, now())
        matching = matching_ids(conn, where, archived=archived) if where else None
        detail = load_detail(conn, home, selected) if selected is not None else None
    finally:
        conn.close()
    return Snapshot(rows, detail, time.perf_counter() - start, now(), matching)


SMI_FIELDS = "index,uuid,name,memory.used,memory.total,utilization.gpu"


def parse_gpus(text: str) -> list[dict[str, Any]]:
    """``nvidia-smi --query-gpu=SMI_FIELDS --format=csv,noheader,nounits`` as one dict per GPU."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 6 and parts[0].isdigit():
            used, total = (float(v) * 2**20 if v.replace(".", "", 1).isdigit() else 0.0 for v in parts[3:5])
            util = f"{parts[5]}%" if parts[5].isdigit() else "n/a"
            gpus.append({"index": int(parts[0]), "uuid": parts[1], "name": parts[2], "memory_used": used, "memory_total": total, "utilisation": util})
    return gpus


def _names(entry: str, gpu: dict[str, Any]) -> bool:
    """Whether a ``CUDA_VISIBLE_DEVICES`` entry names ``gpu`` (its index, or a prefix of its UUID)."""
    if entry.isdigit():
        return bool(gpu["index"] == int(entry))
    return bool(entry) and str(gpu["uuid"]).startswith(entry)


def visible_gpus(gpus: list[dict[str, Any]], cuda_visible: str | None) -> list[dict[str, Any]]:
    """The GPUs a worker started from here sees, each named as that worker names it (``cuda:K``, the K-th visible
    one): nvidia-smi counts every GPU of the machine, while ``CUDA_VISIBLE_DEVICES`` picks and orders them, by index
    or UUID (prefix), and CUDA ignores everything from the first entry that names no GPU on."""
    if cuda_visible is None:
        chosen = sorted(gpus, key=lambda g: g["index"])
    else:
        chosen = []
        for entry in (e.strip() for e in cuda_visible.split(",")):
            match = next((g for g in gpus if _names(entry, g)), None)
            if match is None or match in chosen:
                break
            chosen.append(match)
    return [{**g, "device": f"cuda:{k}"} for k, g in enumerate(chosen)]


def devices() -> list[dict[str, Any]]:
    """Each GPU's memory and utilisation from ``nvidia-smi`` (the dashboard never imports torch: it would
    cost it half a gigabyte), else the CPU's load and memory."""
    import shutil
    import subprocess

    out = []
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            text = subprocess.run(
                [smi, f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        out = visible_gpus(parse_gpus(text), os.environ.get("CUDA_VISIBLE_DEVICES"))
    if not out:
        mem_total = mem_avail = 0
        try:
            info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
            mem_total = int(info["MemTotal"].split()[0]) * 1024
            mem_avail = int(info["MemAvailable"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            pass
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        out.append(
            {
                "device": "cpu",
                "name": f"{os.cpu_count()} cores",
                "memory_used": mem_total - mem_avail,
                "memory_total": mem_total,
                "utilisation": f"load {load:.2f}",
            }
        )
    return out
