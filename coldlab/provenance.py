"""Where a run comes from, recorded with it (``runs.provenance``, JSON) and shown by ``show``, ``diff`` and
the report:

- ``queued`` (when the run is queued): the study file's path and SHA-256, the git commit, branch and dirty
  state of the repository holding it (when there is one; ``git`` must be on PATH), the command line, and
  the versions of coldlab, of every plugin package, of Python and of torch;
- ``ran`` (when a worker takes it; each attempt replaces it): host, device and its name, torch, CUDA and
  Python versions.

Nothing here raises: what cannot be found is recorded as ``None``.
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(path: Path) -> dict[str, Any] | None:
    """Commit, branch and dirty state of the repository holding ``path`` (None outside one)."""
    folder = path.resolve().parent
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": _git(folder, "rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": None if status is None else bool(status),
        "root": _git(folder, "rev-parse", "--show-toplevel"),
    }


def file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def packages(registry: Any = None) -> dict[str, str]:
    """coldlab's version and every plugin package's (name -> version)."""
    from coldlab import __version__

    out = {"coldlab": __version__}
    for info in getattr(registry, "plugins", []) or []:
        if info.package and info.package != "coldlab":
            out[str(info.package)] = str(info.version)
    return out


def command_line() -> list[str]:
    """This process's command line, with the ``coldlab`` entry point (or ``python -m coldlab``) named as typed."""
    argv = list(sys.argv)
    if argv and (Path(argv[0]).name == "coldlab" or argv[0].endswith(("coldlab/__main__.py", "coldlab\\__main__.py"))):
        argv[0] = "coldlab"
    return argv


def queued(study_file: str | Path | None, registry: Any = None, command: list[str] | None = None) -> dict[str, Any]:
    """The ``queued`` part: study file, repository, command line, package versions."""
    import torch

    path = Path(study_file) if study_file else None
    return {
        "queued": {
            "study_file": str(path.resolve()) if path else None,
            "study_sha256": file_sha256(path) if path else None,
            "git": git_state(path) if path else None,
            "command": shlex.join(command_line() if command is None else command),
            "packages": packages(registry),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "host": socket.gethostname(),
        }
    }


def ran(device: str) -> dict[str, Any]:
    """The ``ran`` part: where the attempt under way runs."""
    import torch

    name = platform.processor() or platform.machine()
    if device.startswith("cuda") and torch.cuda.is_available():
        try:
            name = torch.cuda.get_device_name(torch.device(device))
        except (RuntimeError, AssertionError):
            pass
    return {
        "host": socket.gethostname(),
        "device": device,
        "device_name": name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,  # the CUDA torch was built with
        "cuda_available": torch.cuda.is_available(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,  # type: ignore[no-untyped-call]
    }


def provenance_lines(provenance: dict[str, Any]) -> list[str]:
    """A run's provenance as a few readable lines (``show``, the report)."""
    queued, ran = provenance.get("queued") or {}, provenance.get("ran") or {}
    lines = []
    if queued:
        git = queued.get("git")
        where = (
            f"git {str(git.get('commit'))[:12]} on {git.get('branch')}" + (" (dirty)" if git.get("dirty") else "")
            if git
            else "not in a git repository"
        )
        lines.append(f"queued from {queued.get('study_file')} (sha256 {str(queued.get('study_sha256'))[:12]}), {where}")
        lines.append(f"command: {queued.get('command')}")
        packages = queued.get("packages") or {}
        lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in sorted(packages.items())))
    if ran:
        cuda = f", CUDA {ran.get('cuda')}" if ran.get("cuda_available") else ""
        lines.append(
            f"ran on {ran.get('host')}, {ran.get('device')} ({ran.get('device_name')}): Python {ran.get('python')}, torch {ran.get('torch')}{cuda}"
        )
    return lines
