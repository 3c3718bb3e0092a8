"""Every CPU kernel the project chooses between, timed under this CPU's own instruction set and under an AVX2 cap.

    python benchmarks/cpu_kernels.py            # native, then ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2

Each class runs in its own process (both caps are read once, at start-up). Rows:
the Hamming product of 0/1 codes (int8 GEMM vs float32; notebook 04's
binary-code views), a training step of VGG-16 at width 3/8 and of cnn4 in
float32 and bf16 autocast (`cpu_bf16`), cnn4 with `cpu_portable` (ATen
convolutions, MKL in CNR mode), and the float64 silhouette tile through numpy
and torch. The last column says what `bnlib.kernels` picks on that class.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

from bnlib import kernels
from bnlib.models import build_model


def _train_step_seconds(arch, norm, width, batch, bf16, portable=False):
    torch.manual_seed(0)
    model = build_model(arch, norm, width=width).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    shape = (3, 32, 32) if arch == "vgg16" else (1, 28, 28)
    x = torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        with torch.backends.mkldnn.flags(enabled=not portable), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return kernels.best_time(step, repeats=2)


def measure() -> dict:
    import numpy as np

    rows = {}
    codes = kernels.time_int8_gemm((1024, 4096, 1024))
    rows["code product 1024x4096x1024: int8 GEMM"] = codes["int8"]
    rows["code product 1024x4096x1024: float32"] = codes["float32"]
    for arch, width, batch in (("vgg16", 0.375, 64), ("cnn4", 1.0, 128)):
        for label, bf16 in (("float32", False), ("bf16 autocast", True)):
            rows[f"{arch} w{width:g} BN step, batch {batch}: {label}"] = _train_step_seconds(arch, "batch", width,
                                                                                             batch, bf16)
    rows["cnn4 w1 BN step, batch 128: cpu_portable"] = _train_step_seconds("cnn4", "batch", 1.0, 128, False, True)
    a = np.random.default_rng(0).standard_normal((1024, 4096))
    ta = torch.from_numpy(a)
    rows["float64 tile 1024x4096x1024: numpy"] = kernels.best_time(lambda: a @ a.T)
    rows["float64 tile 1024x4096x1024: torch"] = kernels.best_time(lambda: ta @ ta.T)
    return {"class": kernels.machine_class(), "seconds": rows,
            "picks": {"code product": "int8 GEMM" if kernels.int8_gemm_is_fast() else "float32",
                      "cpu_bf16: auto": "bf16" if kernels.native_bf16() else "float32"}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    results = []
    for cap in ({}, kernels.AVX2_CAP):
        env = {k: v for k, v in os.environ.items() if k not in kernels.ISA_CAP_ENV} | cap
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    native, capped = results
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; best of a few runs, seconds")
    print(f"| kernel | {native['class']} | {capped['class']} | capped / native |")
    print("|---|---|---|---|")
    for name, t in native["seconds"].items():
        c = capped["seconds"][name]
        print(f"| {name} | {t:.4f} | {c:.4f} | {c / t:.1f}x |")
    for what in native["picks"]:
        print(f"| picks, {what} | {native['picks'][what]} | {capped['picks'][what]} | |")


if __name__ == "__main__":
    main()
