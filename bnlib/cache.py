"""The artifact store: every file of a trained model, its checksums, and rebuilding what is damaged.

One folder per model under `$BNLIB_CACHE_DIR/models/`, keyed by a hash of the
full validated training config and the architecture's definition:

    weights.safetensors        the trained weights (tensors only: a cache file cannot run code)
    meta.json                  config, history, status and reason, the weights' sha256 (written last)
    checkpoint.pt              the last finished epoch while training (weights_only load)
    results/<name>             metric tables and embeddings, each with <name>.sha256 beside it

Every write goes to a temporary file that is renamed into place. Every read is
verified: weights against the sha256 in meta.json, and each result file
against its own digest record, which also names the weights it was computed
from. A file that fails its check is removed with a warning and rebuilt by the
caller; nothing damaged is ever used.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from filelock import FileLock
from safetensors.torch import load, load_file, save, save_file

from .checked import corrupt, read_checked, write_checked
from .config import TrainConfig
from .data import num_classes as classes_of
from .files import atomic_path, atomic_write_bytes, atomic_write_text, file_digest, spec_key
from .models import build_model
from .paths import resolve_cache_dir

CACHE_FORMAT = 2
USABLE = "complete"  # every other status ("diverged", "failed") is excluded from every statistic


@dataclass
class TrainedModel:
    config: TrainConfig
    model: torch.nn.Module  # on CPU, eval mode
    history: list[dict] = field(default_factory=list)
    status: str = USABLE  # "complete", "diverged" (non-finite) or "failed" (stayed at chance)
    diverged_epoch: int | None = None
    train_accuracy: float = float("nan")  # clean eval pass over the training set at the end
    test_accuracy: float = float("nan")
    path: Path | None = None
    from_cache: bool = False
    reason: str = ""  # why a run is not usable

    @property
    def excluded(self) -> bool:
        """True for any run left out of the statistics: diverged or failed."""
        return self.status != USABLE

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def name(self) -> str:
        c = self.config
        return f"{c.arch}/{c.norm}/seed{c.seed}"


def model_for(config: TrainConfig, num_classes: int | None = None) -> torch.nn.Module:
    """The untrained model of `config`, with one logit per class of its dataset (unless told how many)."""
    return build_model(config.arch, config.norm, num_classes or classes_of(config.dataset), width=config.width,
                       init=config.init)


def config_key(config: TrainConfig) -> str:
    """Hash of the full validated config, the cache format and the architecture's definition."""
    return spec_key({"config": config.identity(), "format": CACHE_FORMAT, "model": repr(model_for(config))})


def artifact_dir(config: TrainConfig, cache_dir=None) -> Path:
    c = config
    return resolve_cache_dir(cache_dir) / "models" / f"{c.dataset}-{c.arch}-{c.norm}-seed{c.seed}-{config_key(c)}"


class Artifact:
    """The files of one model. The training loop and the metrics ask it for things; only it touches them."""

    def __init__(self, config: TrainConfig, cache_dir=None):
        self.config = config
        self.folder = artifact_dir(config, cache_dir)
        self.meta_path = self.folder / "meta.json"
        self.weights_path = self.folder / "weights.safetensors"
        self.checkpoint_path = self.folder / "checkpoint.pt"
        self.results_dir = self.folder / "results"
        self.snapshot_dir = self.folder / "snapshots"

    def snapshot_path(self, step: int) -> Path:
        return self.snapshot_dir / f"step-{step:07d}.safetensors"

    def load_snapshot(self, step: int) -> dict | None:
        """The weights kept after `step` optimizer steps (bnlib.config.TrainingKeys.snapshots), verified; or None."""
        data = read_checked(self.snapshot_path(step))
        return None if data is None else load(data)

    def lock(self) -> FileLock:
        """Concurrent callers for one model wait for each other instead of writing the same files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder) + ".lock")

    def is_complete(self) -> bool:
        return self.meta_path.is_file()

    # ------------------------------------------------------------ model
    def load_meta(self) -> dict | None:
        if not self.meta_path.is_file():
            return None
        try:
            meta = json.loads(self.meta_path.read_text())
            if meta["config"] != self.config.identity():
                raise ValueError("the config in meta.json differs from the one asked for")
            return meta
        except Exception as exc:
            corrupt(self.meta_path, str(exc), self.weights_path)
            return None

    def load(self) -> TrainedModel | None:
        """The verified trained model, or None when it must be (re)built."""
        meta = self.load_meta()
        if meta is None:
            return None
        try:
            if file_digest(self.weights_path) != meta["weights_sha256"]:
                raise ValueError("weights do not match their recorded sha256")
            model = model_for(self.config)
            model.load_state_dict(load_file(self.weights_path))  # safetensors: tensors only, no code
        except Exception as exc:
            corrupt(self.weights_path, str(exc), self.meta_path)
            return None
        return TrainedModel(self.config, model.eval(), meta["history"], meta["status"], meta["diverged_epoch"],
                            meta["train_accuracy"], meta["test_accuracy"], self.folder, from_cache=True,
                            reason=meta.get("reason", ""))

    def save(self, result: TrainedModel, extra: dict | None = None) -> None:
        state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
        with atomic_path(self.weights_path) as tmp:
            save_file(state, str(tmp))
        meta = {"config": self.config.identity(), "status": result.status, "reason": result.reason,
                "diverged_epoch": result.diverged_epoch, "history": result.history,
                "train_accuracy": result.train_accuracy, "test_accuracy": result.test_accuracy,
                "weights_sha256": file_digest(self.weights_path), "torch": torch.__version__, **(extra or {})}
        self._write_meta(meta)  # last: its presence marks a complete artifact
        self.checkpoint_path.unlink(missing_ok=True)
        result.path = self.folder

    def mark_unusable(self, result: TrainedModel, status: str, reason: str) -> None:
        """Record that a stored model turned out unusable (e.g. non-finite activations), with the reason."""
        meta = self.load_meta()
        if meta is None:
            return
        meta.update(status=status, reason=reason)
        self._write_meta(meta)
        result.status, result.reason = status, reason
        self.clear_results()

    def _write_meta(self, meta: dict) -> None:
        atomic_write_text(self.meta_path, json.dumps(meta, indent=1, allow_nan=True))

    # ------------------------------------------------------------ transfer (scale-out workers)
    def export_files(self) -> dict[str, bytes]:
        """Every file of a complete artifact, by path relative to its folder: what a remote worker sends back.

        The resume checkpoint is left out: a complete artifact no longer needs it.
        """
        if not self.is_complete():
            raise ValueError(f"{self.folder} is not a complete artifact: nothing to export")
        return {str(p.relative_to(self.folder)): p.read_bytes() for p in sorted(self.folder.rglob("*"))
                if p.is_file() and p != self.checkpoint_path}

    def import_files(self, files: dict[str, bytes]) -> TrainedModel:
        """Write an exported artifact into this cache (atomically, meta.json last) and return it verified."""
        if "meta.json" not in files:
            raise ValueError("an exported artifact must contain meta.json")
        with self.lock():
            for name, data in files.items():
                if name != "meta.json":
                    target = (self.folder / name).resolve()
                    if self.folder.resolve() not in target.parents:
                        raise ValueError(f"refusing to write {name!r} outside {self.folder}")
                    atomic_write_bytes(target, data)
            atomic_write_bytes(self.meta_path, files["meta.json"])
            loaded = self.load()
        if loaded is None:
            raise ValueError(f"the artifact received for {self.folder.name} failed its checksums")
        return loaded

    def clear_results(self) -> None:
        for p in self.results_dir.glob("*"):
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------ results
    def weights_sha256(self) -> str:
        meta = self.load_meta()
        return meta["weights_sha256"] if meta else ""

    def read_result(self, name: str) -> bytes | None:
        """A result file's bytes, verified against its digest record and the current weights; else None."""
        path, record = self.results_dir / name, self.results_dir / f"{name}.sha256"
        if not path.is_file():
            return None
        try:
            want = json.loads(record.read_text())
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != want["sha256"]:
                raise ValueError("content does not match its recorded sha256")
            if want["weights_sha256"] != self.weights_sha256():
                raise ValueError("computed from other weights than the ones stored")
            return data
        except Exception as exc:
            corrupt(path, str(exc) if not isinstance(exc, FileNotFoundError) else "no digest record", record)
            return None

    def write_result(self, name: str, data: bytes) -> None:
        path = self.results_dir / name
        atomic_write_bytes(path, data)
        record = {"sha256": hashlib.sha256(data).hexdigest(), "weights_sha256": self.weights_sha256(),
                  "bytes": len(data)}
        atomic_write_text(self.results_dir / f"{name}.sha256", json.dumps(record))

    def read_table(self, name: str, columns: list[str]) -> pd.DataFrame | None:
        data = self.read_result(name)
        if data is None:
            return None
        df = pd.read_csv(io.BytesIO(data))
        if list(df.columns) != columns:
            corrupt(self.results_dir / name, f"columns {list(df.columns)} are not {columns}")
            return None
        return df

    def write_table(self, name: str, df: pd.DataFrame) -> None:
        self.write_result(name, df.to_csv(index=False).encode())

    def read_array(self, name: str) -> np.ndarray | None:
        data = self.read_result(name)
        return None if data is None else np.load(io.BytesIO(data), allow_pickle=False)

    def write_array(self, name: str, array: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        self.write_result(name, buf.getvalue())


def save_snapshot(path: Path, model: torch.nn.Module) -> None:
    """A model's weights as safetensors, through the checked store: `Artifact.load_snapshot` reads them back."""
    write_checked(path, save({k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}))


def load_checkpoint(path: Path, device) -> dict | None:
    """A training checkpoint, or None (with a warning) when it is unreadable: training then starts again."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        corrupt(path, str(exc))
        return None


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def all_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())
