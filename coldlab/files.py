"""Writing files so that a crash never leaves a torn one: write beside, then rename."""

from __future__ import annotations

import os
import pickle
import re
import socket
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj, path)`` through a temporary file in the same folder (created if needed)
    and an atomic rename, so readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the host and process in the name: workers of several machines may share the folder (an NFS HOME)
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
    tmp = path.with_name(f"{path.name}.{host}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


TORN = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError)  # what reading a half-written file raises


def load_tensors(path: str | os.PathLike[str], *, mmap: bool = False) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings and plain containers only.

    Data is never code: a file holding any other Python object (a crafted pickle) is refused with a
    :class:`ColdlabError` before anything in it runs. A torn or truncated file raises what torch
    raises (callers that can fall back to an older file catch that)."""
    from coldlab.errors import ColdlabError

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            raise ColdlabError(
                f"refused to load {path}: it holds Python objects, not only tensors (loading it could run code)",
                hint="coldlab never writes such files: delete it, or restore it from a copy you trust",
            ) from None
        raise


def remove_torn(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a crash left half-written in ``folder`` (``*.tmp`` of :func:`save_atomic`)."""
    removed = []
    for tmp in Path(folder).glob("*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
