"""Binary activation codes: each sample's on/off ReLU pattern, and the clustering views read off them.

A unit is on when its post-ReLU value is > 0. The views compare codes by Hamming distance, computed exactly as an
integer product of 0/1 codes through `metrics.pairwise_tiles` (bnlib.kernels picks the fast exact kernel).
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import DEFAULT_BLOCK, as_tensor, pairwise_tiles, prepare_samples


def activation_codes(X) -> torch.Tensor:
    """Each sample's on/off ReLU pattern: a boolean [N, D] code, True where the unit is active (> 0)."""
    X = as_tensor(X)
    return (X.flatten(1) if X.dim() > 2 else X) > 0


def distinct_codes(X) -> int:
    """How many different binary activation codes the samples produce."""
    packed = np.packbits(activation_codes(X).cpu().numpy(), axis=1)
    return int(len(np.unique(packed, axis=0)))


def code_purity(X, labels) -> float:
    """Class purity of the groups of samples that share one binary code: sum of each group's majority-class count / N.

    1 when no code is shared between classes. Samples with a unique code are
    their own (pure) group, so read it next to `distinct_codes`.
    """
    packed = np.packbits(activation_codes(X).cpu().numpy(), axis=1)
    _, group = np.unique(packed, axis=0, return_inverse=True)
    labels = as_tensor(labels).cpu().numpy().reshape(-1)
    table = _group_class_counts(group.reshape(-1), labels)
    return float(table.max(axis=1).sum() / len(labels))


def _group_class_counts(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts[g, c] of samples in group g with class c."""
    _, classes = np.unique(labels, return_inverse=True)
    counts = np.zeros((groups.max() + 1, classes.max() + 1), dtype=np.int64)
    np.add.at(counts, (groups, classes), 1)
    return counts


def code_neighbour_agreement(X, labels, device=None, block_size: int = DEFAULT_BLOCK, backend: str = "auto") -> float:
    """The fraction of samples whose nearest other code in Hamming distance has the same class.

    When several samples tie at the nearest distance (common: distances are
    integers, and identical codes are at 0), the sample scores the fraction of
    them with its class: the expected agreement under a random tie-break, so
    the result does not depend on sample order. Hamming distances come from
    `pairwise_tiles` on 0/1 codes with an exact integer product.
    """
    X, codes, _ = prepare_samples(X, labels, device)
    bits = activation_codes(X).to(torch.int8)
    if bits.shape[1] % 8:  # the integer GEMM wants the inner size a multiple of 8; zero units change no distance
        bits = torch.nn.functional.pad(bits, (0, 8 - bits.shape[1] % 8))
    n = bits.shape[0]
    if n < 2:
        raise ValueError("need at least 2 samples")
    nearest = torch.full((n,), float("inf"), dtype=torch.float32, device=X.device)
    same = torch.zeros(n, dtype=torch.float64, device=X.device)
    total = torch.zeros(n, dtype=torch.float64, device=X.device)
    for rows, cols, dist in pairwise_tiles(bits, "sqeuclidean", block_size, dtype=torch.int8, backend=backend):
        dist = dist.to(torch.float32)  # integer Hamming distances, exact in float32 below 2^24
        if rows == cols:
            dist.fill_diagonal_(float("inf"))
        tile_min = dist.min(1).values
        at_min = dist == tile_min[:, None]
        hit = (codes[rows, None] == codes[None, cols]) & at_min
        closer, tie = tile_min < nearest[rows], tile_min == nearest[rows]
        same[rows] = torch.where(closer, hit.sum(1).double(), same[rows] + torch.where(tie, hit.sum(1).double(), 0.0))
        total[rows] = torch.where(closer, at_min.sum(1).double(),
                                  total[rows] + torch.where(tie, at_min.sum(1).double(), 0.0))
        nearest[rows] = torch.minimum(nearest[rows], tile_min)
    return (same / total).mean().item()
