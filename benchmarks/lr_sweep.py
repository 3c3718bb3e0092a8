"""A small learning-rate sweep per variant, to choose `lr` in a profile.

    python benchmarks/lr_sweep.py --profile cifar10-jpeg --lrs 3e-3 1e-3 3e-4 1e-4 --epochs 10   # GPU
    python benchmarks/lr_sweep.py --profile smoke --lrs 0.1 0.01 --epochs 1                       # CPU check

Trains seed 0 of each norm at each lr with the profile's other settings (fewer
epochs if asked) and prints final test accuracy and status. Results are cached
like any model, so a sweep run can be extended.
"""

import argparse

import pandas as pd

from bnlib.params import resolve
from bnlib.train import get_or_train, load_train_test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cifar10-jpeg")
    ap.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4, 1e-4])
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    params = resolve(args.profile, **({"epochs": args.epochs} if args.epochs else {}))
    rows, data = [], None
    for norm in params.norms:
        for lr in args.lrs:
            config = params.train_config(norm, args.seed).model_copy(update={"lr": lr})
            data = data or load_train_test(config, params.data_dir)
            r = get_or_train(config, params.data_dir, params.cache_dir, data=data)
            rows.append({"norm": norm, "lr": lr, "status": r.status, "test_accuracy": r.test_accuracy,
                         "train_accuracy": r.train_accuracy})
            print(rows[-1], flush=True)
    print(pd.DataFrame(rows).pivot(index="lr", columns="norm", values="test_accuracy").to_string())


if __name__ == "__main__":
    main()
