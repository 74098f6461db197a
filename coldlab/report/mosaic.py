"""Many small images as one picture: tiles pasted into a single array and drawn with one ``imshow``,
labels as tick labels. A grid of axes per image (what matplotlib's ``subplots`` gives) costs ~25 ms an
axes to make and draw; a report has thousands of such tiles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

GAP = 2  # pixels between tiles (white)
BLOCK_GAP = 6  # between groups of columns (reconstruction triples)


def as_tile(image: Any) -> np.ndarray:
    """An image as an [H, W, 3] float array in [0, 1]: a tensor [C, H, W] (uint8 0..255 or float 0..1), or
    an array [H, W] or [H, W, C] (what ``plt.imread`` gives: C = 3, or 4 with alpha, which is dropped)."""
    if hasattr(image, "detach"):
        a = image.detach().cpu().numpy()
        a = np.transpose(a, (1, 2, 0)) if a.ndim == 3 else a
    else:
        a = np.asarray(image)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    a = a[:, :, :3]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    out: np.ndarray = np.clip(a, 0.0, 1.0)
    return out


def compose(tiles: Sequence[Sequence[Any | None]], block: int = 0, row_gap: int = GAP) -> tuple[np.ndarray, list[float], list[float]]:
    """Rows of tiles (None: an empty cell) as one RGB array; returns it and the centre of each column and
    row in pixels (for tick labels). ``block``: a wider gap after every ``block`` columns; ``row_gap``:
    pixels between rows (room for a label over each tile)."""
    shown = [as_tile(t) for row in tiles for t in row if t is not None]
    if not shown:
        raise ValueError("no tiles")
    h = max(t.shape[0] for t in shown)
    w = max(t.shape[1] for t in shown)
    n_cols = max(len(row) for row in tiles)
    lefts, x = [], 0
    for c in range(n_cols):
        lefts.append(x)
        x += w + (BLOCK_GAP if block and (c + 1) % block == 0 else GAP)
    width = x - GAP
    height = len(tiles) * (h + row_gap) - row_gap
    canvas = np.ones((height, width, 3), dtype=np.float32)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile is None:
                continue
            t = as_tile(tile)
            top = r * (h + row_gap)
            canvas[top : top + t.shape[0], lefts[c] : lefts[c] + t.shape[1]] = t
    return canvas, [left + w / 2 for left in lefts], [r * (h + row_gap) + h / 2 for r in range(len(tiles))]


def draw(
    ax: Any,
    tiles: Sequence[Sequence[Any | None]],
    col_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    *,
    block: int = 0,
    row_gap: int = GAP,
    fontsize: int = 7,
) -> tuple[list[float], list[float]]:
    """Draw the tiles on ``ax`` with column labels on top and row labels on the left; returns the centres."""
    canvas, xs, ys = compose(tiles, block, row_gap)
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks(xs[: len(col_labels)], list(col_labels), fontsize=fontsize)
    ax.set_yticks(ys[: len(row_labels)], list(row_labels), fontsize=fontsize)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return xs, ys


def figsize(rows: int, cols: int, inches: float = 1.0, extra: tuple[float, float] = (0.8, 0.5)) -> tuple[float, float]:
    """A figure size giving each tile about ``inches`` square, plus room for labels."""
    return (cols * inches + extra[0], rows * inches + extra[1])
