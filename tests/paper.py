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
