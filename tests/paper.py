"""Digits on paper, made from MNIST digits the way people make them: for the tests that read
people's own images (and benchmarks/finetune.py).

`photograph` puts a digit on unevenly lit paper, anywhere, at any size. `in_a_hand` writes it
the way one person would, every digit alike: slanted, narrow, with a heavy felt pen; a model
trained on MNIST reads such a hand less well, and fine-tuning on a few hundred of them helps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def photograph(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit as dark ink on unevenly lit paper: off-centre, scaled, tilted, noisy."""
    scale = rng.uniform(3, 15)
    side = int(28 * scale)
    ink = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    ink = ink.rotate(rng.uniform(-6, 6), resample=Image.BICUBIC, expand=True)
    ink = np.asarray(ink, dtype=np.float64) / 255.0
    height = int(rng.integers(max(100, ink.shape[0] + 4), max(600, ink.shape[0] + 4) + 1))
    width = int(rng.integers(max(100, ink.shape[1] + 4), max(600, ink.shape[1] + 4) + 1))
    rows, cols = np.mgrid[0:height, 0:width]
    light = (
        rng.uniform(170, 235)
        + rng.uniform(-40, 40) * cols / width
        + rng.uniform(-40, 40) * rows / height
    )
    paper = np.clip(light, 90, 255)
    top = int(rng.integers(0, height - ink.shape[0] + 1))
    left = int(rng.integers(0, width - ink.shape[1] + 1))
    coverage = np.zeros((height, width))
    coverage[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    photo = paper * (1 - coverage * rng.uniform(0.6, 0.85)) + rng.normal(
        0, rng.uniform(2, 6), (height, width)
    )
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))


def in_a_hand(
    digit: np.ndarray, rng: np.random.Generator, slant=0.5, narrow=0.75, scale: int = 8
) -> Image.Image:
    """An MNIST digit as one person writes every digit: leaning right by `slant` (a shear),
    `narrow` of its width, with a felt pen about a third of the digit's stroke wider, in dark
    ink on light paper, `scale` times MNIST's size."""
    side = 28 * scale
    pen = scale + 1 if scale % 2 == 0 else scale  # odd, as MaxFilter needs: 9 pixels at 8x
    ink = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    ink = ink.resize((int(side * narrow), side), Image.BICUBIC)
    width, height = ink.size
    lean = int(slant * height)
    ink = ink.transform(
        (width + lean, height), Image.AFFINE, (1, slant, -lean, 0, 1, 0), Image.BICUBIC
    )
    ink = np.asarray(ink.filter(ImageFilter.MaxFilter(pen)), dtype=np.float64) / 255.0
    margin = 5 * scale
    paper = rng.uniform(200, 240) + rng.normal(
        0, 3, (height + 2 * margin, width + lean + 2 * margin)
    )
    coverage = np.zeros_like(paper)
    coverage[margin : margin + ink.shape[0], margin : margin + ink.shape[1]] = ink
    page = paper * (1 - coverage * rng.uniform(0.7, 0.9))
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray, render, seed: int) -> list:
    """FOLDER/<digit>/<n>.jpg for each digit, rendered by `render(digit, rng)`; the files."""
    rng = np.random.default_rng(seed)
    files = []
    for n, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = folder / str(int(label)) / f"{n:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        render(image, rng).save(path, "JPEG", quality=int(rng.integers(70, 95)))
        files.append(path)
    return files


# --- photos as people take them: a sheet on a desk, a hard shadow, ruled paper --------------


def _written(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's ink coverage (0..1) at `side` x `side` pixels."""
    ink = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    return np.asarray(ink, dtype=np.float64) / 255.0


def _photo(page: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A page of grey levels with a camera's noise, as 8-bit grey."""
    noisy = page + rng.normal(0, rng.uniform(2, 5), page.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def on_a_desk(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit written on a sheet of paper that lies at an angle (up to 25 degrees) on a
    darker, grained desk that shows on two or more sides, lit a little unevenly."""
    width, height = int(rng.integers(420, 600)), int(rng.integers(340, 460))
    rows, cols = np.mgrid[0:height, 0:width]
    grain = rng.uniform(0, np.pi)
    along = cols * np.cos(grain) + rows * np.sin(grain)
    across = -cols * np.sin(grain) + rows * np.cos(grain)
    desk = (
        rng.uniform(60, 120)
        + rng.uniform(6, 14) * np.sin(across / rng.uniform(3, 8) + 2 * np.sin(along / 40))
        + rng.normal(0, 4, (height, width))
    )
    sheet_w = int(width * rng.uniform(0.5, 0.65))
    sheet_h = int(height * rng.uniform(0.55, 0.7))
    paper = np.full((sheet_h, sheet_w), rng.uniform(195, 240))
    side = int(min(sheet_w, sheet_h) * rng.uniform(0.45, 0.7))
    top = int(rng.integers(0, sheet_h - side + 1))
    left = int(rng.integers(0, sheet_w - side + 1))
    paper[top : top + side, left : left + side] *= 1 - _written(digit, side) * rng.uniform(
        0.6, 0.85
    )
    angle = rng.uniform(8, 25) * rng.choice([-1, 1])
    sheet = Image.fromarray(paper.astype(np.float32), "F").rotate(angle, Image.BICUBIC, True)
    mask = Image.new("L", (sheet_w, sheet_h), 255).rotate(angle, Image.BICUBIC, True)
    placed = Image.fromarray(desk.astype(np.float32), "F")
    at = (
        (width - sheet.width) // 2 + int(rng.integers(-width // 12, width // 12 + 1)),
        (height - sheet.height) // 2 + int(rng.integers(-height // 12, height // 12 + 1)),
    )
    placed.paste(sheet, at, mask)
    light = 1 + rng.uniform(-0.12, 0.12) * (cols / width - 0.5) * 2
    return _photo(np.asarray(placed) * light, rng)


def _plain_page(digit: np.ndarray, rng: np.random.Generator, lines=None) -> np.ndarray:
    """A digit 5-9 times MNIST's size near the middle of a page; `lines(rows, cols, side)`
    gives the ruling's darkening (0..1) for the page."""
    side = int(28 * rng.uniform(5, 9))
    height, width = side + int(rng.integers(80, 240)), side + int(rng.integers(80, 320))
    top = int(rng.integers(20, height - side - 20))
    left = int(rng.integers(20, width - side - 20))
    rows, cols = np.mgrid[0:height, 0:width]
    page = np.full((height, width), rng.uniform(200, 240))
    if lines is not None:
        page *= 1 - lines(rows, cols, side)
    page[top : top + side, left : left + side] *= 1 - _written(digit, side) * rng.uniform(0.6, 0.85)
    return page


def in_a_shadow(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit on paper with the hard edge of a shadow across it: one side of a straight
    line through the digit is 40-60% darker (a hand, a phone held over the page)."""
    page = _plain_page(digit, rng)
    height, width = page.shape
    rows, cols = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, np.pi)
    centre_row, centre_col = ndimage_centre(page)
    distance = (rows - centre_row) * np.cos(angle) - (cols - centre_col) * np.sin(angle)
    distance += rng.uniform(-0.1, 0.1) * min(height, width)
    edge = np.clip(distance / rng.uniform(0.5, 2.0) + 0.5, 0, 1)  # a 1-2 pixel penumbra
    return _photo(page * (1 - rng.uniform(0.4, 0.6) * edge), rng)


def ndimage_centre(page: np.ndarray) -> tuple[float, float]:
    """Where the ink's centre of mass lies on a page of grey levels."""
    darkness = page.max() - page
    total = darkness.sum()
    rows, cols = np.mgrid[0 : page.shape[0], 0 : page.shape[1]]
    return float((rows * darkness).sum() / total), float((cols * darkness).sum() / total)


def _ruling(spacing: float, width: float, tilt: float, rows, cols, across: bool) -> np.ndarray:
    """Coverage (0..1) of printed lines `spacing` apart, `width` wide, tilted by `tilt`."""
    position = (cols if across else rows) * np.cos(tilt) + (rows if across else -cols) * np.sin(
        tilt
    )
    distance = np.abs((position + spacing / 2) % spacing - spacing / 2)
    return np.clip(width / 2 + 0.5 - distance, 0, 1)


def on_ruled_paper(digit: np.ndarray, rng: np.random.Generator, squared=False) -> Image.Image:
    """An MNIST digit on lined paper (with a margin line), or on squared paper (`squared`):
    thin printed lines, fainter than the pen, a digit spanning two to four of them; the page
    photographed up to 3 degrees askew."""
    tilt = np.radians(rng.uniform(-3, 3))
    width = rng.uniform(1.5, 3.0)
    darkness = rng.uniform(0.35, 0.55)

    def lines(rows, cols, side):
        spacing = side * rng.uniform(0.25, 0.45)
        cover = _ruling(spacing, width, tilt, rows, cols, across=False)
        if squared:
            cover = np.maximum(cover, _ruling(spacing, width, tilt, rows, cols, across=True))
        else:  # a margin line, a little way in from the left
            margin = cols * np.cos(tilt) + rows * np.sin(tilt) - rng.uniform(10, 40)
            cover = np.maximum(cover, np.clip(width / 2 + 0.5 - np.abs(margin), 0, 1))
        return darkness * cover

    return _photo(_plain_page(digit, rng, lines), rng)


def on_squared_paper(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit on squared (grid) paper; see `on_ruled_paper`."""
    return on_ruled_paper(digit, rng, squared=True)


def on_lined_paper(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit on lined paper with a margin line; see `on_ruled_paper`."""
    return on_ruled_paper(digit, rng, squared=False)
