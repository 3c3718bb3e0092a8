"""Where samples sit relative to the decision boundary: margins (notebook 09) and fragmentation (notebook 10).

Two more lenses of the same research group, on the BN and no-BN models. Every distance is measured in the space a
network sees: the normalised input (`data.normalise`), or a hidden layer's post-ReLU representation.

- **Hidden margin** (Jiang, Krishnan, Mobahi & Bengio, arXiv 1810.00113): at layer l, for a sample of class i, the
  first-order distance to the boundary with class j is ``(f_i - f_j) / ||grad_{h_l}(f_i - f_j)||``, minimised over
  j != i. BatchNorm changes a layer's scale, so it is also reported divided by the square root of the layer's total
  variance over the measured samples.
- **Input margin** (Mouton, Theunissen & Davel, arXiv 2308.15466): DeepFool's iterative search (Moosavi-Dezfooli
  et al., arXiv 1511.04599) for the smallest perturbation of the input that changes the predicted class; the
  margin is the length of the perturbation that reaches the boundary (the overshoot that crosses it is not
  counted). The **constrained** margin runs the same search inside the span of the top-k principal directions of
  the training inputs.
- **Fragmentation** (Somepalli et al., arXiv 2203.08124; Mouton et al., arXiv 2411.04695): the plane through three
  points, a grid over their span extended by half the span on each side, the predicted class at every grid point,
  and the number of connected regions (8-connectivity, `scipy.ndimage.label`) summed over classes. In a hidden
  layer the plane goes through the three samples' representations, and the rest of the network runs from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from sklearn.decomposition import PCA
from torch import nn

from .models import hidden_layers

INPUT = "input"  # the layer name of the input-space rows


# ------------------------------------------------------------------ a network cut at a hidden layer
def split_at(model: nn.Sequential, layer: str) -> tuple[nn.Module, nn.Module]:
    """(stem, head): stem(x) is `layer`'s representation (its ReLU's output) and head(h) the logits from there, so
    head(stem(x)) == model(x). `layer` "input" gives (identity, model). The modules are shared, not copied."""
    if layer == INPUT:
        return nn.Identity(), model
    if layer not in hidden_layers(model):
        raise ValueError(f"no hidden layer {layer!r}; there are: {', '.join(hidden_layers(model))}")
    children = list(model.named_children())
    k = [name for name, _ in children].index(layer)
    inner = list(children[k][1].named_children())
    r = [name for name, _ in inner].index("relu") + 1
    stem = nn.Sequential(*(m for _, m in children[:k]), *(m for _, m in inner[:r]))
    head = nn.Sequential(*(m for _, m in inner[r:]), *(m for _, m in children[k + 1:]))
    return stem, head


def _class_gradients(head: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, K], d logit_k / d h [K, N, D]) of a batch, one backward pass per logit (samples are independent
    in eval mode). One pass over K copies of the batch gives the same values 3-4x slower (benchmarks/README.md)."""
    h = h.detach().requires_grad_(True)
    logits = head(h)
    grads = [torch.autograd.grad(logits[:, k].sum(), h, retain_graph=k < logits.shape[1] - 1)[0].flatten(1)
             for k in range(logits.shape[1])]
    return logits.detach(), torch.stack(grads)


# ------------------------------------------------------------------ margins (notebook 09)
def first_order_margins(head: nn.Module, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """min over j != label of (f_label - f_j) / ||grad_h (f_label - f_j)||, per sample [N] (float64). Negative for a
    misclassified sample; on a linear head it is the exact distance to the nearest pairwise hyperplane."""
    logits, grads = _class_gradients(head, h)
    idx = torch.arange(len(labels))
    gap = (logits[idx, labels].unsqueeze(1) - logits).double()  # [N, K]
    dist = (grads[labels, idx].unsqueeze(0) - grads).double().norm(dim=2).T  # [N, K]
    ratio = gap / dist.clamp_min(1e-30)
    ratio[idx, labels] = float("inf")
    return ratio.min(dim=1).values


def deepfool(model: nn.Module, x: torch.Tensor, *, steps: int = 50, overshoot: float = 0.02,
             basis: torch.Tensor | None = None) -> torch.Tensor:
    """DeepFool's margin of each input [N] (float64): the length of the smallest perturbation, found by its
    linearised steps, that takes x to the boundary of its predicted class; inf where `steps` steps do not flip it.

    Each step moves to the nearest linearised boundary, r = |f_j - f_i| / ||w_j||^2 w_j with w_j = grad(f_j - f_i);
    the class is checked at x + (1 + overshoot) * the summed steps. With `basis` [D, k] (orthonormal columns) every
    gradient is projected onto its span first: the search, and the margin, stay in that subspace.
    """
    n = len(x)
    flat = x.detach().flatten(1).double()
    with torch.no_grad():
        start = model(x).argmax(1)
    total = torch.zeros_like(flat)
    margin = torch.full((n,), float("inf"), dtype=torch.float64)
    active = torch.ones(n, dtype=torch.bool)
    idx = torch.arange(n)
    for _ in range(steps):
        if not active.any():
            break
        rows = idx[active]
        point = (flat[rows] + (1 + overshoot) * total[rows]).to(x.dtype).view(-1, *x.shape[1:])
        logits, grads = _class_gradients(model, point)
        logits, grads = logits.double(), grads.double()
        own = start[rows]
        flipped = logits.argmax(1) != own
        if flipped.any():
            margin[rows[flipped]] = total[rows[flipped]].norm(dim=1)
            active[rows[flipped]] = False
        keep = ~flipped
        if not keep.any():
            continue
        rows, own, logits, grads = rows[keep], own[keep], logits[keep], grads[:, keep]
        local = torch.arange(len(rows))
        w = grads - grads[own, local].unsqueeze(0)  # [K, n, D]: grad (f_j - f_i)
        if basis is not None:
            b = basis.double()
            w = (w @ b) @ b.T
        f = (logits - logits[local, own].unsqueeze(1)).T  # [K, n]: f_j - f_i (<= 0 while unflipped)
        w_norm = w.norm(dim=2)
        dist = f.abs() / w_norm.clamp_min(1e-30)
        dist[own, local] = float("inf")
        dist[w_norm == 0] = float("inf")
        nearest = dist.argmin(0)
        step_size = (dist[nearest, local] / w_norm[nearest, local].clamp_min(1e-30)).unsqueeze(1)
        step = step_size * w[nearest, local]
        total[rows] += torch.where(torch.isfinite(step), step, torch.zeros_like(step))
    return margin


def principal_basis(inputs: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """The top-`k` principal directions of `inputs` [N, ...] (flattened), as orthonormal columns [D, k]
    (sklearn's PCA)."""
    X = inputs.flatten(1).double().numpy()
    pca = PCA(n_components=k, svd_solver="randomized", random_state=seed).fit(X)
    return torch.from_numpy(pca.components_.T.copy())


def total_variance(h: torch.Tensor) -> float:
    """The sum over dimensions of the variance over samples: the scale a hidden margin is divided by (its root)."""
    return float(h.flatten(1).double().var(dim=0, unbiased=False).sum())


# ------------------------------------------------------------------ fragmentation (notebook 10)
@dataclass
class Plane:
    """The plane through three points a, b, c: the origin at a, x along b - a, y in the plane of c. `xs` (left to
    right) and `ys` (top to bottom) are the grid's coordinates; `anchors` the three points' (x, y)."""

    origin: torch.Tensor  # [D], float64
    axes: torch.Tensor  # [2, D]: orthonormal, float64
    xs: np.ndarray
    ys: np.ndarray
    anchors: np.ndarray

    def coords(self) -> torch.Tensor:
        """The (x, y) of every grid point [len(ys) * len(xs), 2], row by row from the top."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))

    def points(self, coords: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The points [n, D] at plane coordinates [n, 2], built in `dtype` (float32: a quarter of the memory
        traffic of building them all in float64 first)."""
        return self.origin.to(dtype) + coords.to(dtype) @ self.axes.to(dtype)


def plane_grid(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, resolution: int) -> Plane:
    """The plane through a, b and c with a `resolution` x `resolution` grid over the anchors' span, extended by half
    of it on each side."""
    a, b, c = (t.detach().flatten().double() for t in (a, b, c))
    u = b - a
    e1 = u / u.norm()
    v = c - a
    v_perp = v - (v @ e1) * e1
    e2 = v_perp / v_perp.norm().clamp_min(1e-30)
    anchors = np.array([[0.0, 0.0], [float(u.norm()), 0.0], [float(v @ e1), float(v_perp.norm())]])
    lo, hi = anchors.min(0), anchors.max(0)
    span = hi - lo
    xs = np.linspace(lo[0] - span[0] / 2, hi[0] + span[0] / 2, resolution)
    ys = np.linspace(hi[1] + span[1] / 2, lo[1] - span[1] / 2, resolution)
    return Plane(a, torch.stack([e1, e2]), xs, ys, anchors)


def count_regions(classes: np.ndarray) -> int:
    """The connected regions of a 2-D map of classes, 8-connectivity, summed over the classes present."""
    structure = np.ones((3, 3), dtype=int)
    return int(sum(ndimage.label(classes == k, structure=structure)[1] for k in np.unique(classes)))


def predict_classes(head: nn.Module, plane: Plane, shape: tuple, batch_size: int = 500, device="cpu"
                    ) -> np.ndarray:
    """The class `head` predicts at every grid point of `plane` [len(ys), len(xs)], each point reshaped to `shape`
    and built in float32 a batch at a time."""
    coords, out = plane.coords(), []
    with torch.no_grad():
        for start in range(0, len(coords), batch_size):
            batch = plane.points(coords[start:start + batch_size], torch.float32).view(-1, *shape).to(device)
            out.append(head(batch).argmax(1).cpu())
    return torch.cat(out).numpy().reshape(len(plane.ys), len(plane.xs))


def draw_triplets(labels: np.ndarray, count: int, kind: str, seed: int) -> np.ndarray:
    """`count` triplets of sample indices [count, 3]: "within" one class (a random class, three of its samples) or
    "across" three different classes (one sample each)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    out = []
    for _ in range(count):
        if kind == "within":
            pool = np.flatnonzero(labels == rng.choice([k for k in classes if (labels == k).sum() >= 3]))
            out.append(rng.choice(pool, 3, replace=False))
        elif kind == "across":
            out.append([rng.choice(np.flatnonzero(labels == k)) for k in rng.choice(classes, 3, replace=False)])
        else:
            raise ValueError(f"triplet kind {kind!r}: use 'within' or 'across'")
    return np.asarray(out, dtype=np.int64)
