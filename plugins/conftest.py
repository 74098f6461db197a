"""The plugin packages' tests share the core's PostgreSQL fixtures (tests/pg.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pg import pg_server, pg_url  # noqa: E402,F401
