"""Digits as collections other than MNIST hand them over: postal and form scanners that
stretch each digit to fill its box or keep it as a coarse black-and-white bitmap (USPS,
Semeion, UCI's optical digits), boxes that cut a digit off, and heavy round pens.

Each takes the digit's ink at 4x (white on black, float 0..255, as the suite draws it).
`clipped` and `blunt` return ink for the suite's page; `box_filled` and `coarse_binary`
return the whole sheet a scanner would give (dark ink on light paper, uint8): the box or
the bitmap edge to edge, with no paper around it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

INK = 64  # ink above this (of 255) is the digit
BOX_SIDE = 64  # a form's digit box, in pixels, as the scanner hands it over
COARSE_SHOWN = 128  # a coarse bitmap is enlarged (nearest neighbour) to about this side
COARSE_MARGIN = 1  # cells left blank around the digit in its bitmap


def ink_box(ink: np.ndarray) -> tuple[slice, slice] | None:
    """The box around the ink (None if there is none); the whole suite measures with it."""
    rows, cols = np.nonzero(ink > INK)
    if not len(rows):
        return None
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def disk(radius: float) -> np.ndarray:
    """A round pen's footprint: the pixels within `radius` of the centre."""
    r = int(np.ceil(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return x**2 + y**2 <= radius**2


def _fit(ink: np.ndarray, height: int, width: int) -> np.ndarray:
    """The ink resampled to height x width (area-averaged when it shrinks)."""
    image = Image.fromarray(np.clip(ink, 0, 255).astype(np.float32), "F")
    return np.asarray(image.resize((max(1, width), max(1, height)), Image.BOX), dtype=np.float64)


def _centred(ink: np.ndarray, side: int) -> np.ndarray:
    out = np.zeros((side, side))
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    out[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return out


def _sheet(ink: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(255.0 - ink), 0, 255).astype(np.uint8)


def box_filled(ink: np.ndarray, strength: float) -> np.ndarray:
    """Stretched `strength` of the way from its own proportions to its square box's, then
    fitted to the box, which is the whole image: at 1, a 1 is as wide as a 0."""
    box = ink_box(ink)
    if box is None:
        return _sheet(np.zeros((BOX_SIDE, BOX_SIDE)))
    crop = ink[box]
    ratio = crop.shape[1] / crop.shape[0]  # width to height
    ratio += strength * (1.0 - ratio)  # toward the square box's 1
    height, width = (BOX_SIDE, BOX_SIDE * ratio) if ratio <= 1 else (BOX_SIDE / ratio, BOX_SIDE)
    return _sheet(_centred(_fit(crop, round(height), round(width)), BOX_SIDE))


def coarse_binary(ink: np.ndarray, cells: int) -> np.ndarray:
    """Scanned into a cells x cells bitmap (its proportions kept, as MNIST does), thresholded
    to black and white at half ink, and enlarged by whole pixels: staircase edges, and thin
    strokes broken or gone."""
    box = ink_box(ink)
    inside = cells - 2 * COARSE_MARGIN
    bitmap = np.zeros((cells, cells))
    if box is not None:
        crop = ink[box]
        scale = inside / max(crop.shape)
        small = _fit(crop, round(crop.shape[0] * scale), round(crop.shape[1] * scale))
        bitmap = _centred(np.where(small >= 127.5, 255.0, 0.0), cells)
    factor = max(1, round(COARSE_SHOWN / cells))
    return _sheet(np.kron(bitmap, np.ones((factor, factor))))


def clipped(ink: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """`share` of the digit's height (top, bottom) or width (left, right) cut off at one
    side, picked at random, as by the edge of a box it was written across."""
    box = ink_box(ink)
    if box is None:
        return ink
    rows, cols = box
    out = ink.copy()
    side = rng.choice(("top", "bottom", "left", "right"))
    cut_rows = round(share * (rows.stop - rows.start))
    cut_cols = round(share * (cols.stop - cols.start))
    if side == "top":
        out[: rows.start + cut_rows] = 0
    elif side == "bottom":
        out[rows.stop - cut_rows :] = 0
    elif side == "left":
        out[:, : cols.start + cut_cols] = 0
    else:
        out[:, cols.stop - cut_cols :] = 0
    return out


def stroke_width(ink: np.ndarray) -> float:
    """The pen's width: twice the typical distance from the middle of a stroke to its edge
    (the 90th percentile of the distance transform over the ink)."""
    solid = ink > 127.5
    if not solid.any():
        return 0.0
    return 2.0 * float(np.percentile(ndimage.distance_transform_edt(solid)[solid], 90))


def blunt(ink: np.ndarray, share: float) -> np.ndarray:
    """Redrawn with a heavy round pen `share` of the digit's height wide: the strokes
    widened by a disc until they are that wide, at full ink, with soft edges."""
    box = ink_box(ink)
    if box is None:
        return ink
    height = box[0].stop - box[0].start
    radius = max(0.0, (share * height - stroke_width(ink)) / 2)
    pen = ndimage.binary_dilation(ink > 127.5, structure=disk(radius))
    return ndimage.gaussian_filter(pen * 255.0, 1.0)  # the edge of a real stroke, not a cut
