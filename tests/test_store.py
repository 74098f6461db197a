import multiprocessing as mp
import sqlite3

import pytest

from coldlab import ColdlabError
from coldlab.store import (
    claim, connect, enqueue, finish, get_run, heartbeat, list_runs, metric_series, record_artifact,
    record_metrics, request_cancel, requeue, requeue_expired, artifacts,
)
from coldlab.store.migrations import MIGRATIONS, migrate


@pytest.fixture
def db(tmp_path):
    return tmp_path / "coldlab.db"


# tests taking ``store_url`` run on both backends (SQLite, then PostgreSQL: see conftest.py)


def test_schema_is_migrated_once_and_uses_wal(db):
    conn = connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = [r["name"] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert migrate(conn) == []  # nothing left to apply
    assert migrate(connect(db)) == []


def test_enqueue_is_idempotent_per_study_and_name(store_url):
    conn = connect(store_url)
    a = enqueue(conn, "s", "run", {"x": 1}, epochs=3)
    b = enqueue(conn, "s", "run", {"x": 2}, epochs=3)
    assert a == (1, True) and b == (1, False)
    assert enqueue(conn, "other", "run", {}) == (2, True)


def test_claim_order_lease_expiry_and_heartbeat(store_url):
    conn = connect(store_url)
    for i in range(3):
        enqueue(conn, "s", f"r{i}", {}, priority=1 if i == 2 else 0)
    first = claim(conn, "w1", "cpu", lease_s=10, now=1000.0)
    assert first["name"] == "r2" and first["attempts"] == 1  # highest priority first
    assert claim(conn, "w2", "cpu", lease_s=10, now=1001.0)["name"] == "r0"
    # w1 dies: once its lease has run out its run goes back to the queue
    assert requeue_expired(conn, now=1005.0) == []
    assert requeue_expired(conn, now=1011.0) == [first["id"]]
    again = claim(conn, "w3", "cpu", now=1012.0)
    assert again["id"] == first["id"] and again["attempts"] == 2
    assert heartbeat(conn, first["id"], "w1") == (False, False)  # w1 no longer owns it
    assert heartbeat(conn, first["id"], "w3", epoch=2, step=40) == (True, False)
    assert get_run(conn, first["id"])["epoch"] == 2
    request_cancel(conn, first["id"])
    assert heartbeat(conn, first["id"], "w3") == (True, True)
    finish(conn, first["id"], "w3", "cancelled")
    assert get_run(conn, first["id"])["status"] == "cancelled"
    requeue(conn, first["id"])
    assert get_run(conn, first["id"])["status"] == "queued" and get_run(conn, first["id"])["cancel_requested"] == 0
    with pytest.raises(ColdlabError, match="cannot be requeued"):
        requeue(conn, first["id"])
    with pytest.raises(ColdlabError, match="no run with id 99"):
        get_run(conn, 99)


def _claim_all(path, worker, out):
    conn = connect(path)
    got = []
    while (row := claim(conn, worker, "cpu")) is not None:
        got.append(row["id"])
    out.put(got)


def test_two_workers_never_claim_the_same_run(store_url):
    conn = connect(store_url)
    for i in range(60):
        enqueue(conn, "s", f"r{i}", {})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(store_url, f"w{k}", out)) for k in range(3)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=600)
    claimed = [i for r in results for i in r]
    assert sorted(claimed) == list(range(1, 61))  # every run once, none twice
    assert {r["worker"] for r in list_runs(conn)} <= {"w0", "w1", "w2"}


def test_metrics_are_unique_per_run_name_and_step(store_url):
    conn = connect(store_url)
    run, _ = enqueue(conn, "s", "r", {})
    assert record_metrics(conn, run, [("train_loss", 1, 0, 0.5, None), ("train_loss", 2, 0, 0.4, None)]) == 2
    assert record_metrics(conn, run, [("train_loss", 2, 0, 0.3, None), ("fid", 2, 0, 12.0, {"n": 500})]) == 1
    series = metric_series(conn, run)
    assert [p["value"] for p in series["train_loss"]] == [0.5, 0.4]  # the first write of step 2 is kept
    assert series["fid"][0]["detail"] == {"n": 500}
    record_artifact(conn, run, "grid", "runs/1/grid-0001.png", epoch=1)
    assert [a["path"] for a in artifacts(conn, run, "grid")] == ["runs/1/grid-0001.png"]


def test_readonly_connections_cannot_write(db):
    connect(db)
    ro = connect(db, readonly=True)
    with pytest.raises(sqlite3.OperationalError):
        ro.execute("INSERT INTO runs (study, name, config, created) VALUES ('a', 'b', '{}', 0)")
    with pytest.raises(ColdlabError, match="no store"):
        connect(db.parent / "missing.db", readonly=True)
