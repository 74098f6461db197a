"""The one error type coldlab raises for anything a user can fix."""

from __future__ import annotations


class ColdlabError(Exception):
    """A user-facing error: its message says what happened, where, and what to do.

    The CLI prints ``str(error)`` on one line (no traceback unless ``--debug``).
    ``where`` holds location parts (file, experiment, key) that callers higher up
    may prepend with :meth:`at`.
    """

    def __init__(self, message: str, *, hint: str | None = None, where: tuple[str, ...] = ()):
        self.message = message
        self.hint = hint
        self.where = tuple(where)
        super().__init__(self._render())

    def _render(self) -> str:
        prefix = ": ".join(self.where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def at(self, *where: str) -> ColdlabError:
        """Return a copy located further out, e.g. ``err.at("experiments.toml", "ddpm-linear")``."""
        return ColdlabError(self.message, hint=self.hint, where=tuple(where) + self.where)


class PluginLoadWarning(UserWarning):
    """Emitted when a plugin fails to load or register and is skipped."""
