"""Could `cpu_portable` training be cheaper? One cnn4 training step three ways, at 1 thread and at every thread.

    python benchmarks/portable_step.py [--norm batch] [--batch 128] [--steps 20]

- default: oneDNN convolutions (what a sequential run uses);
- portable, ATen: the `cpu_portable` path (oneDNN off, PORTABLE_ENV), as bnlib.train runs it;
- portable, one GEMM: each convolution as a single whole-batch im2col GEMM (MKL AVX2 in strict CNR mode, whose
  products do not depend on the thread count), the obvious way to hand MKL bigger products than ATen's per-sample
  ones. Timed only: its bits are not checked here.

Each setting runs in a fresh process (MKL and ATen read their environment once); milliseconds per step, mean of
`--steps` after 3 warm-up steps. A Ray task of `ray_cpus: 1` trains at the 1-thread speed of its numerics.
"""

import argparse
import json
import os
import subprocess
import sys

from bnlib.config import PORTABLE_ENV

CHILD = r"""
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
from bnlib.models import build_model
from bnlib.train import portable_cpu
mode, threads, norm, batch, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)


class WholeBatchGemmConv(torch.autograd.Function):
    # 3x3, stride 1, padding 1 (every cnn4 conv): out = W @ im2col(x) over the whole batch, and the two products of
    # the backward pass likewise, so MKL sees [C_out, 9 C_in] x [9 C_in, N H W] instead of N small products
    @staticmethod
    def forward(ctx, x, w, b):
        n, c, h, wd = x.shape
        cols = F.unfold(x, 3, padding=1).transpose(0, 1).reshape(c * 9, n * h * wd)
        ctx.save_for_backward(cols, w)
        ctx.shape = x.shape
        out = (w.reshape(w.shape[0], -1) @ cols).reshape(w.shape[0], n, h, wd).transpose(0, 1)
        return (out if b is None else out + b.view(1, -1, 1, 1)).contiguous()

    @staticmethod
    def backward(ctx, grad):
        cols, w = ctx.saved_tensors
        n, c, h, wd = ctx.shape
        g = grad.transpose(0, 1).reshape(w.shape[0], n * h * wd)
        gw = (g @ cols.t()).reshape(w.shape)
        gx = None
        if ctx.needs_input_grad[0]:
            gcols = (w.reshape(w.shape[0], -1).t() @ g).reshape(c * 9, n, h * wd).transpose(0, 1)
            gx = F.fold(gcols, (h, wd), 3, padding=1)
        return gx, gw, grad.sum((0, 2, 3)) if ctx.needs_input_grad[2] else None


if mode == "portable, one GEMM":
    nn.Conv2d._conv_forward = lambda self, x, w, b: WholeBatchGemmConv.apply(x, w, b)
torch.manual_seed(0)
model = build_model("cnn4", norm)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))


def step():
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()


with portable_cpu(mode != "default"):
    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
print(json.dumps({"ms": (time.perf_counter() - t) / steps * 1000}))
"""

MODES = ("default", "portable, ATen", "portable, one GEMM")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"cnn4 {args.norm}, batch {args.batch}, MNIST-sized input; ms per training step, mean of {args.steps}")
    print(f"| numerics | 1 thread | {cores} threads |")
    print("|---|---|---|")
    for mode in MODES:
        row = []
        for threads in (1, cores):
            env = os.environ | (PORTABLE_ENV if mode != "default" else {}) | {"OMP_NUM_THREADS": str(threads)}
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(threads), args.norm, str(args.batch),
                                  str(args.steps)], env=env, check=True, capture_output=True, text=True)
            row.append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
        print(f"| {mode} | {row[0]:.0f} | {row[1]:.0f} |", flush=True)


if __name__ == "__main__":
    main()
