"""A short learning-rate (and initialisation) sweep per variant, to choose `lr` and `init` in a profile.

    python tools/lr_sweep.py --profile cifar10-cpu --lrs 3e-3 1e-3 3e-4 --epochs 4 --train-subset 10000 \
        --inits pytorch vgg                                                                         # CPU
    python tools/lr_sweep.py --profile cifar10-jpeg --lrs 3e-3 1e-3 3e-4 1e-4 --epochs 10     # GPU

Trains seed 0 of each norm at each lr (and init) with the profile's other
settings, on a stratified training subset and fewer epochs if asked, and
prints final test accuracy, status and training seconds, then a markdown
table for the README. Every model is cached like any other, so a sweep can
be extended or re-printed for free.
"""

import argparse

import pandas as pd

from bnlib.params import resolve
from bnlib.train import get_or_train, load_train_test


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="cifar10-jpeg")
    ap.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4, 1e-4])
    ap.add_argument("--inits", nargs="+", default=None, help="default: the profile's init")
    ap.add_argument("--norms", nargs="+", default=None, help="default: the profile's norms")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overrides = {k: v for k, v in (("epochs", args.epochs), ("train_subset", args.train_subset)) if v}
    params = resolve(args.profile, **overrides)
    rows, data = [], None
    for norm in args.norms or params.norms:
        for init in args.inits or [params.init]:
            for lr in args.lrs:
                config = params.train_config(params.norms[0], args.seed).model_copy(
                    update={"norm": norm, "lr": lr, "init": init})
                data = data or load_train_test(config, params.data_dir)
                r = get_or_train(config, params.data_dir, params.cache_dir, data=data)
                seconds = sum(h["train_seconds"] for h in r.history)
                rows.append({"norm": norm, "init": init, "lr": lr, "status": r.status,
                             "test_accuracy": r.test_accuracy, "train_accuracy": r.train_accuracy,
                             "final_train_loss": r.history[-1]["train_loss"], "train_seconds": round(seconds)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.profile}: seed {args.seed}, {params.epochs} epochs, train_subset {params.train_subset}\n")
    wide = table.pivot_table(index="lr", columns=["norm", "init"], values="test_accuracy").sort_index(ascending=False)
    print("| lr | " + " | ".join(f"{n} ({i} init)" for n, i in wide.columns) + " |")
    print("|---" * (len(wide.columns) + 1) + "|")
    for lr, r in wide.iterrows():
        print(f"| {lr:g} | " + " | ".join(f"{v:.3f}" for v in r) + " |")


if __name__ == "__main__":
    main()
