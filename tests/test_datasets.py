"""Datasets: the IDX format, the real MNIST loader, and downloads over real HTTP."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_cnn.data import datasets, sources
from mnist_cnn.data.datasets import DataFile, DatasetError

SHARED_MNIST = datasets.dataset_dir("mnist")
# Published per-class counts of MNIST (train, test).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.random.default_rng(0).normal(size=(5, 7, 3)) * 100).astype(dtype)
    datasets.write_idx(tmp_path / name, array)
    back = datasets.read_idx(tmp_path / name)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_idx_is_big_endian_as_published(tmp_path):
    datasets.write_idx(tmp_path / "x", np.array([1, 256], dtype=np.int32))
    assert (tmp_path / "x").read_bytes() == bytes(
        [0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0]
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "bad magic"),
        (b"\x01\x00\x08\x01", "bad magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX data type"),
        (b"\x00\x00\x08\x02\x00\x00", "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "corrupt"),
    ],
)
def test_parse_idx_rejects_bad_bytes(data, message):
    with pytest.raises(DatasetError, match=message):
        datasets.parse_idx(data)


def test_read_idx_reports_a_broken_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")[:-6])
    with pytest.raises(DatasetError, match="broken.gz"):
        datasets.read_idx(path)


def test_load_real_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]  # the famous first test digits


def test_a_folder_of_the_four_files_needs_no_network(monkeypatch, mnist):
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")
    (x_train, _), _ = sources.load_dataset("mnist", data_dir=SHARED_MNIST)
    np.testing.assert_array_equal(x_train, mnist[0][0])


@pytest.mark.parametrize("name", list(datasets.DATASETS))
def test_catalogue_entries_are_complete(name):
    spec = datasets.get_spec(name)
    assert len({f.name for f in spec.files}) == 4
    assert all(len(f.sha256) == 64 and int(f.sha256, 16) >= 0 for f in spec.files)
    assert spec.mirrors and all(m.startswith(("http://", "https://")) for m in spec.mirrors)
    assert len(spec.classes) == 10


@pytest.mark.parametrize("name", ["fashion-mnist", "kmnist"])
def test_other_datasets_verify_their_files(tmp_path, monkeypatch, name):
    """A folder with stand-in IDX files of the right names is refused: the sha256s bind."""
    monkeypatch.setenv(datasets.OFFLINE_ENV, "1")
    folder = tmp_path / name
    for file in datasets.get_spec(name).files:
        datasets.write_idx(folder / file.name, np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="fails its sha256 check"):
        sources.load_dataset(name, data_dir=tmp_path)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(DatasetError, match="mnist, fashion-mnist, kmnist"):
        datasets.get_spec("cifar")


# --- downloads over real HTTP on 127.0.0.1 ---------------------------------------------------


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_of_real_mnist_arrives_verified(tmp_path, http_server, mnist):
    mirror = http_server(SHARED_MNIST)
    folder = datasets.ensure_dataset("mnist", data_dir=tmp_path, mirrors=[mirror], progress=False)
    assert folder == tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f.name for f in datasets.get_spec("mnist").files
    )
    (_, _), (x_test, _) = sources.load_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(x_test, mnist[1][0])


def test_download_falls_through_to_the_next_mirror(tmp_path, http_server):
    empty, good = tmp_path / "empty", tmp_path / "good"
    empty.mkdir()
    datasets.write_idx(good / "labels.gz", np.arange(10, dtype=np.uint8))
    file = DataFile("labels.gz", datasets.sha256_of(good / "labels.gz"))
    mirrors = [_dead_url(), http_server(empty), http_server(good)]  # refused, 404, good
    path = datasets.download_file(file, tmp_path / "cache", mirrors, progress=False)
    np.testing.assert_array_equal(datasets.read_idx(path), np.arange(10))


def test_a_wrong_checksum_is_a_clear_error_and_leaves_no_file(tmp_path, http_server):
    served = tmp_path / "served"
    datasets.write_idx(served / "labels.gz", np.arange(10, dtype=np.uint8))
    file = DataFile("labels.gz", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"sha256 .* != 000000000000"):
        datasets.download_file(file, cache, [http_server(served)], progress=False)
    assert not cache.exists()  # nor the folder it made for it


def test_a_corrupt_cached_file_is_fetched_again(tmp_path, http_server):
    folder = tmp_path / "mnist"
    shutil.copytree(SHARED_MNIST, folder)
    broken = folder / "t10k-labels-idx1-ubyte.gz"
    broken.chmod(0o644)
    broken.write_bytes(b"not the published file")
    datasets.ensure_dataset(
        "mnist", data_dir=tmp_path, mirrors=[http_server(SHARED_MNIST)], progress=False
    )
    assert datasets.sha256_of(broken) == datasets.get_spec("mnist").test_labels.sha256


def test_no_mirror_reachable_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(DatasetError) as caught:
        datasets.ensure_dataset("mnist", data_dir=tmp_path, mirrors=[_dead_url()], progress=False)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message and "MNIST_CNN_DATA" in message
    assert not Path(tmp_path, "mnist").exists()  # nothing half-fetched, no empty folder


def test_downloaded_files_follow_the_umask(tmp_path, http_server):
    from mnist_cnn.atomic import FILE_MODE

    served = tmp_path / "served"
    datasets.write_idx(served / "labels.gz", np.arange(10, dtype=np.uint8))
    file = DataFile("labels.gz", datasets.sha256_of(served / "labels.gz"))
    path = datasets.download_file(file, tmp_path / "cache", [http_server(served)], progress=False)
    assert path.stat().st_mode & 0o777 == FILE_MODE
