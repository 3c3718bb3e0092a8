"""Sparsity and clustering of representations.

The contract (names and meanings) is fixed; see the README's Assumptions
table for how "average channel sparsity" is read.
"""

from __future__ import annotations

import torch

import numpy as np

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


def _as_tensor(a) -> torch.Tensor:
    """A tensor view of `a`; read-only numpy arrays (pandas copy-on-write) are copied, as torch needs."""
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def silhouette_score(X, labels, metric: str = "euclidean", device=None,
                     block_size: int = DEFAULT_BLOCK, backend: str = "auto") -> float:
    """The exact mean silhouette coefficient, as `sklearn.metrics.silhouette_score` defines it.

    Blockwise: distances are formed one (block x block) tile at a time in
    float64, and only per-cluster distance sums are kept, so memory is
    O(block x D + N x clusters). Each off-diagonal tile serves both its row
    and its column block (distances are symmetric), halving the work. A sample
    alone in its cluster scores 0, as in sklearn. Parity is with sklearn's
    float64 computation (sklearn's float32 cosine path is itself less exact).

    backend: "torch" runs on `device` (CUDA or CPU); "numpy" runs the same
    tiles with numpy's BLAS, which is faster on CPU because it does not
    alternate with torch's OpenMP pool; "auto" picks numpy on CPU.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}; valid choices: euclidean, cosine")
    if backend not in ("auto", "torch", "numpy"):
        raise ValueError(f"unknown backend {backend!r}; valid choices: auto, torch, numpy")
    X = _as_tensor(X)
    if X.dim() > 2:
        X = X.flatten(1)
    n = X.shape[0]
    labels = _as_tensor(labels).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"X has {n} samples but labels has {labels.shape[0]}")
    _, codes = torch.unique(labels.cpu(), return_inverse=True)
    k = int(codes.max()) + 1 if n else 0
    if not 2 <= k <= n - 1:
        raise ValueError(f"Number of labels is {k}. Valid values are 2 to n_samples - 1 (inclusive)")
    device = torch.device(device) if device is not None else X.device
    block_size = max(16, min(block_size, BLOCK_BYTES // (8 * max(1, X.shape[1]))))
    if backend == "numpy" or (backend == "auto" and device.type == "cpu"):
        sums, counts = _cluster_distance_sums(X.cpu().numpy(), codes.numpy(), k, metric, block_size, np)
        sums, counts, codes = torch.from_numpy(sums), torch.from_numpy(counts), codes
    else:
        sums, counts = _cluster_distance_sums(X.to(device), codes.to(device), k, metric, block_size, torch)
        codes = codes.to(device)
    return _silhouette_from_sums(sums, counts, codes)


def _cluster_distance_sums(X, codes, k, metric, block_size, xp):
    """sums[i, j] = total distance from sample i to the members of cluster j, tile by tile.

    `xp` is numpy or torch: the same arithmetic, on the array library that is fastest where X lives.
    """
    n = X.shape[0]
    f64 = xp.float64
    as64 = (lambda a: a.astype(np.float64)) if xp is np else (lambda a: a.to(torch.float64))
    onehot = as64(xp.eye(k)[codes] if xp is np else torch.nn.functional.one_hot(codes, k))
    counts = onehot.sum(0)
    starts = list(range(0, n, block_size))
    # Squared norms a block at a time: never a float64 copy of all of X.
    sq = xp.concatenate([(as64(X[a:a + block_size]) ** 2).sum(1) for a in starts]) if xp is np else \
        torch.cat([(as64(X[a:a + block_size]) ** 2).sum(1) for a in starts])
    if metric == "cosine":
        # sklearn's normalize() leaves all-zero rows at zero: their distance to anything is 1.
        norms = sq ** 0.5
        scale = xp.where(norms > 0, 1.0 / xp.where(norms > 0, norms, 1.0), 0.0) if xp is np else \
            torch.where(norms > 0, 1.0 / norms.clamp(min=1e-300), torch.zeros_like(norms))

    def rows(a, b):
        block = as64(X[a:b])
        return block * scale[a:b, None] if metric == "cosine" else block

    sums = xp.zeros((n, k), dtype=f64) if xp is np else torch.zeros((n, k), dtype=f64, device=X.device)
    for bi, a in enumerate(starts):
        a_end = min(a + block_size, n)
        xa = rows(a, a_end)
        for b in starts[bi:]:
            b_end = min(b + block_size, n)
            xb = xa if b == a else rows(b, b_end)
            gram = xa @ xb.T
            if metric == "euclidean":
                dist = xp.sqrt(xp.clip(sq[a:a_end, None] + sq[None, b:b_end] - 2.0 * gram, 0, None)) if xp is np \
                    else (sq[a:a_end, None] + sq[None, b:b_end] - 2.0 * gram).clamp_(min=0).sqrt_()
            else:
                dist = xp.clip(1.0 - gram, 0.0, 2.0) if xp is np else (1.0 - gram).clamp_(0.0, 2.0)
            if b == a:
                dist[range(len(dist)), range(len(dist))] = 0.0
            sums[a:a_end] += dist @ onehot[b:b_end]
            if b != a:
                sums[b:b_end] += dist.T @ onehot[a:a_end]
    return sums, counts


def _silhouette_from_sums(sums: torch.Tensor, counts: torch.Tensor, codes: torch.Tensor) -> float:
    own = counts[codes]
    intra = sums.gather(1, codes[:, None]).squeeze(1) / (own - 1).clamp(min=1)
    mean_to = sums / counts
    mean_to.scatter_(1, codes[:, None], float("inf"))
    inter = mean_to.min(dim=1).values
    denom = torch.maximum(intra, inter)
    s = torch.where(denom > 0, (inter - intra) / denom, torch.zeros_like(denom))
    s = torch.where(own > 1, s, torch.zeros_like(s))  # a singleton scores 0
    return s.mean().item()
