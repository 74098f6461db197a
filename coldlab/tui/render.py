"""Terminal renderings without Textual: a PNG as half-block characters (two pixels per cell), and the
first samples of a sample grid cut out so each is drawn at a legible size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.style import Style
from rich.text import Text

PAD = 2  # torchvision's make_grid padding, which save_grid uses
LEGIBLE = 14  # columns a sample needs to be read (a 28-pixel digit at half resolution)


def grid_crop(img: Any, samples: int, across: int) -> Any:
    """The top-left ``across`` x ``across`` samples of a grid image of ``samples`` images (save_grid puts
    isqrt(samples) per row), or the whole image when it has no more than that."""
    per_row = max(1, int(math.sqrt(samples)))
    if across >= per_row:
        return img
    w, h = img.size
    pitch = (w - PAD) / per_row
    rows = -(-samples // per_row)
    pitch_y = (h - PAD) / rows
    return img.crop((0, 0, round(PAD + across * pitch), round(PAD + min(across, rows) * pitch_y)))


def legible_across(width: int, samples: int) -> int:
    """How many samples across fit ``width`` columns at a legible size (at least one)."""
    return max(1, min(int(math.sqrt(max(1, samples))), width // LEGIBLE))


def half_blocks(path: Path | Any, width: int = 32, max_rows: int = 16) -> Text:
    """The image (a path, or a PIL image) scaled to ``width`` columns (at most ``max_rows`` text rows), each
    cell an upper half block whose foreground is the top pixel and background the bottom pixel."""
    from PIL import Image

    img = Image.open(path) if isinstance(path, (str, Path)) else path
    img = img.convert("RGB")
    w, h = img.size
    cols = max(1, min(width, w))
    rows = max(1, min(max_rows, round(h * cols / w / 2)))
    small = img.resize((cols, rows * 2), Image.Resampling.BOX)
    pixels: Any = small.load()
    text = Text()
    for y in range(rows):
        x = 0
        while x < cols:  # a run of cells with the same two colours is one span: far fewer segments to draw
            top, bottom = pixels[x, 2 * y], pixels[x, 2 * y + 1]
            end = x + 1
            while end < cols and pixels[end, 2 * y] == top and pixels[end, 2 * y + 1] == bottom:
                end += 1
            style = Style(color=f"rgb({top[0]},{top[1]},{top[2]})", bgcolor=f"rgb({bottom[0]},{bottom[1]},{bottom[2]})")
            text.append("▀" * (end - x), style)
            x = end
        if y < rows - 1:
            text.append("\n")
    return text


def legible_grid(path: Path, samples: int, width: int) -> tuple[Text, int]:
    """The grid's first samples as half blocks, each about :data:`LEGIBLE` columns wide, filling ``width``;
    returns the text and how many samples across it shows."""
    from PIL import Image

    across = legible_across(width, samples)
    with Image.open(path) as img:
        crop = grid_crop(img.convert("RGB"), samples, across)
        w, h = crop.size
        cols = min(width, across * LEGIBLE, w)
        return half_blocks(crop, width=cols, max_rows=max(1, round(h * cols / w / 2))), across
