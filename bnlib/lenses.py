"""Two more lenses of the same research group on the BN and no-BN models (notebooks 07 and 08).

- **Decision trees over binary ReLU codes** (Mouton & Davel, arXiv 2202.00345). A layer's code is its on/off
  pattern (`bnlib.codes.activation_codes`, the codes notebook 04 uses); a conv map is first max-pooled to
  `pool` x `pool` cells, so a bit says "this channel is active somewhere in this cell" (pool 0: every element).
  A `DecisionTreeClassifier` fit on the codes of the measured training samples explains the network's own
  prediction (**fidelity**) or the true label (**accuracy**), scored on held-out test images. One tree is grown
  to `max_depth`; the tree at depth d is its depth-d prefix (each node predicts its majority class), so the whole
  fidelity-against-depth curve comes from one fit.
- **Translation-sensitivity maps** (Kauderer-Abrams, arXiv 1801.01450, with the cosine similarity of Myburgh,
  Mouton & Davel, arXiv 2104.05997). Each image is shifted by (dx, dy) over a grid, the vacated pixels filled with
  a fixed raw value; per layer, the cosine similarity between the representation of the original and of the
  shifted image, averaged over images, gives one map per layer. The spatial-mean-pooled representation (one value
  per channel) is the dimension-matched view; the output gives the prediction agreement.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from sklearn.tree import DecisionTreeClassifier
from torch import nn

from . import metrics as M
from .codes import activation_codes
from .hooks import _eval_mode, _hooks
from .models import hidden_layers

OUTPUT = "output"  # the layer name of the prediction-agreement rows


# ------------------------------------------------------------------ forward passes
def forward_layers(model: nn.Module, images: torch.Tensor, normalise, layers: list[str], *, device="cpu",
                   transform: Callable[[torch.Tensor], torch.Tensor] | None = None, batch_size: int = 500,
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({layer: representations [N, ...]}, predicted class [N]) from one full forward pass per batch, on CPU.

    `transform` is applied to each layer's batch before it is kept (e.g. pooling to a code), so only what is
    needed is ever held."""
    modules = {n: m for n, m in hidden_layers(model).items() if n in layers}
    chunks: dict[str, list[torch.Tensor]] = {n: [] for n in modules}
    keep = transform or (lambda t: t)
    predicted = []
    model = model.to(device)
    with _eval_mode(model), _hooks(modules, lambda n, out: chunks[n].append(keep(out.float()).cpu())):
        for start in range(0, len(images), batch_size):
            predicted.append(model(normalise(images[start:start + batch_size].to(device))).argmax(1).cpu())
    return {n: torch.cat(c) for n, c in chunks.items()}, torch.cat(predicted)


# ------------------------------------------------------------------ binary codes and trees (notebook 07)
def pooled_codes(acts: torch.Tensor, pool: int) -> torch.Tensor:
    """The on/off code of each sample, [N, D] bool: a conv map [N, C, H, W] is max-pooled to `pool` x `pool` cells
    first (a cell's bit is on when any of its elements is > 0); `pool` 0, or an fc layer [N, D]: every unit."""
    if acts.dim() == 4 and pool > 0 and acts.shape[-1] > pool:
        acts = nn.functional.adaptive_max_pool2d(acts.float(), pool)
    return activation_codes(acts)


def tree_curve(train_codes, train_target, test_codes, test_target, max_depth: int, seed: int = 0) -> dict:
    """Grow one decision tree on (train_codes, train_target) to `max_depth`, then score each of its depth-d
    prefixes, d = 1..max_depth, on the test codes: {"depth", "score" (test agreement with test_target), "leaves"
    (of the prefix)}, each an array of max_depth values."""
    X, Xt = np.asarray(train_codes, dtype=np.float32), np.asarray(test_codes, dtype=np.float32)
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(X, np.asarray(train_target))
    structure = tree.tree_
    node_depth = _node_depths(structure.children_left, structure.children_right)
    node_class = tree.classes_[structure.value[:, 0, :].argmax(1)]
    is_leaf = structure.children_left < 0
    # each test sample's root-to-leaf path, one node per depth: a child's id is larger than its parent's
    paths = tree.decision_path(Xt).tocsr()
    paths.sort_indices()
    start, length = paths.indptr[:-1], np.diff(paths.indptr)
    depths = np.arange(1, max_depth + 1)
    score, leaves = np.empty(max_depth), np.empty(max_depth, dtype=np.int64)
    target = np.asarray(test_target)
    for i, d in enumerate(depths):
        reached = paths.indices[start + np.minimum(d, length - 1)]  # where the sample stops in the depth-d prefix
        score[i] = float((node_class[reached] == target).mean())
        leaves[i] = int(((node_depth == d) | (is_leaf & (node_depth < d))).sum())
    return {"depth": depths, "score": score, "leaves": leaves}


def _node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    depth = np.zeros(len(left), dtype=np.int64)
    for node in range(len(left)):  # parents come before their children
        for child in (left[node], right[node]):
            if child >= 0:
                depth[child] = depth[node] + 1
    return depth


# ------------------------------------------------------------------ translation maps (notebook 08)
def shift_offsets(max_shift: int, step: int = 1) -> np.ndarray:
    """The offsets of one axis: -max_shift..max_shift in steps of `step`, always through 0."""
    half = max_shift // step
    return np.arange(-half, half + 1) * step


def shift_grid(max_shift: int, step: int = 1) -> list[tuple[int, int]]:
    """Every (dx, dy) of the square grid, row by row (dy outer)."""
    offsets = shift_offsets(max_shift, step)
    return [(int(dx), int(dy)) for dy in offsets for dx in offsets]


def shift_images(images: torch.Tensor, dx: int, dy: int, fill: int = 0) -> torch.Tensor:
    """`images` [N, C, H, W] moved dx pixels right and dy down, the uncovered pixels set to `fill`."""
    H, W = images.shape[-2:]
    out = torch.full_like(images, fill)
    if abs(dx) >= W or abs(dy) >= H:
        return out
    out[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        images[..., max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
    return out


def cosine_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of [N, ...] tensors, in float64. Two all-zero rows are identical (1); one
    all-zero row against a non-zero one is 0."""
    a = a.flatten(1).double()
    return _cosine_to(a, a.norm(dim=1), b)


def _cosine_to(a: torch.Tensor, a_norm: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`cosine_rows(a, b)` with `a` already flat float64 and its row norms given (a reference reused across shifts).
    A row is all zero exactly when its float64 norm is 0 (the squares of float32 values cannot underflow there)."""
    b = b.flatten(1).double()
    b_norm = b.norm(dim=1)
    norms = a_norm * b_norm
    cos = torch.where(norms > 0, (a * b).sum(1) / norms.clamp_min(1e-300), torch.zeros_like(norms))
    return torch.where((a_norm == 0) & (b_norm == 0), torch.ones_like(cos), cos)


def _pool(acts: torch.Tensor) -> torch.Tensor:
    return M.spatial_mean_pool(acts) if acts.dim() == 4 else acts


def translation_maps(represent: Callable[[torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]],
                     images: torch.Tensor, shifts: list[tuple[int, int]], fill: int = 0, batch_size: int = 500
                     ) -> dict[tuple[str, str], np.ndarray]:
    """Mean over `images` of the similarity between each image and its shifted copies, one value per shift.

    `represent(uint8 images)` returns ({layer: representations}, predicted class). The result maps
    (layer, "cosine") and (layer, "cosine_pooled") to an array over `shifts`, and (OUTPUT, "agreement") to the
    fraction of images whose predicted class the shift leaves unchanged.
    """
    reference, predicted = represent(images)
    # each view's reference as flat float64 and its row norms, once: every shift is compared with the same images
    flat = {(layer, view): ref.flatten(1).double() for layer, a in reference.items()
            for view, ref in (("cosine", a), ("cosine_pooled", _pool(a)))}
    norms = {key: ref.norm(dim=1) for key, ref in flat.items()}
    n = len(images)
    sums: dict[tuple[str, str], np.ndarray] = {}
    per_batch = max(1, batch_size // n)
    for start in range(0, len(shifts), per_batch):
        chunk = shifts[start:start + per_batch]
        moved = torch.cat([shift_images(images, dx, dy, fill) for dx, dy in chunk])
        acts, pred = represent(moved)
        for layer, a in acts.items():
            for view, got in (("cosine", a), ("cosine_pooled", _pool(a))):
                ref, ref_norm = flat[(layer, view)], norms[(layer, view)]
                cos = _cosine_to(ref.repeat(len(chunk), 1), ref_norm.repeat(len(chunk)), got).view(len(chunk), n)
                sums.setdefault((layer, view), np.zeros(len(shifts)))[start:start + len(chunk)] = \
                    cos.mean(1).numpy()
        agree = (pred.view(len(chunk), n) == predicted.view(1, n)).double().mean(1)
        sums.setdefault((OUTPUT, "agreement"), np.zeros(len(shifts)))[start:start + len(chunk)] = agree.numpy()
    return sums


def chebyshev_radius(dx, dy):
    """The ring a shift lies on: max(|dx|, |dy|)."""
    return np.maximum(np.abs(dx), np.abs(dy))
