import gzip
import shutil
import tarfile

import pytest
import torch

from bnlib.data import (CIFAR10_CLASSES, MNIST_FILES, DatasetError, load_dataset, stratified_indices)
from bnlib.paths import resolve_data_dir


def check_image_data(d, n, shape, n_classes=10):
    assert d.images.dtype == torch.uint8 and d.labels.dtype == torch.int64
    assert tuple(d.images.shape) == (n, *shape)
    assert d.labels.shape == (n,)
    assert int(d.labels.min()) >= 0 and int(d.labels.max()) == n_classes - 1
    assert len(d.classes) == n_classes and len(d.mean) == len(d.std) == shape[0]


def test_mnist5k_is_embedded_balanced_and_split_disjointly():
    train, test = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    check_image_data(train, 4000, (1, 28, 28))
    check_image_data(test, 1000, (1, 28, 28))
    assert train.labels.bincount().tolist() == [400] * 10
    assert test.labels.bincount().tolist() == [100] * 10
    # exact MNIST pixels: uint8 with real ink, and no image appears in both splits
    assert int(train.images.max()) == 255
    train_rows = {bytes(x) for x in train.images.flatten(1).numpy()}
    assert not any(bytes(x) in train_rows for x in test.images.flatten(1).numpy())
    # the split is fixed: loading twice gives the same tensors
    assert torch.equal(load_dataset("mnist5k", "test").images, test.images)


def test_full_mnist_from_shared_data(shared_data):
    before = sorted(p.relative_to(shared_data) for p in shared_data.rglob("*"))
    train = load_dataset("mnist", "train", data_dir=shared_data)
    test = load_dataset("mnist", "test", data_dir=shared_data)
    check_image_data(train, 60000, (1, 28, 28))
    check_image_data(test, 10000, (1, 28, 28))
    assert train.labels.bincount().tolist()[:3] == [5923, 6742, 5958]
    # the data directory is only read: staging and extraction happen in our cache
    assert sorted(p.relative_to(shared_data) for p in shared_data.rglob("*")) == before


def test_data_dir_from_environment(shared_data, monkeypatch):
    monkeypatch.setenv("BNLIB_DATA_DIR", str(shared_data))
    assert resolve_data_dir() == shared_data
    assert len(load_dataset("mnist", "test")) == 10000


def test_cifar10_jpeg_from_archive(shared_data):
    test = load_dataset("cifar10-jpeg", "test", data_dir=shared_data)
    check_image_data(test, 10000, (3, 32, 32))
    assert test.labels.bincount().tolist() == [1000] * 10
    assert test.title == "CIFAR-10 (JPEG copy)"
    mean = (test.images.float() / 255).mean(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.tensor([0.49, 0.48, 0.45]), atol=0.02)
    again = load_dataset("cifar10-jpeg", "test", data_dir=shared_data)  # from the decoded cache
    assert torch.equal(again.images, test.images)


def _write_jpeg_folder(root, per_class=2):
    from torchvision.io import encode_jpeg
    for split in ("train", "test"):
        for c in CIFAR10_CLASSES:
            folder = root / "cifar10-jpeg" / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = torch.full((3, 32, 32), 20 * CIFAR10_CLASSES.index(c), dtype=torch.uint8)
                (folder / f"{i:04d}.jpg").write_bytes(encode_jpeg(img).numpy().tobytes())


def test_cifar10_jpeg_from_extracted_folder(tmp_path):
    _write_jpeg_folder(tmp_path)
    d = load_dataset("cifar10-jpeg", "train", data_dir=tmp_path)
    check_image_data(d, 20, (3, 32, 32))
    assert d.labels.tolist() == [i // 2 for i in range(20)]  # class folders in alphabetical order
    assert abs(int(d.images[-1].float().mean()) - 180) <= 2  # 'truck' was filled with 180


@pytest.mark.parametrize("name,split,match", [("imagenet", "train", "unknown dataset 'imagenet'.*mnist5k"),
                                              ("mnist5k", "val", "unknown split 'val'.*train, test")])
def test_bad_name_or_split(name, split, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(name, split)


@pytest.mark.parametrize("name,expected", [("mnist", "train-images-idx3-ubyte.gz"),
                                           ("cifar10", "cifar-10-batches-py"),
                                           ("cifar10-jpeg", "cifar10-jpeg.tar.gz")])
def test_missing_data_says_what_and_where(tmp_path, name, expected):
    empty = tmp_path / "nothing-here"
    with pytest.raises(DatasetError) as info:
        load_dataset(name, "train", data_dir=empty)
    msg = str(info.value)
    assert expected in msg and str(empty) in msg and "BNLIB_DATA_DIR" in msg


def test_corrupt_mnist_is_caught_by_md5(tmp_path, shared_data):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for f in MNIST_FILES:
        shutil.copy(shared_data / "mnist" / f, folder / f)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"not mnist")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz is corrupt: md5"):
        load_dataset("mnist", "test", data_dir=tmp_path)


def test_corrupt_extracted_mnist_is_caught(tmp_path, shared_data):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        with gzip.open(shared_data / "mnist" / f) as src:
            (raw / f.removesuffix(".gz")).write_bytes(src.read()[:2000])  # truncated
    with pytest.raises(DatasetError, match="MNIST"):
        load_dataset("mnist", "test", data_dir=tmp_path)


def test_truncated_jpeg_archive(tmp_path, shared_data):
    folder = tmp_path / "cifar10-jpeg"
    folder.mkdir()
    data = (shared_data / "cifar10-jpeg" / "cifar10-jpeg.tar.gz").read_bytes()
    (folder / "cifar10-jpeg.tar.gz").write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match="unreadable"):
        load_dataset("cifar10-jpeg", "test", data_dir=tmp_path)


def test_archive_without_split_is_reported(tmp_path):
    folder = tmp_path / "cifar10-jpeg"
    folder.mkdir()
    with tarfile.open(folder / "cifar10-jpeg.tar.gz", "w:gz"):
        pass
    with pytest.raises(DatasetError, match="no JPEG images for split 'test'"):
        load_dataset("cifar10-jpeg", "test", data_dir=tmp_path)


def test_stratified_indices_keep_class_proportions():
    labels = torch.arange(10).repeat_interleave(100)
    idx = stratified_indices(labels, 200, seed=0)
    assert len(idx) == 200 and labels[idx].bincount().tolist() == [20] * 10
    assert torch.equal(idx, stratified_indices(labels, 200, seed=0))
    assert torch.equal(stratified_indices(labels, 5000, seed=0), torch.arange(1000))
