"""Terminal renderings without Textual: a PNG as half-block characters (two pixels per cell)."""

from __future__ import annotations

from pathlib import Path

from rich.style import Style
from rich.text import Text


def half_blocks(path: Path, width: int = 32, max_rows: int = 16) -> Text:
    """The image scaled to ``width`` columns (at most ``max_rows`` text rows), each cell an upper
    half block whose foreground is the top pixel and background the bottom pixel."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        cols = max(1, min(width, w))
        rows = max(1, min(max_rows, round(h * cols / w / 2)))
        small = img.resize((cols, rows * 2), Image.Resampling.BOX)
        pixels = small.load()
    text = Text()
    for y in range(rows):
        for x in range(cols):
            top, bottom = pixels[x, 2 * y], pixels[x, 2 * y + 1]
            text.append("▀", Style(color=f"rgb({top[0]},{top[1]},{top[2]})", bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})"))
        if y < rows - 1:
            text.append("\n")
    return text
