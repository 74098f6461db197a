"""What the runs of one session share in memory: dataset splits and encoded latents, loaded once.

A session has an explicit lifetime: ``coldlab worker`` opens one for its loop (its runs share the
MNIST tensors and a latent run's encoded splits), ``coldlab eval`` and ``coldlab export`` one each; when it
closes, what it held is dropped. Code outside any session (a library user, a test) uses the process's
default session, which lives as long as the process (``default_session().clear()`` empties it).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import torch

Split = tuple[torch.Tensor, torch.Tensor]


class DataSession:
    """Dataset splits (keyed by the dataset's table, the split and the data root) and encoded splits
    (keyed by the autoencoder file's hash, the table and the split)."""

    def __init__(self) -> None:
        self.datasets: dict[tuple[str, str, str], Split] = {}
        self.latents: dict[tuple[str, str, str], Split] = {}

    def dataset(self, key: tuple[str, str, str], load: Callable[[], Split]) -> Split:
        if key not in self.datasets:
            self.datasets[key] = load()
        return self.datasets[key]

    def encoded(self, key: tuple[str, str, str], encode: Callable[[], Split]) -> Split:
        if key not in self.latents:
            self.latents[key] = encode()
        return self.latents[key]

    def clear(self) -> None:
        self.datasets.clear()
        self.latents.clear()


_DEFAULT = DataSession()
_CURRENT: contextvars.ContextVar[DataSession | None] = contextvars.ContextVar("coldlab_data_session", default=None)


def default_session() -> DataSession:
    """The session of code that opened none (it lives as long as the process)."""
    return _DEFAULT


def current_session() -> DataSession:
    """The innermost open session, else the default one."""
    return _CURRENT.get() or _DEFAULT


@contextlib.contextmanager
def data_session() -> Iterator[DataSession]:
    """Open a session for the runs inside the block; what it loaded is dropped when the block ends."""
    session = DataSession()
    token = _CURRENT.set(session)
    try:
        yield session
    finally:
        _CURRENT.reset(token)
        session.clear()
