"""Photos of paper as people take them: a sheet lying on a darker desk, uneven light and hard
shadows across the page, lined and squared paper.

`read_paper` turns a photo of dark ink on light paper into the ink alone (white on black):
it finds the sheet and reads only inside it, squared up to its edges; it divides by the
paper's own brightness, so that light and shadow leave ink of one strength and the edge of a
shadow leaves none; and it paints over ruled lines, which run straight across the whole sheet
and are thinner than a pen's stroke.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

LIGHT_WINDOW = 3  # the light is measured over a third of the shorter side: wider than a stroke
SHADE, SHADED = 0.75, 0.1  # light a quarter darker on a tenth of the photo: a hard shadow
PAPER_FLOOR = 0.3  # paper in the deepest shadow keeps this share of the brightest paper's light
STROKES_WIDE = 3  # the light's window, in stroke widths (a stroke's width: 4x its mean depth)
RIM_OVER_INK = 0.25  # paper in shadow is this share of the range above the darkest ink
SHEET_SHARE = 0.15  # a sheet on a desk covers at least this share of the photo,
SHEET_INK = (0.002, 0.2)  # has some ink on it (holes in the bright piece), a fifth at most,
SHEET_SOLIDITY = 0.95  # and is convex (of 10,000 MNIST digits, white on black, one fat 0 is)
DESK_RIM = 0.5  # a desk takes up half the photo's rim or more (else the rim is paper)
DESK_SOLIDITY = 0.9  # the dark side of a straight shadow edge fills its convex hull; a desk not
NOTCH = 3  # what cuts into a sheet from its edge this many pixels wide or more is on it
NOTCH_DARK = 0.5  # and it is dark: under the sheet-desk threshold by half their gap or more
MARGIN = 40  # a fortieth of the shorter side along the sheet's edge is not read (its rim, shade)
LINE_INK = 30  # a ruled line darkens the paper by this much (of 255) or more
LINE_SHARE = 0.75  # a ruled line has ink along three quarters of the sheet or more
LINE_WIDTH = 50  # and is at most a fiftieth of the shorter side wide (pen strokes are wider)
TILTS = np.tan(np.radians(np.arange(-4.0, 4.01, 0.25)))  # a page photographed a little askew


@dataclass
class Paper:
    """What `read_paper` saw: the ink, the paper's light, and the sheet (all True if the photo
    is all paper). The ink is squared up to the sheet's edges, turned by `tilt` degrees."""

    ink: np.ndarray
    light: np.ndarray
    sheet: np.ndarray
    tilt: float = 0.0


def otsu(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold: the level that best splits the values into two classes."""
    # np.bincount, not np.histogram: the same 64 equal bins over 0..max, ~10x faster.
    top = max(float(values.max()), 1e-6)
    index = np.minimum((values.ravel() * (bins / top)).astype(np.intp), bins - 1)
    histogram = np.bincount(index, minlength=bins)
    centres = (np.arange(bins) + 0.5) * (top / bins)
    weight = np.cumsum(histogram)
    mean = np.cumsum(histogram * centres)
    total, total_mean = weight[-1], mean[-1]
    between = np.zeros(len(histogram))
    valid = (weight > 0) & (weight < total)
    w0, m0 = weight[valid], mean[valid]
    between[valid] = (total_mean * w0 - m0 * total) ** 2 / (w0 * (total - w0))
    return float(centres[np.argmax(between)])


def is_light_paper(values: np.ndarray) -> bool:
    """Dark ink on light paper? The photo's rim says so: it is light, or it is paper in shadow,
    well above the darkest ink (a black ground is the darkest thing in its image). Or the rim
    is a darker desk: then one bright piece, convex as a sheet is, covers much of the photo,
    with a little ink in it (its holes). A white digit on black is not convex, or has no
    holes, or a 0's big one."""
    rim = np.median(_rim(values))
    darkest, brightest = np.percentile(values, [1, 99])
    if rim > 127 or rim - darkest > RIM_OVER_INK * (brightest - darkest):
        return True
    piece = _largest(values > otsu(values))
    sheet = _filled(piece)
    holes = 1 - piece.sum() / max(1, sheet.sum())
    return (
        piece.sum() >= SHEET_SHARE * values.size
        and SHEET_INK[0] < holes <= SHEET_INK[1]
        and sheet.sum() >= SHEET_SOLIDITY * _hull_area(sheet)
    )


def paper_light(values: np.ndarray) -> np.ndarray:
    """The paper's brightness without the ink: a grey closing wider than any stroke.

    A closing follows a straight edge exactly (a shadow's, the sheet's), where a blur or a
    smoothed minimum smears it into a band that reads as ink; only where such an edge meets
    the photo's border at a slant does it cut the corner, as far in as its window is wide.
    So the window is first a third of the shorter side (no stroke is wider), then, once the
    strokes are seen, a few strokes wide.
    """
    widest = max(3, min(values.shape) // LIGHT_WINDOW)
    light = _closing(values, widest)
    darkness = np.clip(1.0 - values / np.maximum(light, 1.0), 0.0, 1.0)
    strokes = darkness >= otsu(darkness)
    if not strokes.any() or strokes.all():  # a blank page
        return light
    width = 4 * float(np.median(_distances_inside(strokes)))
    size = int(np.clip(STROKES_WIDE * width, 3, widest))
    if size >= widest:
        return light
    return _closing(values, size)


def _distances_inside(mask: np.ndarray) -> np.ndarray:
    """Each True pixel's distance to the nearest False one: the distance transform over the
    mask's bounding box and a pixel more, the same numbers for a fraction of the work (any
    False pixel further out lies behind one in that ring)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = mask[
        max(rows[0] - 1, 0) : rows[-1] + 2,
        max(cols[0] - 1, 0) : cols[-1] + 2,
    ]
    return ndimage.distance_transform_edt(box)[box]


def _closing(values: np.ndarray, size: int) -> np.ndarray:
    """A grey closing, never darker than PAPER_FLOOR of the brightest paper: darker than that
    it is ink the window could not span (a stroke along the photo's border), not paper."""
    light = ndimage.grey_closing(values, size=(size, size), mode="nearest")
    return np.maximum(light, PAPER_FLOOR * np.percentile(light, 99))


def gentle_light(values: np.ndarray) -> np.ndarray:
    """The light of paper lit without hard edges: the brightest level within a third of the
    shorter side, smoothed. It forgives strokes that run along the photo's border, which a
    closing cannot span."""
    window = max(3, min(values.shape) // 3)
    return ndimage.uniform_filter(ndimage.maximum_filter(values, size=window), size=window)


def find_sheet(values: np.ndarray, light: np.ndarray) -> np.ndarray | None:
    """The sheet lying on a darker desk, its ink filled in and a margin along its edges taken
    off, with a digit that runs off its edge; None when the photo is all paper (the dark side
    of a shadow's edge is paper too)."""
    level = otsu(light)
    sheet = _filled(_largest(light > level))
    if (~sheet).any() and light[~sheet].mean() < SHADE * light[sheet].mean() and _is_desk(~sheet):
        sheet = _filled(_largest(ndimage.gaussian_filter(values, 1) > level))
        sheet = _with_ink_run_off(sheet, values, level)
        margin = max(2, min(values.shape) // MARGIN)
        return ndimage.binary_erosion(sheet, iterations=margin, border_value=1)
    return None


def _is_desk(dark: np.ndarray) -> bool:
    """A desk shows on two sides or more: along most of the photo's rim, in pieces or bent
    round a corner of the sheet. The dark side of a straight shadow edge (or of a gentle slope
    of light) is one convex piece; the strokes of a digit that fills the photo touch its rim
    only here and there."""
    rim = _rim(dark)
    if dark.sum() < 0.02 * dark.size or rim.mean() < DESK_RIM:
        return False
    pieces, count = ndimage.label(dark)
    sizes = np.bincount(pieces.ravel())[1:]
    if np.sum(sizes >= 0.01 * dark.size) >= 2:
        return True
    return dark.sum() < DESK_SOLIDITY * _hull_area(dark)


def sheet_tilt(sheet: np.ndarray) -> float:
    """How far (degrees, within +-45) the sheet's edges are turned from the photo's: people
    write square to the page, so the digit is read square to it too."""
    gy, gx = np.gradient(ndimage.gaussian_filter(sheet.astype(np.float64), 2))
    # Edges at t, t+90, t+180 and t+270 degrees agree once their angles are multiplied by 4.
    turn = np.sum((gx**2 + gy**2) * np.exp(4j * np.arctan2(gy, gx)))
    return float(np.degrees(np.angle(turn) / 4))


def without_ruled_lines(ink: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The ink with the lines of lined or squared paper painted over, across and down."""
    ink = _without_rows(ink, inside)
    return _without_rows(np.ascontiguousarray(ink.T), np.ascontiguousarray(inside.T)).T


def _without_rows(ink: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Paint over lines that run (within 4 degrees) along the rows: the ones with ink along
    most of the sheet, in a band thinner than a pen's stroke. Each is painted with what lies
    just above or below it, so a stroke that crosses it keeps its ink."""
    inky = inside & (ink >= LINE_INK)
    if not inky.any():
        return ink
    totals, counts, offsets = _along_tilts(inside, inky)
    share = np.where(
        totals >= 0.5 * totals.max(axis=1, keepdims=True), counts / np.maximum(totals, 1), 0
    )
    best = int(np.argmax(np.sum(share**4, axis=1)))  # the tilt the lines run along, if any
    share, offset = share[best], offsets[best]
    lines = share >= LINE_SHARE
    bands, count = ndimage.label(lines)
    if count == 0:
        return ink
    spans = ndimage.find_objects(bands)
    widest = max(3, min(ink.shape) // LINE_WIDTH)
    first = np.full(len(lines), -1)
    last = np.full(len(lines), -1)
    for span in spans:
        if span[0].stop - span[0].start <= widest:
            first[span[0]] = span[0].start
            last[span[0]] = span[0].stop - 1
    if (first < 0).all():  # every band of ink along the sheet is too wide for a ruled line
        return ink
    grid_rows, grid_cols = np.indices(ink.shape)
    line = grid_rows + offset[grid_cols]
    on = first[line] >= 0
    if not on.any():
        return ink
    r, c, at = grid_rows[on], grid_cols[on], line[on]
    above = np.clip(r - (at - first[at]) - 2, 0, ink.shape[0] - 1)
    below = np.clip(r + (last[at] - at) + 2, 0, ink.shape[0] - 1)
    painted = ink.copy()
    painted[r, c] = np.minimum(ink[r, c], np.maximum(ink[above, c], ink[below, c]))
    return painted


def _along_tilts(*masks: np.ndarray) -> tuple:
    """How many pixels of each mask lie on each line at each of TILTS: an array (tilts,
    lines) per mask, where line r + offsets[tilt, column] holds row r's pixel at that column.

    A tilt shifts runs of whole columns by whole rows, so a run's pixels in a row are one
    difference of running sums, and one weighted count gathers every run at every tilt.
    """
    height, width = masks[0].shape
    lines = height + width + 1
    offsets = np.rint(np.arange(width)[None, :] * TILTS[:, None]).astype(np.intp)
    offsets -= offsets.min(axis=1, keepdims=True)
    tilt, starts = np.nonzero(np.diff(offsets, axis=1, prepend=-1))  # where each run starts
    ends = np.append(starts[1:], width)
    ends[np.append(tilt[1:] != tilt[:-1], True)] = width
    at = offsets[tilt, starts] + tilt * lines  # each run's first line, all tilts in a row
    sums = []
    for mask in masks:
        if mask.all():  # the whole photo is the sheet: a run of n columns adds n to the
            ends_at = np.zeros(len(TILTS) * lines + 1)  # height lines from its first on
            np.add.at(ends_at, at, ends - starts)
            np.add.at(ends_at, at + height, starts - ends)
            counted = np.cumsum(ends_at[:-1])
        else:  # only the rows with any of the mask in them count
            rows = np.flatnonzero(mask.any(axis=1))
            running = np.pad(np.cumsum(mask[rows], axis=1, dtype=np.int32), ((0, 0), (1, 0)))
            runs = running[:, ends] - running[:, starts]  # (rows, runs)
            line = at[None, :] + rows[:, None]
            counted = np.bincount(line.ravel(), weights=runs.ravel(), minlength=len(TILTS) * lines)
        sums.append(counted.reshape(len(TILTS), lines))
    return (*sums, offsets)


def read_paper(values: np.ndarray) -> Paper:
    """Dark ink on light paper (grey levels) as white ink on black, 0..255: only the sheet,
    squared up, with light and shadow evened out and ruled lines painted over.

    The ink is how much darker each pixel is than the paper's light there, as a share of that
    light: ink in shadow reflects less light, but the same share of it.
    """
    light = paper_light(values)
    sheet = find_sheet(values, light)
    if sheet is None and np.mean(light < SHADE * np.percentile(light, 99)) < SHADED:
        light = gentle_light(values)  # no edge in the light to follow: the lenient estimate
    ink = 255.0 * np.clip(1.0 - values / np.maximum(light, 1.0), 0.0, 1.0)
    if sheet is None:
        inside = np.ones(values.shape, bool)
        return Paper(without_ruled_lines(ink, inside), light, inside)
    tilt = sheet_tilt(sheet)
    ink = ndimage.rotate(np.where(sheet, ink, 0.0), tilt, order=1, cval=0.0)
    inside = ndimage.rotate(sheet.astype(np.float64), tilt, order=1, cval=0.0) > 0.5
    ink = np.where(inside, np.clip(ink, 0, 255), 0.0)
    return Paper(without_ruled_lines(ink, inside), light, sheet, tilt)


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected piece of a mask (empty if the mask is)."""
    pieces, count = ndimage.label(mask)
    if count == 0:
        return mask
    return pieces == 1 + int(np.argmax(np.bincount(pieces.ravel())[1:]))


def _hull_area(mask: np.ndarray) -> float:
    """The area of the convex hull of a mask's pixels (each a unit square)."""
    edge = _edge(mask)
    corners = np.concatenate([edge, edge + [1, 0], edge + [0, 1], edge + [1, 1]])
    try:
        return float(ConvexHull(corners).volume)  # in 2-D, the volume is the area
    except (QhullError, ValueError):  # a line or a point: no area
        return float(mask.sum())


def _edge(mask: np.ndarray) -> np.ndarray:
    """The (row, column) of a mask's pixels on its edge: they alone make its convex hull."""
    return np.argwhere(mask & ~ndimage.binary_erosion(mask))


def _rim(mask: np.ndarray) -> np.ndarray:
    """The mask along the photo's four edges."""
    return np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])


def _with_ink_run_off(sheet: np.ndarray, values: np.ndarray, level: float) -> np.ndarray:
    """The sheet and the dark notches cut into it from its edge. A digit written down to the
    sheet's edge joins the desk: it leaves a notch, not a hole, and was read as desk. A sheet
    is convex, so a notch is on it; but only for a sheet wholly inside the photo, and only a
    notch dark as ink or desk (a bold 0 filling its image looks like a desk round a sheet, its
    hole, whose notches are the grey of a blurred edge)."""
    if not _rim(~sheet).all():
        return sheet
    notches = _notches(sheet)
    if not notches.any():
        return sheet
    gap = np.median(values[sheet]) - np.median(values[~sheet & ~notches])
    return sheet | notches if np.median(values[notches]) <= level - NOTCH_DARK * gap else sheet


def _notches(sheet: np.ndarray) -> np.ndarray:
    """What the sheet's convex hull holds and the sheet does not, wider than a sliver."""
    points = _edge(sheet)
    try:
        corners = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):  # a line or a point
        return np.zeros_like(sheet)
    hull = Image.new("1", sheet.shape[::-1])
    ImageDraw.Draw(hull).polygon([(x, y) for y, x in corners], fill=1, outline=1)
    return ndimage.binary_opening(np.asarray(hull) & ~sheet, iterations=NOTCH)


def _filled(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled (the ink on a sheet of paper)."""
    return ndimage.binary_fill_holes(mask)
