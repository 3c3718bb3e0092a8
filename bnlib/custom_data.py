"""Your own image-classification data: MNIST-style IDX files, an image folder, or an npz of arrays.

A profile points its `dataset` key at a source instead of a built-in name::

    dataset: {format: idx, path: /data/fashion}          # train-images-idx3-ubyte[.gz], t10k-..., labels alike
    dataset: {format: folder, path: /data/shapes}        # train/<class>/*.png|jpg and test/<class>/*
    dataset: {format: npz, path: /data/mine.npz}         # x_train, y_train, x_test, y_test (uint8 NxHxW[xC])

with optional `classes` (names, in label order), `resize: [H, W]`, `channels: 1 | 3` (1 = grayscale) and
`title`. Validation (`register`) checks the source cheaply and names it `custom-<fingerprint>`: a hash of the
files' names, sizes and modification times and of the options, so changed data is a new dataset and never
reuses models trained on the old one. That name is what the cache keys, CSVs and notebooks carry; the
source behind it is recorded in the cache (`datasets/<name>.json`), where every process reads it back.
Decoding (`load`) checks every image, converts and resizes it, and caches the tensors with the training
split's per-channel mean and std.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from .checked import load_checked_tensors, save_checked_tensors
from .files import atomic_write_text, spec_key
from .images import ImageData
from .paths import REPO_ROOT, resolve_cache_dir

PREFIX = "custom-"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
NPZ_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
FORMAT = 1  # of the registry record (part of a dataset's name)
DECODED_FORMAT = 2  # of the decoded cache; 2: written through the checked store (bnlib.checked.save_checked_tensors)


class DataSource(BaseModel):
    """Where your data is and how to read it (the `dataset` key's mapping form)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["idx", "folder", "npz"]
    path: str = Field(description="a folder (idx, folder) or a file (npz); relative to the checkout when relative")
    classes: list[str] | None = Field(None, description="class names in label order; default: folder names or numbers")
    resize: list[Annotated[int, Field(ge=4, le=4096)]] | None = Field(
        None, min_length=2, max_length=2, description="[H, W] every image is resized to (bilinear, antialiased)")
    channels: Literal[1, 3] | None = Field(None, description="1: grayscale, 3: RGB; default: as stored")
    title: str | None = Field(None, description="how figures name the data; default: the folder or file name")

    def where(self) -> Path:
        return (REPO_ROOT / Path(self.path).expanduser()).resolve()


class CustomDataError(ValueError):
    """Your data cannot be used as it is; the message names the file or key and the fix."""


# ------------------------------------------------------------------ registration (cheap, at validation)
def register(source: DataSource) -> str:
    """Check `source` without decoding it, record it in the cache, and return its name `custom-<fingerprint>`."""
    where = source.where()
    files, labels = _inventory(source, where)
    classes = _classes(source, labels)
    shape = _stored_shape(source, where, files)
    spec = {"format": FORMAT, "source": source.model_dump(mode="json") | {"path": str(where)},
            "files": [(str(p.relative_to(where)) if p != where else p.name, p.stat().st_size, p.stat().st_mtime_ns)
                      for split in ("train", "test") for p in sorted(set(files[split]))]}
    name = PREFIX + spec_key(spec)
    record = {"name": name, "source": spec["source"], "classes": classes,
              "sizes": [len(labels["train"]), len(labels["test"])],
              "class_counts": np.bincount(labels["train"], minlength=len(classes)).tolist(),
              "shape": list(_converted_shape(shape, source)),
              "title": source.title or where.stem}
    path = _record_path(name)
    if not path.is_file() or json.loads(path.read_text()) != record:
        atomic_write_text(path, json.dumps(record, indent=1))
    return name


def record(name: str) -> dict:
    """What `register` recorded for a custom dataset name."""
    path = _record_path(name)
    if not path.is_file():
        raise CustomDataError(f"dataset {name!r} is not registered in {path.parent}: give the profile's `dataset` "
                              f"as a mapping ({{format: ..., path: ...}}) so that it is checked and recorded first")
    return json.loads(path.read_text())


def remember(rec: dict) -> None:
    """Write a record made elsewhere (a Ray worker gets the driver's): the data itself travels separately."""
    path = _record_path(rec["name"])
    if not path.is_file():
        atomic_write_text(path, json.dumps(rec, indent=1))


def _record_path(name: str) -> Path:
    return resolve_cache_dir() / "datasets" / f"{name}.json"


def _inventory(source: DataSource, where: Path) -> tuple[dict[str, list[Path]], dict[str, np.ndarray]]:
    """Per split: the files that hold it, and its labels (read cheaply: label files, arrays, folder names)."""
    if not where.exists():
        raise CustomDataError(f"dataset path {where} does not exist (dataset.path = {source.path!r})")
    files, labels = {}, {}
    if source.format == "idx":
        for split, (images_name, labels_name) in IDX_NAMES.items():
            images_file, labels_file = (_idx_file(where, n, split) for n in (images_name, labels_name))
            files[split] = [images_file, labels_file]
            labels[split] = _read_idx(labels_file).astype(np.int64)
    elif source.format == "npz":
        if not where.is_file():
            raise CustomDataError(f"dataset path {where} is not an .npz file (format: npz)")
        with np.load(where, allow_pickle=False) as arrays:
            for split, (x_key, y_key) in NPZ_KEYS.items():
                if x_key not in arrays or y_key not in arrays:
                    raise CustomDataError(f"{where} has no {split} split: it needs the arrays {x_key!r} and {y_key!r} "
                                          f"(it has {', '.join(sorted(arrays.files)) or 'none'})")
                files[split] = [where]
                labels[split] = np.asarray(arrays[y_key]).astype(np.int64).reshape(-1)
    else:
        class_sets = {}
        for split in ("train", "test"):
            folder = where / split
            if not folder.is_dir():
                raise CustomDataError(f"missing split: {folder} does not exist (format: folder wants "
                                      f"{where}/train/<class>/*.png and {where}/test/<class>/*)")
            class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
            if not class_dirs:
                raise CustomDataError(f"{folder} holds no class folders: expected {folder}/<class>/<image>")
            class_sets[split] = [p.name for p in class_dirs]
            files[split], split_labels = [], []
            for index, class_dir in enumerate(class_dirs):
                images = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not images:
                    raise CustomDataError(f"empty class folder: {class_dir} holds no image "
                                          f"({', '.join(IMAGE_SUFFIXES)})")
                files[split] += images
                split_labels += [index] * len(images)
            labels[split] = np.array(split_labels, dtype=np.int64)
        if class_sets["train"] != class_sets["test"]:
            only = sorted(set(class_sets["train"]) ^ set(class_sets["test"]))
            raise CustomDataError(f"train and test have different class folders (in one only: {', '.join(only)}); "
                                  f"give both splits the same classes")
        if source.classes is None:
            source = source.model_copy(update={"classes": class_sets["train"]})
    for split in ("train", "test"):
        if len(labels[split]) == 0:
            raise CustomDataError(f"the {split} split of {where} is empty")
    return files, labels


def _idx_file(where: Path, name: str, split: str) -> Path:
    for candidate in (where / name, where / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise CustomDataError(f"missing split: no {name} or {name}.gz in {where} (format: idx wants the {split} files "
                          f"{', '.join(IDX_NAMES[split])}, gzipped or not)")


def _read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST format): magic 0x0000 08 <ndim>, then big-endian int32 sizes, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise CustomDataError(f"{path} is unreadable ({exc}); copy it again") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CustomDataError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()}, expected 000008NN)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise CustomDataError(f"{path} is truncated: its header says {dims}, it holds {body.size} values")
    return body.reshape(dims)


def _classes(source: DataSource, labels: dict[str, np.ndarray]) -> list[str]:
    train, test = labels["train"], labels["test"]
    if source.format == "folder":
        names = source.classes or sorted(p.name for p in (source.where() / "train").iterdir() if p.is_dir())
        if source.classes is not None and len(source.classes) != train.max() + 1:
            raise CustomDataError(f"classes lists {len(source.classes)} names for {train.max() + 1} class folders")
        return list(names)
    extra = sorted(set(test.tolist()) - set(train.tolist()))
    if extra:
        raise CustomDataError(f"train and test have different class sets: test has labels {extra} that train lacks")
    n = len(source.classes) if source.classes is not None else int(train.max()) + 1
    for split, y in labels.items():
        bad = y[(y < 0) | (y >= n)]
        if bad.size:
            raise CustomDataError(f"labels out of range in the {split} split: {sorted(set(bad.tolist()))[:5]} "
                                  f"(labels must be 0..{n - 1}" + (f" for the {n} names in `classes`)" if
                                                                   source.classes is not None else ")"))
    missing = sorted(set(range(n)) - set(train.tolist()))
    if missing:
        raise CustomDataError(f"classes {missing} have no training sample; every class needs some "
                              f"(or give `classes` only for the labels you have)")
    return list(source.classes) if source.classes is not None else [str(i) for i in range(n)]


def _stored_shape(source: DataSource, where: Path, files) -> tuple[int, int, int]:
    """(C, H, W) of the first training image as stored."""
    if source.format == "idx":
        head = _read_idx(files["train"][0])
        if head.ndim != 3:
            raise CustomDataError(f"{files['train'][0]} holds {head.ndim}-D data; IDX images are N x H x W")
        return (1, *head.shape[1:])
    if source.format == "npz":
        with np.load(where, allow_pickle=False) as arrays:
            return _chw(np.asarray(arrays["x_train"]).shape[1:], where)
    first = files["train"][0]
    try:
        with Image.open(first) as im:
            return (1 if im.mode in ("L", "1", "I;16", "I", "F") else 3, im.height, im.width)
    except OSError as exc:
        raise CustomDataError(f"corrupt image {first}: {exc}") from exc


def _chw(shape: tuple, where: Path) -> tuple[int, int, int]:
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3 and shape[-1] in (1, 3):
        return (shape[-1], *shape[:2])
    raise CustomDataError(f"arrays in {where} have images of shape {shape}; expected H x W or H x W x C (C = 1 or 3)")


def _converted_shape(shape: tuple[int, int, int], source: DataSource) -> tuple[int, int, int]:
    c, h, w = shape
    return (source.channels or c, *(source.resize or (h, w)))


# ------------------------------------------------------------------ decoding (once, cached)
def load(name: str, split: str):
    """One split of a registered custom dataset as an ImageData, decoded once and cached."""
    rec = record(name)
    source = DataSource.model_validate(rec["source"])
    blob = _decoded(name, split, source, rec)
    stats = blob if split == "train" else _decoded(name, "train", source, rec)
    return ImageData(name, split, blob["images"], blob["labels"], tuple(rec["classes"]),
                     tuple(stats["mean"]), tuple(stats["std"]), rec["title"])


def _decoded(name: str, split: str, source: DataSource, rec: dict) -> dict:
    cached = resolve_cache_dir() / "decoded" / f"{name}-{split}-v{DECODED_FORMAT}.pt"
    blob = load_checked_tensors(cached)
    if blob is not None:
        return blob
    images, labels = _decode(source, split, rec)
    x = images.float() / 255.0
    blob = {"images": images, "labels": labels,
            "mean": x.mean(dim=(0, 2, 3)).tolist(), "std": x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()}
    save_checked_tensors(cached, blob)
    return blob


def _decode(source: DataSource, split: str, rec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    where = source.where()
    files, labels = _inventory(source.model_copy(update={"classes": rec["classes"]}), where)
    if source.format == "idx":
        images = [torch.from_numpy(_read_idx(files[split][0]).copy()).unsqueeze(1)]
        if len(images[0]) != len(labels[split]):
            raise CustomDataError(f"{files[split][0]} holds {len(images[0])} images for {len(labels[split])} labels")
    elif source.format == "npz":
        with np.load(where, allow_pickle=False) as arrays:
            x = np.asarray(arrays[NPZ_KEYS[split][0]])
        if x.dtype != np.uint8:
            raise CustomDataError(f"{where}: {NPZ_KEYS[split][0]} is {x.dtype}; give uint8 pixels 0..255")
        if len(x) != len(labels[split]):
            raise CustomDataError(f"{where}: {NPZ_KEYS[split][0]} has {len(x)} images for {len(labels[split])} labels")
        t = torch.from_numpy(x.copy())
        images = [t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2)]
    else:
        images = [_read_image(p) for p in files[split]]
    sizes = sorted({tuple(i.shape[-2:]) for i in images} if source.format == "folder" else
                   {tuple(images[0].shape[-2:])})
    if source.format == "folder" and source.channels is None and len({i.shape[1] for i in images}) > 1:
        raise CustomDataError(f"the {split} images of {where} mix grayscale and colour; set `channels: 1` "
                              f"(grayscale) or `channels: 3` (RGB) in the dataset mapping")
    if len(sizes) > 1 and source.resize is None:
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4])
        raise CustomDataError(f"the {split} images of {where} have mixed sizes ({shown}); "
                              f"set `resize: [H, W]` in the dataset mapping")
    out = [_convert(i, source) for i in images]
    return torch.cat(out), torch.from_numpy(labels[split])


def _read_image(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            im.load()
            array = np.asarray(im.convert("L" if im.mode in ("L", "1", "I;16", "I", "F") else "RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        raise CustomDataError(f"corrupt image {path}: {exc}") from exc
    t = torch.from_numpy(array.copy())
    return t.view(1, 1, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1).unsqueeze(0)


def _convert(images: torch.Tensor, source: DataSource) -> torch.Tensor:
    """uint8 [N, C, H, W] to the asked channels and size (ITU-R 601 luma for grayscale, bilinear resize)."""
    if source.channels == 1 and images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    elif source.channels == 3 and images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1).contiguous()
    if source.resize is not None and tuple(images.shape[-2:]) != tuple(source.resize):
        resized = torch.nn.functional.interpolate(images.float(), size=tuple(source.resize), mode="bilinear",
                                                  align_corners=False, antialias=True)
        images = resized.round().clamp(0, 255).to(torch.uint8)
    return images
