"""Peak memory of capturing every hidden layer: streaming (one layer at a time) vs keep-everything.

    python benchmarks/capture_memory.py [--arch cnn4 --n 5000] [--arch vgg16 --n 1000]

Each path runs in a fresh subprocess; we report its peak RSS above the RSS it
had once the model and images were loaded, against the size of the largest
single layer's activation matrix. Target for streaming: <= 1.5x that matrix.
"""

import argparse
import json
import resource
import subprocess
import sys


def child(arch, n, path, batch):
    import torch

    from bnlib.hooks import capture_all, iter_representations
    from bnlib.metrics import channel_sparsity, dead_channels, element_sparsity, silhouette_score
    from bnlib.models import INPUT_SHAPES, build_model

    torch.manual_seed(0)
    model = build_model(arch, "batch").eval()
    images = torch.randint(0, 256, (n, *INPUT_SHAPES[arch]), dtype=torch.uint8)
    labels = torch.arange(n) % 10
    normalise = lambda x: x.float() / 255  # noqa: E731
    with torch.no_grad():  # warm up the allocator and kernels on a small batch first
        model(normalise(images[:batch]))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    largest = 0
    if path == "stream":
        for _, acts in iter_representations(model, images, normalise, batch_size=batch):
            largest = max(largest, acts.numel() * acts.element_size())
            # what results.measure_model computes, one layer at a time
            channel_sparsity(acts).mean().item(), element_sparsity(acts).mean().item(), dead_channels(acts)
            silhouette_score(acts, labels)
            del acts
    else:
        everything = capture_all(model, images, normalise, batch_size=batch)
        largest = max(a.numel() * a.element_size() for a in everything.values())
        for acts in everything.values():
            channel_sparsity(acts).mean().item(), element_sparsity(acts).mean().item(), dead_channels(acts)
            silhouette_score(acts, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"base_kb": base, "peak_kb": peak, "largest_bytes": largest}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="cnn4")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--child", choices=["stream", "naive"])
    args = ap.parse_args()
    if args.child:
        return child(args.arch, args.n, args.child, args.batch)
    print(f"{args.arch}, {args.n} samples, capture batch {args.batch}")
    for path in ("stream", "naive"):
        out = subprocess.run([sys.executable, __file__, "--arch", args.arch, "--n", str(args.n),
                              "--batch", str(args.batch), "--child", path], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        extra = (r["peak_kb"] - r["base_kb"]) * 1024
        print(f"{path:>7}: peak RSS above baseline {extra / 2**20:8.0f} MiB = "
              f"{extra / r['largest_bytes']:.2f}x the largest layer ({r['largest_bytes'] / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
