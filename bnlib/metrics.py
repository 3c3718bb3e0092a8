"""Sparsity, clustering and similarity of representations.

The contract (names and meanings) is fixed; see the README's Assumptions
table for how "average channel sparsity" is read.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .kernels import code_product

DEFAULT_BLOCK = 2048
BLOCK_BYTES = 128 * 2**20  # a silhouette tile's float64 rows stay under this, whatever the dimension
ROW_CHUNK = 256  # sparsity metrics work on this many samples at a time: no full-size temporaries


def _row_chunks(acts: torch.Tensor):
    for start in range(0, acts.shape[0], ROW_CHUNK):
        yield acts[start:start + ROW_CHUNK]


def _per_channel_max(acts: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C] largest |activation| of each channel map; [N, C] -> |acts|."""
    if acts.dim() not in (2, 4):
        raise ValueError(f"expected activations of shape [N, C, H, W] or [N, C], got {tuple(acts.shape)}")
    if acts.dim() == 2:
        return acts.abs()
    return torch.cat([chunk.abs().amax(dim=(2, 3)) for chunk in _row_chunks(acts)]) if len(acts) else \
        acts.new_zeros(acts.shape[:2])


def channel_sparsity(acts: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Per sample, the fraction of channels whose whole feature map is zero (|a| <= threshold).

    For `[N, C]` (a dense layer) a channel is one unit. Returns shape `[N]`.
    """
    return (_per_channel_max(acts) <= threshold).float().mean(dim=1)


def element_sparsity(acts: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Per sample, the fraction of entries with |a| <= threshold (0: exactly zero). Shape `[N]`."""
    return torch.cat([(chunk.abs() <= threshold).flatten(1).float().mean(dim=1) for chunk in _row_chunks(acts)])


def dead_channels(acts: torch.Tensor, threshold: float = 0.0) -> float:
    """The fraction of channels that are zero (|a| <= threshold) for every sample."""
    return (_per_channel_max(acts) <= threshold).all(dim=0).float().mean().item()


def spatial_mean_pool(acts: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C], the cheaper 'pooled' view; [N, C] passes through."""
    return acts.mean(dim=(2, 3)) if acts.dim() == 4 else acts


def as_tensor(a) -> torch.Tensor:
    """A tensor view of `a`; read-only numpy arrays (pandas copy-on-write) are copied, as torch needs."""
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


MATMUL_BACKENDS = ("auto", "torch", "numpy")


def _matmul(a: torch.Tensor, b: torch.Tensor, backend: str) -> torch.Tensor:
    """a @ b. On CPU, "auto" hands the product to numpy's BLAS: benchmarks/silhouette.py measures it faster
    there than torch's (no hand-over to torch's OpenMP pool between tiles). On CUDA it is torch's.

    int8 inputs (0/1 codes) give an exact int32 product through `kernels.code_product`: torch's integer GEMM
    where it beats float32 on this CPU (3.9 s against 11.6 s for the code neighbours of an mnist model on an
    AVX-512 VNNI CPU, benchmarks/views_cost.py), else a float32 product, exact too for sums below 2^24."""
    if a.dtype == torch.int8:
        return code_product(a, b)
    if backend == "numpy" or (backend == "auto" and a.device.type == "cpu"):
        return torch.from_numpy(a.cpu().numpy() @ b.cpu().numpy()).to(a.device)
    return a @ b


def prepare_samples(X, labels=None, device=None):
    """X as a [N, D] tensor on `device`, and labels as class codes 0..k-1 on the same device."""
    X = as_tensor(X)
    if X.dim() > 2:
        X = X.flatten(1)
    device = torch.device(device) if device is not None else X.device
    X = X.to(device)
    if labels is None:
        return X, None, 0
    labels = as_tensor(labels).reshape(-1)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but labels has {labels.shape[0]}")
    _, codes = torch.unique(labels.cpu(), return_inverse=True)
    k = int(codes.max()) + 1 if len(codes) else 0
    return X, codes.to(device), k


def pairwise_tiles(X: torch.Tensor, metric: str = "euclidean", block_size: int = DEFAULT_BLOCK,
                   dtype: torch.dtype = torch.float64, backend: str = "auto"):
    """Every pairwise distance of the rows of X, one tile at a time: yields `(rows, cols, dist)`.

    `dist[i, j]` is the distance from sample `rows.start + i` to sample
    `cols.start + j`. Together the tiles cover the full N x N matrix exactly
    once, but each off-diagonal tile is computed once and also yielded
    transposed (distances are symmetric). Self-distances are exactly 0.
    Memory is O(block x D) whatever N is: a tile's rows are converted to
    `dtype` only when used, and the block shrinks for wide X.

    metric: "euclidean"; "cosine" (1 - cosine similarity; an all-zero row is
    at distance 1 from everything, as sklearn's normalize() leaves it);
    "sqeuclidean" (on 0/1 codes, the Hamming distance).
    """
    if metric not in ("euclidean", "cosine", "sqeuclidean"):
        raise ValueError(f"unknown metric {metric!r}; valid choices: euclidean, cosine, sqeuclidean")
    if backend not in MATMUL_BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid choices: {', '.join(MATMUL_BACKENDS)}")
    n, d = X.shape
    itemsize = torch.empty((), dtype=dtype).element_size()
    block_size = max(16, min(block_size, BLOCK_BYTES // (itemsize * max(1, d))))
    starts = [slice(a, min(a + block_size, n)) for a in range(0, n, block_size)]
    sq = torch.cat([(X[s].to(dtype) ** 2).sum(1) for s in starts]) if n else X.new_zeros(0, dtype=dtype)
    scale = torch.where(sq > 0, sq.clamp(min=1e-300).rsqrt(), torch.zeros_like(sq)) if metric == "cosine" else None

    def rows(s):
        block = X[s].to(dtype)
        return block * scale[s, None] if scale is not None else block

    for i, a in enumerate(starts):
        xa = rows(a)
        for b in starts[i:]:
            gram = _matmul(xa, (xa if b == a else rows(b)).T, backend)
            if metric == "cosine":
                dist = (1.0 - gram).clamp_(0.0, 2.0)
            else:
                dist = (sq[a, None] + sq[None, b] - 2.0 * gram).clamp_(min=0)
                if metric == "euclidean":
                    dist = dist.sqrt_()
            if b == a:
                dist.fill_diagonal_(0.0)
                yield a, a, dist
            else:
                yield a, b, dist
                yield b, a, dist.T


class _SilhouetteSums:
    """Per sample, the summed distance to each class's members; the silhouette follows from these sums."""

    def __init__(self, codes: torch.Tensor, k: int, backend: str):
        self.codes, self.backend = codes, backend
        self.onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)
        self.sums = torch.zeros((len(codes), k), dtype=torch.float64, device=codes.device)

    def update(self, rows, cols, dist):
        self.sums[rows] += _matmul(dist, self.onehot[cols], self.backend)

    def result(self) -> float:
        codes, counts = self.codes, self.onehot.sum(0)
        own = counts[codes]
        intra = self.sums.gather(1, codes[:, None]).squeeze(1) / (own - 1).clamp(min=1)
        mean_to = self.sums / counts
        mean_to.scatter_(1, codes[:, None], float("inf"))
        inter = mean_to.min(dim=1).values
        denom = torch.maximum(intra, inter)
        s = torch.where(denom > 0, (inter - intra) / denom, torch.zeros_like(denom))
        s = torch.where(own > 1, s, torch.zeros_like(s))  # a singleton scores 0
        return s.mean().item()


class _NearestNeighbours:
    """A running top-k of each sample's nearest *other* samples; the kNN vote follows from it."""

    def __init__(self, codes: torch.Tensor, n_classes: int, k: int):
        n = len(codes)
        if not 1 <= k <= n - 1:
            raise ValueError(f"k = {k} must be between 1 and n_samples - 1 = {n - 1}")
        self.codes, self.n_classes, self.k = codes, n_classes, k
        self.dist = torch.full((n, k), float("inf"), dtype=torch.float64, device=codes.device)
        self.index = torch.zeros((n, k), dtype=torch.long, device=codes.device)

    def update(self, rows, cols, dist):
        if rows == cols:
            dist = dist.clone().fill_diagonal_(float("inf"))  # a sample is not its own neighbour
        col_index = torch.arange(cols.start, cols.stop, device=dist.device).expand(dist.shape[0], -1)
        cand_d = torch.cat([self.dist[rows], dist.to(torch.float64)], dim=1)
        cand_i = torch.cat([self.index[rows], col_index], dim=1)
        top = cand_d.topk(self.k, dim=1, largest=False, sorted=False).indices
        self.dist[rows], self.index[rows] = cand_d.gather(1, top), cand_i.gather(1, top)

    def result(self) -> float:
        votes = torch.nn.functional.one_hot(self.codes[self.index], self.n_classes).sum(1)
        return (votes.argmax(1) == self.codes).double().mean().item()  # argmax: a tie goes to the smallest class


def _check_metric(metric):
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; valid choices: euclidean, cosine")


def _check_label_count(k, n):
    if not 2 <= k <= n - 1:
        raise ValueError(f"Number of labels is {k}. Valid values are 2 to n_samples - 1 (inclusive)")


def silhouette_score(X, labels, metric: str = "euclidean", device=None,
                     block_size: int = DEFAULT_BLOCK, backend: str = "auto") -> float:
    """The exact mean silhouette coefficient, as `sklearn.metrics.silhouette_score` defines it.

    For sample i with mean distance a(i) to the other members of its class and
    b(i) to the members of the nearest other class, s(i) = (b - a) / max(a, b);
    a sample alone in its class scores 0. Every distance comes from
    `pairwise_tiles` in float64; only per-class distance sums are kept, so
    memory is O(block x D + N x classes). Parity is with sklearn's float64
    computation (sklearn's float32 cosine path is itself less exact).
    `backend` picks the tile product's library (see `_matmul`).
    """
    _check_metric(metric)
    X, codes, k = prepare_samples(X, labels, device)
    _check_label_count(k, X.shape[0])
    sums = _SilhouetteSums(codes, k, backend)
    for tile in pairwise_tiles(X, metric, block_size, backend=backend):
        sums.update(*tile)
    return sums.result()


def knn_accuracy(X, labels, k: int = 10, metric: str = "euclidean", device=None,
                 block_size: int = DEFAULT_BLOCK, backend: str = "auto") -> float:
    """Leave-one-out k-nearest-neighbour accuracy with the classes as targets.

    Each sample is classified by a majority vote of its k nearest *other*
    samples (uniform weights; a tied vote goes to the smallest class label,
    as sklearn's `KNeighborsClassifier` does); the score is the fraction
    classified correctly. Neighbours are kept as a running top-k per row over
    `pairwise_tiles`, so memory is O(block x D + N x k). Public API for notebooks: the pipeline takes it in
    the silhouette's pass (`silhouette_and_knn`).
    """
    _check_metric(metric)
    X, codes, n_classes = prepare_samples(X, labels, device)
    neighbours = _NearestNeighbours(codes, n_classes, k)
    for tile in pairwise_tiles(X, metric, block_size, backend=backend):
        neighbours.update(*tile)
    return neighbours.result()


def silhouette_and_knn(X, labels, k: int = 10, metric: str = "euclidean", device=None,
                       block_size: int = DEFAULT_BLOCK, backend: str = "auto") -> tuple[float, float]:
    """`silhouette_score` and `knn_accuracy` from one pass over the distance tiles: half the cost of both."""
    _check_metric(metric)
    X, codes, n_classes = prepare_samples(X, labels, device)
    _check_label_count(n_classes, X.shape[0])
    sums, neighbours = _SilhouetteSums(codes, n_classes, backend), _NearestNeighbours(codes, n_classes, k)
    for tile in pairwise_tiles(X, metric, block_size, backend=backend):
        sums.update(*tile)
        neighbours.update(*tile)
    return sums.result(), neighbours.result()


def _fit_logistic(train_X, train_y, C, max_iter):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter)).fit(train_X, train_y)


def linear_probe_accuracy(train_X, train_y, test_X, test_y, C: float = 1.0, max_iter: int = 500) -> float:
    """Test accuracy of a multinomial logistic regression fitted on representations of training samples.

    Features are standardised (fitted on the training representations only),
    then sklearn's `LogisticRegression` (lbfgs, L2 penalty, inverse strength
    `C`) is fitted on (train_X, train_y) and scored on the representations of
    held-out test images. A high score means the classes are linearly
    separable at this layer, for images the model never trained on.
    """

    def flat(a):
        a = as_tensor(a)
        return (a.flatten(1) if a.dim() > 2 else a).double().cpu().numpy()

    with warnings.catch_warnings():
        # lbfgs stopping at max_iter on separable data changes the third decimal at most: reported, not fatal
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _fit_logistic(flat(train_X), as_tensor(train_y).cpu().numpy(), C, max_iter)
    return float(model.score(flat(test_X), as_tensor(test_y).cpu().numpy()))


def centered_gram(X, device=None, dtype: torch.dtype = torch.float64, block_size: int = DEFAULT_BLOCK) -> torch.Tensor:
    """K = Xc Xc^T for the column-centred X (so K is doubly centred): the N x N input of linear CKA."""
    X, _, _ = prepare_samples(X, None, device)
    n, d = X.shape
    block_size = max(16, min(block_size, BLOCK_BYTES // (8 * max(1, d))))
    starts = [slice(a, min(a + block_size, n)) for a in range(0, n, block_size)]
    mean = sum(X[s].to(torch.float64).sum(0) for s in starts) / max(n, 1)
    centred = [(X[s].to(torch.float64) - mean).to(dtype) for s in starts]
    K = torch.empty((n, n), dtype=dtype, device=X.device)
    for s, a in zip(starts, centred):
        for t, b in zip(starts, centred):
            K[s, t] = a @ b.T
    return K


def cka_from_grams(K: torch.Tensor, L: torch.Tensor) -> float:
    """Linear CKA from two doubly-centred Gram matrices: <K, L>_F / (||K||_F ||L||_F)."""
    K, L = K.to(torch.float64), L.to(torch.float64)
    return ((K * L).sum() / (K.norm() * L.norm())).item()


def linear_cka(X, Y, device=None) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two representations of the same samples.

    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), columns centred.
    It is 1 for representations equal up to an orthogonal transform and an
    isotropic scale, and in [0, 1]. Computed in feature space when both
    representations are narrower than N, else from N x N Gram matrices. Public API for notebooks: the pipeline
    keeps one Gram matrix per model (`centered_gram`) and pairs them (`cka_from_grams`).
    """
    X, _, _ = prepare_samples(X, None, device)
    Y, _, _ = prepare_samples(Y, None, X.device)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}: CKA compares the same samples")
    n = X.shape[0]
    if X.shape[1] <= n and Y.shape[1] <= n:
        Xc = X.to(torch.float64) - X.to(torch.float64).mean(0)
        Yc = Y.to(torch.float64) - Y.to(torch.float64).mean(0)
        return ((Yc.T @ Xc).norm() ** 2 / ((Xc.T @ Xc).norm() * (Yc.T @ Yc).norm())).item()
    return cka_from_grams(centered_gram(X), centered_gram(Y))


def _flat_numpy(X) -> np.ndarray:
    X = as_tensor(X)
    return (X.flatten(1) if X.dim() > 2 else X).cpu().numpy()


def davies_bouldin(X, labels) -> float:
    """sklearn's Davies–Bouldin index on the flattened representations, classes as clusters (lower: better)."""
    return float(davies_bouldin_score(_flat_numpy(X), as_tensor(labels).cpu().numpy()))


def calinski_harabasz(X, labels) -> float:
    """sklearn's Calinski–Harabasz index on the flattened representations, classes as clusters (higher: better)."""
    return float(calinski_harabasz_score(_flat_numpy(X), as_tensor(labels).cpu().numpy()))


def within_between_ratio(X, labels, device=None) -> float:
    """tr(S_within) / tr(S_between), classes as groups (neural-collapse NC1 style; lower: tighter classes).

    tr(S_within) = sum_i ||x_i - mu_{c(i)}||^2 and tr(S_between) = sum_c n_c ||mu_c - mu||^2,
    accumulated in float64 one block of samples at a time.
    """
    X, codes, k = prepare_samples(X, labels, device)
    onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)
    counts = onehot.sum(0)
    class_sums = sum(onehot[s].T @ X[s].to(torch.float64) for s in _slices(len(X)))
    means = class_sums / counts[:, None]
    overall = class_sums.sum(0) / counts.sum()
    within = sum(((X[s].to(torch.float64) - means[codes[s]]) ** 2).sum() for s in _slices(len(X)))
    between = (counts * ((means - overall) ** 2).sum(1)).sum()
    return (within / between).item()


def _slices(n: int, size: int = ROW_CHUNK):
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]
