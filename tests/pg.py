"""A throwaway PostgreSQL server for the tests: its own cluster in a temporary folder, on a free
loopback port, started from the machine's PostgreSQL binaries (``$COLDLAB_PG_BIN``, else the newest
``/usr/lib/postgresql/*/bin``, else ``pg_config --bindir``). ``initdb`` refuses root, so as root the
cluster belongs to the ``postgres`` user. ``$COLDLAB_TEST_POSTGRES`` (a URL of a database on a
running server whose user may create databases) is used instead when set."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    if os.environ.get("COLDLAB_PG_BIN"):
        return Path(os.environ["COLDLAB_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0)
    if found:
        return Path(found[-1])
    if shutil.which("pg_config"):
        return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A PostgreSQL cluster of the test session; :meth:`database` makes a fresh database for one test."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync  # off for the tests (speed); the benchmark turns it on, as a real server has it
        self.admin_url = os.environ.get("COLDLAB_TEST_POSTGRES", "")
        self.folder: Path | None = None
        self.port = 0
        if not self.admin_url:
            self._init()

    def _as_owner(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def _init(self) -> None:
        bindir = _bin_dir()
        if bindir is None or not (bindir / "initdb").exists():
            raise RuntimeError("PostgreSQL binaries not found (set COLDLAB_PG_BIN, or install postgresql)")
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="coldlab-pg-"))
        os.chmod(self.folder, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self.port = _free_port()
        subprocess.run(
            self._as_owner([str(bindir / "initdb"), "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True,
            capture_output=True,
            cwd="/",
        )
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.start()

    def start(self) -> None:
        """Start (or start again) the server; returns once it accepts connections."""
        assert self.folder is not None, "an external server is not started by the tests"
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        subprocess.run(
            self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w", "start"]),
            check=True,
            capture_output=True,
            cwd="/",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would)."""
        assert self.folder is not None, "an external server is not stopped by the tests"
        subprocess.run(
            self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", mode, "-w", "stop"]), check=True, capture_output=True, cwd="/"
        )

    def database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def close(self) -> None:
        if self.folder is not None:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server of the session (tests/pg.py). Without psycopg or the PostgreSQL binaries the
    tests that need it are skipped, unless ``$COLDLAB_REQUIRE_POSTGRES`` is set (``.ci/run`` sets it):
    then they fail."""
    required = bool(os.environ.get("COLDLAB_REQUIRE_POSTGRES"))
    try:
        import psycopg  # noqa: F401

        server = PgServer()
    except Exception as err:
        if required:
            raise
        pytest.skip(f"no PostgreSQL for the tests: {type(err).__name__}: {err}")
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server):
    """The URL of a new, empty PostgreSQL database."""
    return pg_server.database()
