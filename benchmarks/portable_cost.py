"""What `cpu_portable` costs and which MKL path is portable across CPU vendors.

    python benchmarks/portable_cost.py [--profile quick] [--norm batch] [--seed 0]

Trains one model of the profile and measures it (every final-model measure), in a fresh process per numerics
setting with an empty cache each, and prints the seconds of each stage and the weights sha256. The settings:
the default (oneDNN convolutions, MKL's own choice of path), the portable numerics of bnlib.config, and the
portable numerics of before 2026-12-04 (MKL's AVX2 path in strict CNR mode), which gave other bits on an Intel
Xeon than on an AMD EPYC (benchmarks/README.md: Reproducibility).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bnlib.config import PORTABLE_ENV

CHILD = r"""
import json, os, sys, time
from bnlib import config, final_measures, measuring, params, train
portable = sys.argv[5] != "default"
if sys.argv[5] == "mkl-avx2-strict":  # the earlier portable numerics, in place of today's
    config.PORTABLE_ENV = train.PORTABLE_ENV = {"MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2"}
from bnlib.cache import Artifact
P = params.resolve(sys.argv[1], cache_dir=sys.argv[2], seeds=[int(sys.argv[4])], norms=[sys.argv[3]],
                   cpu_portable=portable, device="cpu")
t0 = time.perf_counter()
models = measuring.train_all(P, log=lambda s: None)
t1 = time.perf_counter()
with train.portable_cpu(portable):
    final_measures.experiment_results(P, models, log=lambda s: None)
t2 = time.perf_counter()
print(json.dumps({"sha": Artifact(models[0].config, P.cache_dir).weights_sha256()[:12], "train_s": t1 - t0,
                  "measure_s": t2 - t1}))
"""

SETTINGS = {  # name: the environment the process starts with
    "default": {},
    "portable": PORTABLE_ENV,
    "mkl-avx2-strict": {"MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2"},
}


def run(profile: str, norm: str, seed: int, name: str) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, profile, cache, norm, str(seed), name], check=True,
                             capture_output=True, text=True, env=os.environ | SETTINGS[name])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"| numerics ({args.profile}, {args.norm}, seed {args.seed}) | train s | measure s | x default | "
          f"weights sha256 |\n|---|---|---|---|---|")
    base = None
    for name in SETTINGS:
        got = run(args.profile, args.norm, args.seed, name)
        total = got["train_s"] + got["measure_s"]
        base = base or total
        print(f"| {name} | {got['train_s']:.1f} | {got['measure_s']:.1f} | {total / base:.2f} | {got['sha']} |",
              flush=True)


if __name__ == "__main__":
    main()
