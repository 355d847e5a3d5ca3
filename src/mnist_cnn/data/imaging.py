"""Any image of a handwritten digit to an MNIST-style 28x28 digit.

Models trained on MNIST fail on people's own digits mostly because the input does not look
like MNIST. MNIST digits are white ink on black, fitted into a 20x20 box with their aspect
ratio kept, anti-aliased, and placed in 28x28 so that their centre of mass sits at the
centre. `to_mnist` repeats those steps on any image (a phone photo of paper, a canvas, a
scan), and keeps each intermediate image so a person can see what the model saw.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from mnist_cnn.data import photos
from mnist_cnn.data.photos import otsu

SIZE = 28  # MNIST's canvas
BOX = 20  # MNIST fits each digit into a 20x20 box
CENTRE = 14.0  # where MNIST's centres of mass sit (measured: 14.00, 14.01 over 20k digits)
MAX_PIXELS = 64_000_000  # anything larger is refused before it is decoded (decompression bombs)
MIN_CONTRAST = 40  # ink must stand this far (of 255) above the background, else "no digit"
MIN_INK_PIXELS = 4
PAPER_PERCENTILE = 10  # the background's level; a bold digit cropped close is half ink
DENOISE_FRACTION = 160  # strokes are found after a blur of sigma = the shorter side / this
SPECK = 0.08  # in a row of digits, ink pieces under this share of the largest piece are dirt
BORDER_SLIVER = 0.2  # ink on the border under this share of the largest piece is not the digit
SAME_DIGIT_OVERLAP = 0.5  # pieces overlapping this much horizontally belong to one digit
SEVERAL_HEIGHT, SEVERAL_GAP = 0.6, 0.1  # a row is clearly several digits (clearly_several)
FRAGMENT = 0.5  # a group less than half as tall as the median digit is a broken stroke
# Large photos are reduced to this side before the pixel work: one digit to 360 px (quicker, and
# the tests' photos read as well or better), a row of digits to 400 (each digit is a part of
# it: 360 px read 189 of the 200 test numbers, 400 px 192). Measured in docs/handwriting.md.
DIGIT_SIDE, ROW_SIDE = 360, 400
# Scans from other collections (measured on validation digits: benchmarks/preprocessing.py).
BOX_FILLED_WIDTH: float | None = None  # a digit filling its image edge to edge: width/height
BOX_FILLED_SPAN = 0.9  # ... its ink spans this share of the image, across and down
BINARY_SMOOTHING: float | None = None  # a black-and-white bitmap: blur sigma, in its cells
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageError(Exception):
    """An input that is not a usable image of a digit; the message says which and why."""

    def reason(self, name: str) -> str:
        """The message without the "NAME: " in front, for a line that names the input itself."""
        message = str(self)
        return message[len(name) + 2 :] if message.startswith(f"{name}: ") else message


@dataclass
class Preprocessed:
    """The MNIST-style digit (uint8, 28x28, white on black) and the steps that made it."""

    image: np.ndarray
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    box: tuple[int, int, int, int] | None = None  # a row's digit: (top, left, bottom, right)
    digits_seen: int = 1  # to_mnist: more than 1 when the image is clearly a row of digits


Source = str | os.PathLike | bytes | Image.Image | np.ndarray


def open_image(source: Source, name: str | None = None, side: int | None = None) -> Image.Image:
    """Open a path, bytes, PIL image or array as a PIL image, refusing bombs before decoding.
    A JPEG twice `side` (the size it is reduced to) or more is decoded small, in grey, still
    over `side` (Pillow's `draft`): a phone's photo decodes in a fraction of the time."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        return _from_array(source, label)
    else:
        try:
            stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb")
        except OSError as exc:
            raise ImageError(f"{label}: cannot read ({exc.strerror})") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream)
        except (
            UnidentifiedImageError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise ImageError(f"{label}: not an image (or an unsupported format)") from None
            raise ImageError(f"{label}: declared size is too large to decode safely") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{label}: not a readable image ({exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label}: {width}x{height} is larger than {MAX_PIXELS // 1_000_000} megapixels; "
            "refused before decoding (shrink it first)"
        )
    if width < 1 or height < 1:
        raise ImageError(f"{label}: the image is empty ({width}x{height})")
    if side and image.format == "JPEG" and max(width, height) >= 2 * side:
        scale = side / max(width, height)
        image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{label}: the image data is damaged or truncated ({exc})") from None
    return image


def declared_pixels(data: bytes) -> int:
    """The pixel count an encoded image's header declares (0 if it has no readable header).

    Reads the header only, so a caller can judge the cost of decoding before paying it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(data)).size
    except Exception:  # not an image: to_mnist will say so, cheaply
        return 0
    return width * height


def _from_array(array: np.ndarray, label: str) -> Image.Image:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.size == 0:
        raise ImageError(f"{label}: expected a 2-D grey or 3-D colour array, got {array.shape}")
    if array.dtype == np.uint8:
        return Image.fromarray(array)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageError(f"{label}: the array holds NaN or infinite values")
    top = 1.0 if values.max() <= 1.0 else (255.0 if values.max() <= 255 else 65535.0)
    return Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8))


def grey(image: Image.Image) -> np.ndarray:
    """Float grey levels in 0..255; transparent pixels become background, 16-bit is scaled."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        return np.clip(values / top * 255.0, 0, 255)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float64)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3] / 255.0
    levels = np.asarray(Image.fromarray(rgba[..., :3].astype(np.uint8)).convert("L"), np.float64)
    if alpha.max() == 0:
        return np.zeros(alpha.shape)
    # The background is whatever the visible ink is not: light behind dark ink, and vice versa.
    ink_level = np.average(levels, weights=alpha + 1e-12)
    background = 255.0 if ink_level < 128 else 0.0
    return alpha * levels + (1 - alpha) * background


def _reduce(values: np.ndarray, side: int) -> np.ndarray:
    """Shrink a large photo (area-averaging) so the pixel work stays cheap."""
    scale = side / max(values.shape)
    if scale >= 1:
        return values
    size = (max(1, round(values.shape[1] * scale)), max(1, round(values.shape[0] * scale)))
    return np.asarray(Image.fromarray(values.astype(np.float32), "F").resize(size, Image.BOX))


def ink(values: np.ndarray) -> photos.Paper:
    """White-on-black ink in 0..255 with the (possibly uneven) background removed.

    Dark ink on light paper is read by `photos.read_paper` (the sheet, light and shadow,
    ruled lines); light ink on a dark ground has its background subtracted.
    """
    if photos.is_light_paper(values):
        return photos.read_paper(values)
    height, width = values.shape
    # Background: erase the ink with a minimum filter wider than a stroke, then smooth. A
    # third of the page: a digit that fills it has strokes a sixth of the page wide.
    window = max(3, min(height, width) // 3)
    background = ndimage.uniform_filter(ndimage.minimum_filter(values, size=window), size=window)
    strokes = np.clip(values - background, 0, None)
    return photos.Paper(strokes, background, np.ones(values.shape, bool))


def ink_mask(strokes: np.ndarray, label: str = "image") -> tuple[np.ndarray, float]:
    """Which pixels are ink, and the threshold; "no digit found" if nothing stands out."""
    background, bright = np.percentile(strokes, [PAPER_PERCENTILE, 99.9])
    contrast = bright - background
    if contrast < MIN_CONTRAST:
        raise ImageError(f"{label}: no digit found (the image is blank or too faint)")
    # The ink is the pixels over Otsu's threshold that lie on strokes found after a blur of
    # a 160th of the image: a grainy page's single pixels then stay under the blurred
    # threshold, while strokes, many pixels wide, keep their level.
    threshold = otsu(strokes)
    smooth = ndimage.gaussian_filter(strokes, min(strokes.shape) / DENOISE_FRACTION)
    mask = (strokes >= threshold) & ndimage.binary_dilation(smooth >= otsu(smooth))
    if mask.sum() < MIN_INK_PIXELS:
        raise ImageError(f"{label}: no digit found (too little ink)")
    return mask, threshold


def fit_and_centre(strokes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale cropped ink into 20x20 (aspect kept, anti-aliased) and centre its mass in 28x28."""
    levels = np.clip((strokes - threshold / 2) / max(strokes.max() - threshold / 2, 1e-6), 0, 1)
    height, width = levels.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    fitted = np.asarray(
        Image.fromarray((levels * 255).astype(np.float32), "F").resize(size, Image.LANCZOS)
    )
    fitted = np.clip(fitted, 0, 255)
    canvas = np.zeros((SIZE, SIZE), dtype=np.float64)
    top, left = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = fitted
    row, col = ndimage.center_of_mass(canvas)
    shift = (round(CENTRE - row), round(CENTRE - col))
    centred = ndimage.shift(canvas, shift, order=0, mode="constant", cval=0.0)
    return fitted, np.clip(np.rint(centred), 0, 255).astype(np.uint8)


def to_mnist(source: Source, name: str | None = None) -> Preprocessed:
    """Turn any image of one digit into an MNIST-style 28x28 uint8 digit.

    Steps (each kept in `steps`): grey, light (the paper's or background's level), paper
    (the sheet read, True inside), ink (polarity fixed, background removed, squared up to the
    sheet, ruled lines painted over), crop (to the ink), fitted (20x20 box), and the final
    centred 28x28 image.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    image = open_image(source, label, DIGIT_SIDE)
    grey_levels = _smoothed_if_binary(_reduce(grey(image), DIGIT_SIDE))
    paper = ink(grey_levels)
    mask, threshold = ink_mask(paper.ink, label)
    _, groups, boxes = _digit_groups(mask)
    row = [_box_of(group, boxes) for group in groups]  # a row of digits, if it is one
    mask = _without_specks(mask, SPECK / 4) & ~_border_slivers(mask)  # a 5's bar is kept
    crop = _reproportioned(_ink_crop(paper.ink, mask), mask.shape)
    fitted, digit = fit_and_centre(crop, threshold)
    steps = {
        "grey": grey_levels,
        "light": paper.light,
        "paper": paper.sheet,
        "ink": paper.ink,
        "crop": crop,
        "fitted": fitted,
        "mnist": digit,
    }
    return Preprocessed(
        image=digit, steps=steps, digits_seen=len(row) if clearly_several(row) else 1
    )


def cell_size(values: np.ndarray) -> int:
    """The side of a bitmap's enlarged pixels: every run of equal values along the rows and
    columns is a whole number of them (1 for an image that is not an enlarged bitmap)."""
    runs = []
    for lines in (values, values.T):
        rows, cols = np.nonzero(np.diff(lines, axis=1) != 0)
        runs.append((cols[1:] - cols[:-1])[rows[1:] == rows[:-1]])  # between two changes
    lengths = np.concatenate(runs).astype(np.int64)
    return int(np.gcd.reduce(lengths)) if len(lengths) else 1


def _smoothed_if_binary(values: np.ndarray) -> np.ndarray:
    """A coarse black-and-white bitmap (two levels, pixels enlarged) blurred by
    BINARY_SMOOTHING of its cells, so that its staircase edges do not read as strokes."""
    if BINARY_SMOOTHING is None or len(np.unique(values[:: max(1, len(values) // 64)])) > 2:
        return values
    if len(np.unique(values)) > 2 or (cell := cell_size(values)) < 2:
        return values
    return ndimage.gaussian_filter(values, BINARY_SMOOTHING * cell)


def _reproportioned(crop: np.ndarray, image: tuple[int, int]) -> np.ndarray:
    """A digit stretched to fill its box (its ink spanning the image edge to edge) brought
    back to BOX_FILLED_WIDTH of its height: the box's proportions are not the digit's."""
    height, width = crop.shape
    spans = height >= BOX_FILLED_SPAN * image[0] and width >= BOX_FILLED_SPAN * image[1]
    if BOX_FILLED_WIDTH is None or not spans or width <= BOX_FILLED_WIDTH * height:
        return crop
    size = (max(1, round(BOX_FILLED_WIDTH * height)), height)
    return np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize(size, Image.BOX))


def _ink_crop(strokes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The strokes in the box around `mask`, zero away from it (dirt beside the digit)."""
    rows, cols = np.nonzero(mask)
    window = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return np.where(ndimage.binary_dilation(mask, iterations=2), strokes, 0.0)[window]


def _without_specks(mask: np.ndarray, share: float) -> np.ndarray:
    """The mask without ink pieces smaller than `share` of its largest piece (dirt, grain)."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(pieces.ravel())[1:]
    return np.isin(pieces, 1 + np.flatnonzero(sizes >= share * sizes.max()))


def _border_slivers(mask: np.ndarray) -> np.ndarray:
    """Small ink pieces on the photo's border (under a fifth of the largest piece): where a
    shadow's edge meets the border at a slant, the paper's light is not followed into the
    corner. A digit cropped tightly touches the border too, but it is the largest piece."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    rim = np.unique(np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]]))
    small = rim[(rim > 0) & (sizes[rim] < BORDER_SLIVER * sizes.max())]
    return np.isin(pieces, small)


def split_digits(source: Source, name: str | None = None) -> list[Preprocessed]:
    """A row of digits (a house number, "2026" on paper) as MNIST-style digits, left to right.

    Digits are told apart by their connected ink. Pieces that sit above one another (the
    bar of a 5, a broken 4) are joined, and specks are dropped.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    grey_levels = _reduce(grey(open_image(source, label, ROW_SIDE)), ROW_SIDE)
    strokes = ink(grey_levels).ink
    mask, threshold = ink_mask(strokes, label)
    pieces, groups, boxes = _digit_groups(mask)
    digits = []
    for group in groups:
        crop = _ink_crop(strokes, np.isin(pieces, [i + 1 for i in group]))
        fitted, digit = fit_and_centre(crop, threshold)
        steps = {"crop": crop, "fitted": fitted, "mnist": digit}
        digits.append(Preprocessed(image=digit, steps=steps, box=_box_of(group, boxes)))
    return digits


def _digit_groups(mask: np.ndarray) -> tuple[np.ndarray, list[list[int]], list]:
    """The ink's pieces (labelled), grouped into digits left to right, and each piece's box."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = ndimage.sum(mask, pieces, index=range(1, count + 1))
    boxes = ndimage.find_objects(pieces)
    kept = [i for i in range(count) if sizes[i] >= SPECK * sizes.max()]
    groups: list[list[int]] = []
    for i in sorted(kept, key=lambda i: boxes[i][1].start):
        if groups and _overlap(boxes, groups[-1], i) >= SAME_DIGIT_OVERLAP:
            groups[-1].append(i)
        else:
            groups.append([i])
    return pieces, _fold_fragments(groups, boxes), boxes


def _box_of(group: list[int], boxes) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) around a group of pieces."""
    rows, cols = [boxes[i][0] for i in group], [boxes[i][1] for i in group]
    return (
        min(r.start for r in rows),
        min(c.start for c in cols),
        max(r.stop for r in rows),
        max(c.stop for c in cols),
    )


def clearly_several(row: list[tuple[int, int, int, int]]) -> bool:
    """Whether digits' boxes, left to right, are a row of digits beyond doubt: two or more,
    none much shorter than the tallest, with clear gaps between them. A digit broken in two
    (a 6 whose loop came apart from its stem under a shadow) has no such gap."""
    if len(row) < 2:
        return False
    heights = [bottom - top for top, _, bottom, _ in row]
    gaps = [b[1] - a[3] for a, b in zip(row, row[1:], strict=False)]
    alike = min(heights) >= SEVERAL_HEIGHT * max(heights)
    return alike and min(gaps) >= SEVERAL_GAP * float(np.median(heights))


def _fold_fragments(groups: list[list[int]], boxes) -> list[list[int]]:
    """Join a group far shorter than a typical digit (a detached stroke) to its nearest one.

    Height, not ink, tells a fragment: a "1" has little ink but stands as tall as a "0".
    """
    while len(groups) > 1:
        heights = [
            max(boxes[i][0].stop for i in g) - min(boxes[i][0].start for i in g) for g in groups
        ]
        smallest = int(np.argmin(heights))
        if heights[smallest] >= FRAGMENT * np.median(heights):
            break

        def centre(g: list[int]) -> float:
            return (min(boxes[i][1].start for i in g) + max(boxes[i][1].stop for i in g)) / 2

        others = [k for k in range(len(groups)) if k != smallest]
        nearest = min(others, key=lambda k: abs(centre(groups[k]) - centre(groups[smallest])))
        fragment = groups.pop(smallest)
        nearest -= nearest > smallest  # the groups after the fragment moved down one
        groups[nearest] = sorted(groups[nearest] + fragment)
        groups.sort(key=lambda g: min(boxes[i][1].start for i in g))
    return groups


def _overlap(boxes, group: list[int], piece: int) -> float:
    """How much of the narrower of (group, piece) their column ranges share."""
    left = min(boxes[i][1].start for i in group)
    right = max(boxes[i][1].stop for i in group)
    p_left, p_right = boxes[piece][1].start, boxes[piece][1].stop
    shared = min(right, p_right) - max(left, p_left)
    return max(0, shared) / max(1, min(right - left, p_right - p_left))
