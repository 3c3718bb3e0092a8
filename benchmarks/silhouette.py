"""bnlib.metrics.silhouette_score against sklearn.metrics.silhouette_score.

    python benchmarks/silhouette.py [--n 5000] [--dims 784 4096 16384] [--device cuda]

Prints, per dimension, both times, their ratio and the largest absolute
difference. Targets: >= 1.3x sklearn on CPU; >= 50x on a CUDA GPU.
sklearn is given float64 input, the precision both implementations compute in.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import silhouette_score as sk_silhouette

from bnlib.metrics import silhouette_score


def relu_like(n, d, classes, rng):
    """Class-dependent, sparse non-negative features, like post-ReLU representations."""
    centres = rng.normal(size=(classes, d))
    labels = rng.integers(0, classes, n)
    X = np.maximum(centres[labels] + rng.normal(scale=2.0, size=(n, d)), 0)
    return X.astype(np.float32), labels


def timed(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dims", type=int, nargs="+", default=[784, 4096, 16384])
    ap.add_argument("--metrics", nargs="+", default=["euclidean"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, n={args.n}")
    print(f"{'metric':>9} {'D':>6} {'sklearn s':>10} {'bnlib s':>9} {'ratio':>7} {'max|diff|':>10}")
    for metric in args.metrics:
        for d in args.dims:
            X, y = relu_like(args.n, d, 10, rng)
            t_sk, v_sk = timed(lambda: sk_silhouette(X.astype(np.float64), y, metric=metric), args.repeat)
            Xt = torch.from_numpy(X).to(args.device)
            silhouette_score(Xt[:200], y[:200], metric=metric, device=args.device)  # warm-up
            t_me, v_me = timed(lambda: silhouette_score(Xt, y, metric=metric, device=args.device), args.repeat)
            print(f"{metric:>9} {d:>6} {t_sk:>10.2f} {t_me:>9.3f} {t_sk / t_me:>6.1f}x {abs(v_sk - v_me):>10.2e}")


if __name__ == "__main__":
    main()
