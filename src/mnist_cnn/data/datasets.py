"""Datasets in the IDX format: read, write, download into a verified cache, load.

MNIST and its drop-in cousins (Fashion-MNIST, KMNIST) ship as four gzipped IDX files.
`load_idx(name)` returns them exactly as `keras.datasets.mnist.load_data()` does, but
from a cache we control: every file is sha256-verified, downloads are atomic and fall
through the mirrors in order, and a folder that already holds the files needs no network.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cnn.atomic import FILE_MODE, atomic_write_bytes

DATA_ENV = "MNIST_CNN_DATA"
OFFLINE_ENV = "MNIST_CNN_OFFLINE"
DEFAULT_CACHE = Path("~/.cache/mnist-cnn").expanduser()
DOWNLOAD_TIMEOUT_S = 30
CHUNK_BYTES = 1 << 16
BAR = {"unit": "B", "unit_scale": True, "leave": False}  # a download's progress bar

# IDX type byte -> big-endian NumPy dtype (Y. LeCun's format description).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}


class DatasetError(Exception):
    """A dataset could not be read, verified or fetched; the message says what to do."""


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: its name on the mirrors and its published sha256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset in the IDX layout: four files and the mirrors that serve them, in order."""

    name: str
    train_images: DataFile
    train_labels: DataFile
    test_images: DataFile
    test_labels: DataFile
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]

    @property
    def files(self) -> tuple[DataFile, ...]:
        return (self.train_images, self.train_labels, self.test_images, self.test_labels)


DIGITS = tuple(str(d) for d in range(10))

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            train_images=DataFile(
                "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            train_labels=DataFile(
                "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            test_images=DataFile(
                "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            test_labels=DataFile(
                "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
            mirrors=(
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ),
            classes=DIGITS,
        ),
        DatasetSpec(
            name="fashion-mnist",
            train_images=DataFile(
                "train-images-idx3-ubyte.gz",
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
            train_labels=DataFile(
                "train-labels-idx1-ubyte.gz",
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
            test_images=DataFile(
                "t10k-images-idx3-ubyte.gz",
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
            test_labels=DataFile(
                "t10k-labels-idx1-ubyte.gz",
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
            mirrors=(
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            ),
            classes=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
        ),
        DatasetSpec(
            name="kmnist",
            train_images=DataFile(
                "train-images-idx3-ubyte.gz",
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            ),
            train_labels=DataFile(
                "train-labels-idx1-ubyte.gz",
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            ),
            test_images=DataFile(
                "t10k-images-idx3-ubyte.gz",
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            ),
            test_labels=DataFile(
                "t10k-labels-idx1-ubyte.gz",
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
            ),
            mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
            classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        ),
    )
}


# --- IDX ---------------------------------------------------------------------------------


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already un-gzipped) into a native-endian array."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{source}: not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DatasetError(f"{source}: unknown IDX data type 0x{code:02x}")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise DatasetError(f"{source}: IDX header is truncated")
    shape = struct.unpack(f">{ndim}I", data[4:header_end])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise DatasetError(
            f"{source}: IDX body has {len(data) - header_end} bytes, its header "
            f"{tuple(shape)} promises {expected}; the file is corrupt"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped (by its `.gz` name) or plain."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path}: cannot read ({exc}); delete it to fetch it again") from exc
    return parse_idx(data, str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzipped when the name ends in `.gz`), atomically."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        raise DatasetError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, _IDX_CODES[native], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    body = header + array.astype(native.newbyteorder(">")).tobytes()
    if str(path).endswith(".gz"):
        body = gzip.compress(body, mtime=0)
    atomic_write_bytes(Path(path), body)


# --- cache and download ------------------------------------------------------------------


FOLDER_PREFIX = "folder:"  # a folder of the user's own labelled images (folders.py)


def folder_of(name: str) -> Path | None:
    """The folder behind a `folder:PATH` dataset name; None for a catalogue dataset."""
    return Path(name[len(FOLDER_PREFIX) :]) if name.startswith(FOLDER_PREFIX) else None


def dataset_name(text: str) -> str:
    """A dataset as given on the command line, checked: a catalogue name, or folder:PATH
    (made absolute, so that a run read from elsewhere finds it)."""
    folder = folder_of(text)
    if folder is None:
        get_spec(text)
        return text
    if not str(folder).strip():
        raise DatasetError("folder: needs a path, as in --dataset folder:my-digits")
    return FOLDER_PREFIX + str(folder.expanduser().resolve())


def class_names(name: str) -> tuple[str, ...] | None:
    """The names of a dataset's classes; None where the classes are the digits themselves."""
    if folder_of(name) is not None:
        return None
    classes = get_spec(name).classes
    return None if classes == DIGITS else classes


def get_spec(name: str) -> DatasetSpec:
    """The catalogue entry for a dataset name, or a clear error listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {known}") from None


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: `data_dir`, else $MNIST_CNN_DATA, else ~/.cache/mnist-cnn."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return DEFAULT_CACHE


def dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) a dataset's four files.

    That is ROOT/NAME/; a ROOT that itself holds all four files is accepted as well, so
    pointing at the folder of files works as people expect. A folder: dataset is its folder.
    """
    if folder_of(name) is not None:
        return folder_of(name)
    spec = get_spec(name)
    root = data_root(data_dir)
    if all((root / f.name).is_file() for f in spec.files) and not (root / name).is_dir():
        return root
    return root / name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    file: DataFile, dest_dir: Path, mirrors: Sequence[str], progress: bool = True
) -> Path:
    """Fetch one file from the first mirror that serves it with the right sha256.

    The bytes go to a temporary file beside the target and are renamed into place only
    once verified, so an interrupted or corrupt download never leaves a file behind.
    """
    from tqdm import tqdm

    created = [folder for folder in (dest_dir, *dest_dir.parents) if not folder.exists()]
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / file.name
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + file.name
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{file.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                size = int(length) if length else None
                bar = tqdm(total=size, desc=file.name, file=sys.stderr, disable=not progress, **BAR)
                with bar, os.fdopen(fd, "wb") as out:
                    for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
                    os.fchmod(out.fileno(), FILE_MODE)
            if digest.hexdigest() != file.sha256:
                failures.append(f"{url}: sha256 {digest.hexdigest()[:12]}… != {file.sha256[:12]}…")
                tmp.unlink(missing_ok=True)
                continue
            os.replace(tmp, target)
            return target
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            failures.append(f"{url}: {reason}")
            tmp.unlink(missing_ok=True)
    for folder in created:  # innermost first: a failure leaves no empty folder behind
        with contextlib.suppress(OSError):
            folder.rmdir()
    raise DatasetError(
        f"could not fetch {file.name} into {dest_dir} ({'; '.join(failures) or 'no mirrors'}); "
        f"copy the file there by hand or set {DATA_ENV} to a folder that holds it"
    )


def ensure_dataset(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Make sure the dataset's four verified files are on disk; return their folder.

    Files already present are only checked, so a read-only folder of files works offline.
    A present file with the wrong checksum is fetched again, or reported by name.
    """
    spec = get_spec(name)
    folder = dataset_dir(name, data_dir)
    offline = os.environ.get(OFFLINE_ENV, "") not in ("", "0")
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    for file in spec.files:
        path = folder / file.name
        if path.is_file():
            if sha256_of(path) == file.sha256:
                continue
            problem = f"{path} fails its sha256 check (corrupt or not the published file)"
        else:
            problem = f"{path} is missing"
        if offline:
            raise DatasetError(
                f"{problem} and downloads are off ({OFFLINE_ENV}); "
                f"put the published {file.name} there or unset {OFFLINE_ENV}"
            )
        try:
            download_file(file, folder, mirrors, progress)
        except DatasetError as exc:
            raise DatasetError(f"{problem}, and {exc}") from None
    return folder


def load_idx(
    name: str = "mnist", data_dir: str | os.PathLike | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A catalogue dataset's `(x_train, y_train), (x_test, y_test)` as uint8 arrays, like
    `keras.datasets`, from its verified IDX files (`sources.load_dataset` takes any name)."""
    spec = get_spec(name)
    folder = ensure_dataset(name, data_dir)
    arrays = [read_idx(folder / f.name) for f in spec.files]
    x_train, y_train, x_test, y_test = (a.astype(np.uint8, copy=False) for a in arrays)
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DatasetError(
                f"{folder}: {split} images {images.shape} and labels {labels.shape} do not pair up"
            )
    return (x_train, y_train), (x_test, y_test)


def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) to the float32 (N, 28, 28, 1) in [0, 1] that the models take."""
    scaled = np.asarray(images).astype(np.float32)
    scaled /= 255.0  # in place: one array of 180 MB for the training set, not two
    return scaled[..., np.newaxis]
