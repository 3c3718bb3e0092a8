"""Where CPU runs of one config differ: oneDNN's instruction set and torch's thread count.

    python benchmarks/cpu_drift.py [--profile quick] [--norm batch] [--seed 0]

Trains the same config in fresh processes under each setting, with an empty
cache each, and compares the weights (sha256) and the measured numbers with the
default run. A setting that gives other bits is a source of machine-to-machine
drift: a machine with a different ISA (or a different core count) runs it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bnlib.config import PORTABLE_ENV

CHILD = r"""
import json, os, sys, torch
if os.environ.get("PORTABLE"):  # what the setting tests: ATen's own conv instead of oneDNN's, on MKL's CNR path
    torch.backends.mkldnn.enabled = False
from bnlib import final_measures, measuring, params
from bnlib.cache import Artifact
P = params.resolve(sys.argv[1], cache_dir=sys.argv[2], seeds=[int(sys.argv[4])], norms=[sys.argv[3]])
models = measuring.train_all(P, log=lambda s: None)
df = final_measures.experiment_results(P, models, log=lambda s: None)
print(json.dumps({"sha": Artifact(models[0].config, P.cache_dir).weights_sha256(), "threads": torch.get_num_threads(),
                  "values": {f"{r.layer}/{r.metric}": r.value for r in df.itertuples()}}))
"""

P = {"PORTABLE": "1"}  # oneDNN off: ATen's own convolutions
CAPS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}  # what an AVX2-only CPU would run
SETTINGS = {
    "default": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "oneDNN AVX2, 1 thread": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"},
    "oneDNN AVX512": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "portable": P | PORTABLE_ENV,  # what cpu_portable runs
    "portable, 1 thread": P | PORTABLE_ENV | {"OMP_NUM_THREADS": "1"},
    "portable, oneDNN and MKL AVX2 caps": P | PORTABLE_ENV | CAPS,
    "portable, caps, 1 thread": P | PORTABLE_ENV | CAPS | {"OMP_NUM_THREADS": "1"},
    "portable without the ATen AVX2 pin": P | {k: v for k, v in PORTABLE_ENV.items() if k != "ATEN_CPU_CAPABILITY"},
    # the portable numerics until 2026-12-04: one CPU's bits for any thread count, but other bits on Intel and AMD
    "MKL AVX2 strict, ATen AVX2": P | {"MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2"},
    "MKL COMPATIBLE": P | {"MKL_CBWR": "COMPATIBLE"},
    "MKL COMPATIBLE, 1 thread": P | {"MKL_CBWR": "COMPATIBLE", "OMP_NUM_THREADS": "1"},
    "MKL COMPATIBLE, ATen AVX2": P | {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "avx2"},
    "ATen convs without MKL_CBWR": P,
    "ATen convs without MKL_CBWR, 1 thread": P | {"OMP_NUM_THREADS": "1"},
}


def run(profile, norm, seed, env):
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", CHILD, profile, cache, norm, str(seed)], check=True,
                             capture_output=True, text=True, env=os.environ | env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    args = ap.parse_args()
    base = None
    portable_base = None
    print("| setting | torch threads | weights sha256 | identical to default | largest |Δ| (metric) |")
    print("|---|---|---|---|---|")
    for name in args.settings:
        got = run(args.profile, args.norm, args.seed, SETTINGS[name])
        base = base or got
        if name.startswith("portable"):  # compared with the first portable row as well
            portable_base = portable_base or got
            got["same_as_portable"] = got["sha"] == portable_base["sha"]
        diffs = {k: abs(v - base["values"][k]) for k, v in got["values"].items()}
        worst = max(diffs, key=diffs.get)
        same = got["sha"] == base["sha"]
        if "same_as_portable" in got:
            same = f"{same} (same as 'portable': {got['same_as_portable']})"
        print(f"| {name} | {got['threads']} | {got['sha'][:12]} | {same} | {diffs[worst]:.2g} ({worst}) |", flush=True)


if __name__ == "__main__":
    main()
