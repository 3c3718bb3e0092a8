"""VGG-16 training throughput on this CPU, by width: float32 vs bf16 autocast vs torch.compile.

    python benchmarks/vgg_cpu_throughput.py [--widths 0.125 0.25 0.375 0.5] [--batch 256] [--steps 6]

Synthetic CIFAR-sized batches (channels_last), Adam steps, BN and no BN, the
same model code the trainer uses. Reports images/s per setting after warm-up
steps; bf16 is the `cpu_bf16` key, compile the `compile` key. It picks the
settings for the `cifar10-cpu` profile.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from bnlib.models import build_model, count_parameters


def images_per_second(width, norm, mode, batch, steps, warmup=2):
    torch.manual_seed(0)
    model = build_model("vgg16", norm, width=width).to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if mode == "bf16+compile" else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    bf16 = mode.startswith("bf16")
    for i in range(warmup + steps):
        if i == warmup:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(step_model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t0), count_parameters(model)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25, 0.375, 0.5])
    ap.add_argument("--norms", nargs="+", default=["batch", "none"])
    ap.add_argument("--modes", nargs="+", default=["float32", "bf16", "bf16+compile"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.steps} timed Adam steps after warm-up, channels_last")
    print(f"{'width':>6} {'norm':>6} {'params':>10} " + " ".join(f"{m:>13}" for m in args.modes) + "  (images/s)")
    for width in args.widths:
        for norm in args.norms:
            speeds = []
            for mode in args.modes:
                ips, n_params = images_per_second(width, norm, mode, args.batch, args.steps)
                speeds.append(ips)
            print(f"{width:>6} {norm:>6} {n_params:>10,} " + " ".join(f"{s:>13,.0f}" for s in speeds), flush=True)


if __name__ == "__main__":
    main()
