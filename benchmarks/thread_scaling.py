"""How well one model uses more threads: the ceiling on what Ray's one-thread tasks can gain over one run.

    python benchmarks/thread_scaling.py [--profile ablation] [-p KEY=VALUE ...] [--norm batch]

Trains and measures one model (notebook 00's work, from an empty cache) in a fresh process per setting, with 1 and
with every thread, default and `cpu_portable` numerics, and prints the seconds of each part. With C cores, C
one-thread tasks at a time can beat one C-thread run by at most C x t(C threads) / t(1 thread), before Ray's
own costs.
"""

import argparse
import json
import os
import subprocess
import sys

from bnlib.config import PORTABLE_ENV
from bnlib.runner import parse_overrides

CHILD = r"""
import json, sys, tempfile, time
import torch
from threadpoolctl import threadpool_limits
from bnlib import final_measures, params, samples
from bnlib.train import get_or_train, load_train_test
profile, overrides, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
with threadpool_limits(threads), tempfile.TemporaryDirectory() as cache:
    P = params.resolve(profile, **overrides, cache_dir=cache)
    config = P.train_configs()[0]
    t = [time.perf_counter()]
    data = load_train_test(config, P.data_dir); t.append(time.perf_counter())
    model = get_or_train(config, cache_dir=cache, data=data); t.append(time.perf_counter())
    final_measures.measure_model(model, samples.representation_set(P), P); t.append(time.perf_counter())
print(json.dumps({"load": t[1] - t[0], "train": t[2] - t[1], "measure": t[3] - t[2]}))
"""


def run(profile: str, overrides: dict, threads: int, portable: bool) -> dict:
    env = os.environ | (PORTABLE_ENV if portable else {}) | {"OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", CHILD, profile, json.dumps(overrides | {"cpu_portable": portable}),
                          str(threads)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="ablation")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--norm", default="batch")
    args = ap.parse_args()
    cores = os.cpu_count()
    overrides = parse_overrides(args.param) | {"norms": [args.norm], "seeds": [0], "device": "cpu",
                                               "notebooks": ["00_models"], "progress": False}
    print(f"{args.profile} {args.norm}/seed0, {' '.join(args.param)}; {cores} CPUs; seconds, each in a fresh process")
    print("| numerics | threads | load data | train | measure | train + measure | speed-up over 1 thread | "
          f"ceiling for {cores} one-thread tasks |")
    print("|---|---|---|---|---|---|---|---|")
    for portable in (False, True):
        one = None
        for threads in (1, cores):
            t = run(args.profile, overrides, threads, portable)
            work = t["train"] + t["measure"]
            one = one or work
            # C one-thread tasks at once take one/C per model at best; one C-thread run takes `work`
            ceiling = f"{cores * work / one:.2f}x" if threads == cores else ""
            print(f"| {'cpu_portable' if portable else 'default'} | {threads} | {t['load']:.1f} | {t['train']:.1f} | "
                  f"{t['measure']:.1f} | {work:.1f} | {one / work:.2f}x | {ceiling} |", flush=True)


if __name__ == "__main__":
    main()
