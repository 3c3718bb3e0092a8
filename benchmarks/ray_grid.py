"""Wall time of a profile's model grid (train + measure) five ways, from empty caches, each in a fresh process.

    python benchmarks/ray_grid.py --profile ablation [--profile quick] [-p KEY=VALUE ...] [--modes ...]

- sequential: `measuring.train_all` + `experiment_results`, as notebook 00 does, all cores, default numerics;
- sequential portable: the same with `cpu_portable` (ATen convolutions; ATen and MKL on AVX2, MKL in strict CNR
  mode);
- Ray, 1 thread per task: a local Ray with every CPU, `ray_cpus=1`, portable (the runner's default);
- Ray, all cores per task: `ray_cpus` = every CPU, portable;
- Ray, 1 thread per task, default numerics: `cpu_portable` off (`-p cpu_portable=false` on the runner), the most a
  one-thread grid can gain over `sequential` with the same kernels; its bits differ from every other mode's.

Prints wall time, speed-up over sequential, and whether the portable grids' weights and numbers are bit-identical
to the sequential portable run (run first whenever a portable mode is asked for).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from bnlib import final_measures, measuring, params
from bnlib.cache import Artifact
from bnlib.config import PORTABLE_ENV
from bnlib.runner import parse_overrides

MODES = {"sequential": {}, "sequential portable": {"cpu_portable": True},
         "Ray, 1 thread per task": {"cpu_portable": True, "ray_cpus": 1},
         "Ray, all cores per task": {"cpu_portable": True, "ray_cpus": os.cpu_count()},
         "Ray, 1 thread per task, default numerics": {"cpu_portable": False, "ray_cpus": 1}}


def child(profile: str, overrides: dict, cache: str, ray: bool) -> None:
    P = params.resolve(profile, **overrides, cache_dir=cache)
    t0 = time.perf_counter()
    if ray:
        from bnlib.distributed import run_grid

        run_grid(P, log=lambda s: None)  # starts and stops a local Ray with every CPU: part of the cost
    models = measuring.train_all(P, log=lambda s: None)
    final_measures.experiment_results(P, models, log=lambda s: None)
    print(f"seconds {time.perf_counter() - t0:.3f}")


def grid(profile: str, overrides: dict, cache: str):
    P = params.resolve(profile, **overrides, cache_dir=cache)
    models = measuring.train_all(P, log=lambda s: None)
    weights = [Artifact(c, cache).weights_sha256() for c in P.train_configs()]
    return weights, final_measures.experiment_results(P, models, log=lambda s: None).reset_index(drop=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", action="append")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    overrides = parse_overrides(args.param) | {"notebooks": ["00_models"], "device": "cpu"}
    if args.child:
        mode, profile, cache = args.child
        child(profile, overrides | MODES[mode], cache, mode.startswith("Ray"))
        return
    print(f"{os.cpu_count()} CPUs; each mode from an empty cache in a fresh process")
    print("| grid | models | mode | wall | weights = sequential portable | numbers = sequential portable |")
    print("|---|---|---|---|---|---|")
    for profile in args.profile or ["quick"]:
        with tempfile.TemporaryDirectory() as root:
            reference, sequential = None, None
            # the sequential portable run is the reference of every portable mode, so it runs first when any is asked
            reference_first = ["sequential portable"] if any(MODES[m].get("cpu_portable") for m in args.modes) else []
            for mode in reference_first + [m for m in args.modes if m != "sequential portable"]:
                extra = MODES[mode]
                cache = os.path.join(root, mode.replace(" ", "-").replace(",", ""))
                env = os.environ | (PORTABLE_ENV if extra.get("cpu_portable") else {})
                out = subprocess.run([sys.executable, __file__, "--child", mode, profile, cache,
                                      *sum((["-p", p] for p in args.param), [])],
                                     env=env, check=True, capture_output=True, text=True)
                seconds = float(out.stdout.split("seconds")[-1])
                weights, numbers = grid(profile, overrides | extra, cache)
                if reference is None:
                    reference = weights, numbers
                same = (weights == reference[0], numbers.equals(reference[1])) if extra.get("cpu_portable") else \
                    ("—", "—")
                sequential = seconds if mode == "sequential" else sequential
                print(f"| {profile} | {len(weights)} | {mode} | {seconds:.0f} s | {same[0]} | {same[1]} |", flush=True)
            if sequential:
                print(f"(speed-up = sequential {sequential:.0f} s / a mode's wall time)", flush=True)


if __name__ == "__main__":
    main()
