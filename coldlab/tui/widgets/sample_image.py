"""A sample grid as an image: real pixels where the terminal shows them (Kitty's graphics protocol, Sixel;
through textual-image), else half blocks with each sample about 14 columns wide, so digits are readable.

``COLDLAB_TUI_IMAGES=blocks`` forces the half blocks. textual-image asks the terminal what it supports
when imported, which must happen before the app starts: :func:`prepare` does it (and asks a Kitty-protocol
terminal its version: textual-image's placement needs Kitty 0.28 or later)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Static

from coldlab.tui.render import legible_grid

_GRAPHICS: Any = None  # the textual-image widget class when the terminal shows pixels, else False
# textual-image's Kitty-protocol widget places images with Unicode placeholders, which Kitty has drawn only since
# 0.28 (0.26, Debian 12's, shows a box per cell instead): older versions of these terminals get half blocks.
PLACEHOLDERS_SINCE = {"kitty": (0, 28)}
_VERSION = re.compile(r"\s*([A-Za-z][\w.-]*?)[( ]v?(\d+)\.(\d+)")


def kitty_placeholders_shown(xtversion: str | None) -> bool:
    """Whether a terminal that answered XTVERSION with ``xtversion`` (``kitty(0.26.5)``) draws the Kitty
    protocol's Unicode placeholders; a terminal that did not answer, or one not known to lack them, is trusted."""
    match = _VERSION.match(xtversion or "")
    if match is None or match.group(1).lower() not in PLACEHOLDERS_SINCE:
        return True
    return (int(match.group(2)), int(match.group(3))) >= PLACEHOLDERS_SINCE[match.group(1).lower()]


def terminal_version() -> str | None:
    """The terminal's answer to XTVERSION (``CSI > q``), asked before the app starts (Textual reads stdin after);
    None when it does not answer within 0.1 s."""
    from textual_image._terminal import TerminalError, capture_terminal_response

    try:
        with capture_terminal_response("\x1bP>|", "\x1b\\", timeout=0.1) as response:
            sys.__stdout__.write("\x1b[>0q")  # type: ignore[union-attr]
            sys.__stdout__.flush()  # type: ignore[union-attr]
    except (TerminalError, TimeoutError, OSError):
        return None
    return str(response.sequence)[len("\x1bP>|") : -len("\x1b\\")]


def prepare() -> bool:
    """Query the terminal (once, before the app runs); True when it shows real images."""
    global _GRAPHICS
    if _GRAPHICS is None:
        _GRAPHICS = False
        if os.environ.get("COLDLAB_TUI_IMAGES", "auto") != "blocks":
            try:
                from textual_image.renderable import Image as Renderable
                from textual_image.renderable.sixel import Image as Sixel
                from textual_image.renderable.tgp import Image as TGP
                from textual_image.widget import Image as ImageWidget
            except ImportError:  # textual-image missing: half blocks
                return False
            if Renderable is Sixel or (Renderable is TGP and kitty_placeholders_shown(terminal_version())):
                _GRAPHICS = ImageWidget
    return bool(_GRAPHICS)


class SampleImage(Vertical):
    """Shows ``path`` (a sample grid of ``samples`` images) under a caption; half blocks ``width`` wide."""

    path: reactive[Path | None] = reactive(None, init=False, repaint=False)
    caption: reactive[str] = reactive("", init=False, repaint=False)

    def __init__(self, samples: int = 64, width: int = 56, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples, self.block_width = samples, width
        self.shown: Path | None = None
        self.across = 0

    def compose(self) -> ComposeResult:
        yield Static("", classes="image-caption")
        if _GRAPHICS:
            yield _GRAPHICS(None, classes="image-pixels")
        else:
            yield Static("", classes="image-blocks")

    def show(self, path: Path | None, caption: str, samples: int | None = None) -> None:
        if samples:
            self.samples = samples
        self.caption = caption
        self.path = path

    def on_mount(self) -> None:
        self.shown = None  # what was set before the children existed is drawn now
        self._draw()

    def watch_caption(self) -> None:
        self._draw()

    def watch_path(self) -> None:
        self._draw()

    def _draw(self) -> None:
        try:
            caption = self.query_one(".image-caption", Static)
        except NoMatches:  # not composed yet: on_mount draws it
            return
        if str(caption.content) != self.caption:
            caption.update(Text(self.caption, style="dim"))
        path = self.path
        if path == self.shown:
            return
        self.shown = path
        if _GRAPHICS:
            pixels: Any = self.query_one(".image-pixels")
            pixels.image = str(path) if path else None
            return
        blocks = self.query_one(".image-blocks", Static)
        if path is None:
            blocks.update(Text("no sample grid yet", style="italic"))
            return
        try:
            text, self.across = legible_grid(path, self.samples, self.block_width)
        except OSError as err:  # a grid being written, or deleted with its run
            text = Text(f"cannot read {path.name}: {err.strerror or err}", style="red")
        blocks.update(text)
