"""Pictures of digits drawn straight from the arrays with Pillow: grids, mistakes, filters,
feature maps, the confusion matrix.

A digit is 28x28 pixels; a matplotlib figure per grid cost 0.3-0.5 s to save, Pillow a few
milliseconds, and the command waits for every picture. Each function returns PNG bytes
(the report embeds them) and, given a path, also writes the file atomically.
"""

from __future__ import annotations

import importlib.util
import io
import os
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, ImageOps

from mnist_cnn.atomic import atomic_write_bytes

RIGHT = "#1a7f37"
WRONG = "#cf222e"
INK = "#1b1b1b"
SCALE = 2  # a digit's pixel drawn as 2x2
PAD = 6
CAPTION = 16  # pixels of text above each cell
# Colours of the maps: a diverging one for filters (negative blue, positive red), viridis's
# three stops for feature maps, matplotlib's "Blues" ends for counts.
FILTER_COLOURS = ("#2166ac", "#b2182b", "#f7f7f7")
FEATURE_COLOURS = ("#440154", "#fde725", "#21918c")
COUNT_COLOURS = ("#f7fbff", "#08306b")


@cache
def _font(size: int = 12):
    """DejaVu Sans, the font matplotlib ships (Pillow's own has no arrows), found without
    importing matplotlib; Pillow's if it is not there."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in spec.submodule_search_locations if spec else ():
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def _png(picture: Image.Image, path: str | os.PathLike | None = None) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    if path is not None:
        atomic_write_bytes(path, buffer.getvalue())
    return buffer.getvalue()


def ink_on_paper(image: np.ndarray, scale: int = SCALE) -> Image.Image:
    """An MNIST digit (white ink on black, 0-255) as dark ink on white paper, enlarged."""
    picture = Image.fromarray(255 - np.asarray(image, dtype=np.uint8), "L")
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def coloured(values: np.ndarray, colours, scale: int = SCALE, symmetric: bool = False):
    """A 2-D array of any range through a colour map (`colours`: low, high[, middle])."""
    values = np.asarray(values, dtype=np.float32)
    if symmetric:
        reach = float(np.abs(values).max()) or 1.0
        scaled = (values / reach + 1) / 2
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / ((high - low) or 1.0)
    grey = Image.fromarray(np.round(scaled * 255).astype(np.uint8), "L")
    low, high, *middle = colours
    picture = ImageOps.colorize(grey, low, high, mid=middle[0] if middle else None)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def _grid(cells: list[Image.Image], titles, colours=None, columns: int = 4, title_size=12):
    """Cells in rows of `columns`, each with its caption above, on white."""
    font = _font(title_size)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    widths = [draw.textlength(t, font=font) for t in titles] or [0]
    cell_w = int(max(max(c.width for c in cells), max(widths))) + 2 * PAD
    cell_h = max(c.height for c in cells) + CAPTION + PAD
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (cell_w * min(columns, len(cells)), cell_h * rows + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (cell, text) in enumerate(zip(cells, titles, strict=True)):
        x, y = (i % columns) * cell_w, (i // columns) * cell_h + PAD
        colour = colours[i] if colours else INK
        draw.text((x + cell_w / 2, y), text, fill=colour, font=font, anchor="mt")
        sheet.paste(cell, (x + (cell_w - cell.width) // 2, y + CAPTION))
    return sheet


def _digits(images, titles, colours=None, columns: int = 4, title_size=12) -> Image.Image:
    return _grid([ink_on_paper(image) for image in images], titles, colours, columns, title_size)


def sample_grid(images: np.ndarray, labels: np.ndarray, path=None, classes=None) -> bytes:
    """A 4x4 grid of digits, each titled with its label."""
    names = [str(classes[y]) if classes else str(y) for y in labels[:16]]
    return _png(_digits(images[:16], [f"Label: {n}" for n in names]), path)


def prediction_grid(images, labels, probabilities, path=None, columns: int = 4) -> bytes:
    """Digits titled with the prediction: green where right, red where wrong."""
    predicted = probabilities.argmax(axis=1)
    titles = [
        f"{p} ({probabilities[i, p]:.0%})" + ("" if p == labels[i] else f" ≠ {labels[i]}")
        for i, p in enumerate(predicted)
    ]
    colours = [RIGHT if p == y else WRONG for p, y in zip(predicted, labels, strict=True)]
    return _png(_digits(images, titles, colours, columns), path)


def misclassified(images, labels, probabilities, path=None, columns: int = 8) -> bytes:
    """Wrong answers, titled `true -> predicted (confidence)`, in the order given."""
    predicted = probabilities.argmax(axis=1)
    titles = [
        f"{y}→{p} ({probabilities[i, p]:.0%})"
        for i, (y, p) in enumerate(zip(labels, predicted, strict=True))
    ]
    if not len(images):
        return _png(_note("no mistakes"), path)
    return _png(_digits(images, titles, [WRONG] * len(images), columns), path)


def disagreements(images, titles: list[str], path=None, columns: int = 6) -> bytes:
    """Digits on which runs disagree, each titled with every run's answer."""
    return _png(_digits(images, titles, columns=columns, title_size=10), path)


def digit_prediction(
    image: np.ndarray, digit: int, probability: float, path=None, label=None
) -> bytes:
    """One digit titled `Predicted: N (p=0.99)`, as the tutorials show it."""
    colour = INK if label is None else (RIGHT if label == digit else WRONG)
    title = f"Predicted: {digit} (p={probability:.2f})"
    return _png(_grid([ink_on_paper(image, 6)], [title], [colour], 1, title_size=14), path)


def confused_pairs(pairs, examples: list[np.ndarray], path=None, columns: int = 6) -> bytes:
    """One row per confused pair (true -> predicted, count), with up to `columns` examples."""
    if not pairs:
        return _png(_note("no mistakes"), path)
    labels = [f"{true} → {predicted}\n{count}×" for true, predicted, count in pairs]
    return _png(_labelled_rows(labels, [(e[:columns], None) for e in examples], 70), path)


def changed_mistakes(rows: list[tuple[str, np.ndarray, list[str]]], path=None) -> bytes:
    """One row per change (its name, then digits it read wrong, each titled), as the
    robustness suite saw them after preprocessing."""
    if not any(len(images) for _, images, _ in rows):
        return _png(_note("no mistakes"), path)
    labels = [name for name, _, _ in rows]
    return _png(_labelled_rows(labels, [(images, titles) for _, images, titles in rows], 90), path)


def _labelled_rows(labels: list[str], rows, label_w: int) -> Image.Image:
    """A text label, then a row of digits (titled, if titles are given), per row; the
    labels' column widened to the longest label, so that none runs under the digits."""
    size = 28 * SCALE
    longest = max(_font(13).getlength(line) for label in labels for line in label.split("\n"))
    label_w = max(label_w, int(longest) + 1 + 2 * PAD)
    titled = any(titles for _, titles in rows)
    caption = CAPTION if titled else 0
    row_h = size + caption + PAD
    columns = max(1, max(len(images) for images, _ in rows))
    width = label_w + columns * (size + PAD) + PAD
    sheet = Image.new("RGB", (width, row_h * len(rows) + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, (images, titles)) in enumerate(zip(labels, rows, strict=True)):
        y = PAD + r * row_h
        draw.text((PAD, y + caption + size / 2), label, fill=INK, font=_font(13), anchor="lm")
        for c, image in enumerate(images):
            x = label_w + c * (size + PAD)
            if titles:
                draw.text((x + size / 2, y), titles[c], fill=WRONG, font=_font(10), anchor="mt")
            sheet.paste(ink_on_paper(image), (x, y + caption))
    return sheet


def share_panels(panels: list[tuple[str, list[tuple[str, float]]]], path=None, columns=4) -> bytes:
    """Small line charts of shares (0 to 1) against labelled steps, one per (title, points):
    accuracy against strength, per change. Drawn with Pillow, not matplotlib: the report
    waits for it (about 0.2 s of a figure of twelve axes, here a few milliseconds)."""
    width, height, left, top, bottom = 170, 120, 34, 20, 18
    plot_w, plot_h = width - left - 10, height - top - bottom
    rows = -(-len(panels) // columns)
    sheet = Image.new("RGB", (width * min(columns, len(panels)), height * rows), "white")
    draw = ImageDraw.Draw(sheet)
    small, font = _font(10), _font(12)
    for i, (title, points) in enumerate(panels):
        x0, y0 = (i % columns) * width + left, (i // columns) * height + top
        draw.text((x0 + plot_w / 2, y0 - 4), title, fill=INK, font=font, anchor="mb")
        for share in (0, 0.5, 1):
            y = y0 + plot_h * (1 - share)
            draw.line([(x0, y), (x0 + plot_w, y)], fill="#dddddd" if share else "#888888")
            draw.text((x0 - 3, y), f"{share:.0%}", fill="#555555", font=small, anchor="rm")
        step = plot_w / max(1, len(points) - 1)
        xy = [(x0 + k * step, y0 + plot_h * (1 - value)) for k, (_, value) in enumerate(points)]
        draw.line(xy, fill=FILTER_COLOURS[0], width=2)
        for (x, y), (label, _) in zip(xy, points, strict=True):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=FILTER_COLOURS[0])
            draw.text((x, y0 + plot_h + 6), label, fill="#555555", font=small, anchor="mt")
    return _png(sheet, path)


def filters(kernels: np.ndarray, path=None, columns: int = 8) -> bytes:
    """First-layer convolution kernels (kh, kw, channels, n), each scaled to its own range
    around zero: blue negative, red positive."""
    count = kernels.shape[-1]
    scale = max(1, 40 // max(kernels.shape[:2]))
    cells = [
        coloured(kernels[:, :, 0, i], FILTER_COLOURS, scale, symmetric=True) for i in range(count)
    ]
    sheet = _grid(cells, [""] * count, columns=columns)
    return _png(
        _titled(sheet, f"first layer: {count} filters of {kernels.shape[0]}x{kernels.shape[1]}"),
        path,
    )


def feature_maps(digit: np.ndarray, maps: list[tuple[str, np.ndarray]], path=None) -> bytes:
    """The digit, then up to 8 channels of each convolution's output (rows), for one digit."""
    shown = 8
    rows = [_grid([ink_on_paper(digit)], ["input"], columns=1)]
    for name, values in maps:
        scale = max(1, 56 // values.shape[0])
        cells = [
            coloured(values[:, :, c], FEATURE_COLOURS, scale)
            for c in range(min(shown, values.shape[-1]))
        ]
        row = _grid(cells, [""] * len(cells), columns=shown)
        rows.append(
            _titled(row, f"{name} {values.shape[0]}x{values.shape[1]}x{values.shape[2]}", 11)
        )
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    return _png(sheet, path)


def count_colour(count: int, largest: int) -> tuple[int, int, int]:
    """The colour of a count on a log scale from white (0) to dark blue (`largest`)."""
    share = np.log1p(count) / (np.log1p(largest) or 1.0)
    low, high = (np.array(ImageColor.getrgb(c)) for c in COUNT_COLOURS)
    return tuple(int(v) for v in np.round(low + (high - low) * share))


def ink_on(colour: tuple[int, int, int]) -> str:
    """White text on a dark cell, our ink on a light one."""
    return "#ffffff" if sum(colour) < 3 * 140 else INK


def confusion_matrix(matrix, path=None) -> bytes:
    """The confusion matrix as coloured cells with counts, true classes as rows."""
    matrix = np.asarray(matrix)
    classes, cell, margin = len(matrix), 34, 40
    sheet = Image.new(
        "RGB", (margin + classes * cell + PAD, margin + classes * cell + PAD), "white"
    )
    draw = ImageDraw.Draw(sheet)
    font, largest = _font(11), int(matrix.max())
    for (r, c), n in np.ndenumerate(matrix):
        x, y = margin + c * cell, margin + r * cell
        colour = count_colour(int(n), largest)
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour)
        if n:
            draw.text(
                (x + cell / 2, y + cell / 2),
                str(n),
                fill=ink_on(colour),
                font=font,
                anchor="mm",
            )
    for i in range(classes):
        draw.text(
            (margin + i * cell + cell / 2, margin - 4), str(i), fill=INK, font=font, anchor="md"
        )
        draw.text(
            (margin - 6, margin + i * cell + cell / 2), str(i), fill=INK, font=font, anchor="rm"
        )
    draw.text((margin, 4), "predicted →", fill=INK, font=font)
    draw.text((4, margin - 16), "true ↓", fill=INK, font=font)
    return _png(sheet, path)


def _titled(picture: Image.Image, title: str, size: int = 12) -> Image.Image:
    sheet = Image.new("RGB", (picture.width, picture.height + size + PAD), "white")
    ImageDraw.Draw(sheet).text((PAD, PAD // 2), title, fill=INK, font=_font(size))
    sheet.paste(picture, (0, size + PAD))
    return sheet


def _note(text: str) -> Image.Image:
    sheet = Image.new("RGB", (160, 40), "white")
    ImageDraw.Draw(sheet).text((PAD, 12), text, fill=INK, font=_font(12))
    return sheet
