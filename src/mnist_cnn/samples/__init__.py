"""Pictures that come with the package, for trying `predict` before you have a photo of
your own: `mnist-cnn predict RUN --sample` reads them all, `samples:NAME` one.

They are package data, found with importlib.resources, so a pip install anywhere has them,
not only a checkout. A leaf: it imports nothing of ours, and no NumPy or Keras, because
`predict --help` lists the names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PREFIX = "samples:"
SUFFIXES = (".png", ".jpg")


class SampleError(ValueError):
    """`samples:NAME` names no sample (an input error: exit 2)."""


def _files() -> dict[str, Path]:
    """Each sample's name (its file name less the suffix) and its file. pip unpacks wheels,
    so each is a real path that PIL, Ray and --show can use like any other file."""
    folder = resources.files(__name__)
    return {
        Path(f.name).stem: Path(str(f))
        for f in folder.iterdir()
        if Path(f.name).suffix.lower() in SUFFIXES
    }


def names() -> list[str]:
    return sorted(_files())


def path(name: str) -> Path:
    """The file of the sample called `name`; SampleError, naming them all, if there is none."""
    files = _files()
    if name not in files:
        raise SampleError(
            f"no sample called {name or repr(name)}; the samples are: " + ", ".join(sorted(files))
        )
    return files[name]


def from_input(item: str) -> Path | None:
    """The file an input `samples:NAME` stands for; None for any other input."""
    return path(item[len(PREFIX) :]) if item.startswith(PREFIX) else None


def shown_name(item) -> str:
    """How an input is named in the output: a sample as `samples:NAME` (not a path inside
    site-packages), anything else as given."""
    if isinstance(item, Path):
        for name, file in _files().items():
            if item == file:
                return PREFIX + name
    return str(item)
