"""Wall time of a profile's model grid (train + measure), sequential vs Ray tasks, from empty caches.

    python benchmarks/ray_grid.py [--profile quick] [--cpus-per-task 1] [-p KEY=VALUE ...]

Sequential: `results.train_all` + `experiment_results` in this process, as the
notebooks do. Ray: `distributed.run_grid` on a local Ray started with every
CPU (or a GPU fraction per task with -p ray_gpus=0.25). Prints both times,
the speed-up, and whether every weight file and metric came out identical.
"""

import argparse
import tempfile
import time

import pandas as pd

from bnlib import params, results
from bnlib.cache import Artifact
from bnlib.distributed import require_ray, run_grid, start_ray
from bnlib.runner import parse_overrides


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    overrides = parse_overrides(args.param) | {"notebooks": ["00_models"]}
    ray = require_ray()
    with tempfile.TemporaryDirectory() as seq_cache, tempfile.TemporaryDirectory() as ray_cache:
        P_seq = params.resolve(args.profile, **overrides, cache_dir=seq_cache)
        P_ray = params.resolve(args.profile, **overrides, cache_dir=ray_cache)
        t0 = time.perf_counter()
        models = results.train_all(P_seq, log=lambda s: None)
        want = results.experiment_results(P_seq, models, log=lambda s: None)
        sequential = time.perf_counter() - t0

        t0 = time.perf_counter()
        start_ray()
        run_grid(P_ray)
        distributed = time.perf_counter() - t0
        resources = ray.cluster_resources()
        ray.shutdown()
        got = results.experiment_results(P_ray, results.train_all(P_ray, log=lambda s: None), log=lambda s: None)
        same_weights = all(Artifact(c, seq_cache).weights_sha256() == Artifact(c, ray_cache).weights_sha256()
                           for c in P_seq.train_configs())
        same_numbers = want.reset_index(drop=True).equals(got.reset_index(drop=True))
    n = len(P_seq.train_configs())
    print(f"| grid | models | sequential | Ray ({int(resources.get('CPU', 0))} CPUs, {P_ray.ray_cpus:g} per task) | "
          f"speed-up | identical weights | identical numbers |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.profile} | {n} | {sequential:.0f} s | {distributed:.0f} s (incl. Ray start) | "
          f"{sequential / distributed:.2f}x | {same_weights} | {same_numbers} |")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
