"""Training throughput: bnlib's tensor-resident trainer vs the textbook DataLoader loop.

    python benchmarks/train_throughput.py                       # CPU: cnn4 on MNIST, 1 epoch each
    python benchmarks/train_throughput.py --device cuda --arch vgg16 --dataset cifar10-jpeg --epochs 2 \
        --train-subset 10000 --batch-size 256 --workers 8 --modes eager compile

Both train the same model with the same optimizer, batch size and epochs, in one
process. The textbook loop is a torchvision dataset behind a DataLoader with
per-sample PIL transforms (ToTensor, Normalize; plus RandomCrop and Flip for
CIFAR). Prints images/s for each, their ratio and final test accuracy; on CUDA
also the achieved TFLOP/s as a fraction of the device's bf16 dense peak. With
two or more epochs, bnlib's rate is the last epoch's (steady state: compile and
cudnn autotuning land in the first), and the first epoch's extra seconds are
printed beside it. `--modes eager compile` times both, with one textbook loop.
Target on CPU: >= 1.5x the textbook loop at the same accuracy.
"""

import argparse
import re
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from bnlib.config import TrainConfig
from bnlib.data import load_dataset, stratified_indices, torchvision_mnist_root
from bnlib.models import build_model
from bnlib.train import evaluate, train

BF16_DENSE_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


class PILDataset(torch.utils.data.Dataset):
    """uint8 tensors served one PIL image at a time, as torchvision's own datasets do."""

    def __init__(self, data, transform):
        self.images, self.labels, self.transform = data.images, data.labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from torchvision.transforms.functional import to_pil_image
        return self.transform(to_pil_image(self.images[i])), int(self.labels[i])


def textbook_loop(config, train_data, test_data, device, workers):
    from torchvision import datasets, transforms as T

    norm = T.Normalize(train_data.mean, train_data.std)
    if config.dataset == "mnist" and len(train_data) == 60000:  # torchvision's own dataset, as in the tutorials
        ds = datasets.MNIST(str(torchvision_mnist_root()), train=True, transform=T.Compose([T.ToTensor(), norm]))
    else:
        aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if config.augment else []
        ds = PILDataset(train_data, T.Compose(aug + [T.ToTensor(), norm]))
    loader = torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    torch.manual_seed(config.seed)
    model = build_model(config.arch, config.norm).to(device)
    opt = (torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum) if config.optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=config.lr))
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    _, acc = evaluate(model, test_data, device)
    return len(ds) * config.epochs / seconds, acc


def train_flops_per_image(config, device):
    from torch.utils.flop_counter import FlopCounterMode
    model = build_model(config.arch, config.norm).to(device)
    x = torch.randn(8, *(1, 28, 28) if config.arch == "cnn4" else (3, 32, 32), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() / 8


def concurrent_rate(args) -> float:
    """The summed steady-state rate of `args.concurrent` eager trainers started together, one process each: what
    a GPU that one small model underfills gives when it trains several (as Ray's fractional GPUs would)."""
    argv = [sys.executable, __file__, "--device", args.device, "--dataset", args.dataset, "--arch", args.arch,
            "--norm", args.norm, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
            "--modes", "eager", "--bnlib-only"]
    argv += ["--train-subset", str(args.train_subset)] if args.train_subset else []
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(args.concurrent)]
    rates = [float(re.search(r"bnlib eager\s*:\s*([\d.]+) images/s", p.communicate()[0]).group(1)) for p in procs]
    print(f"{args.concurrent} at once : {sum(rates):9.0f} images/s together ({', '.join(f'{r:.0f}' for r in rates)})")
    return sum(rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--arch", default="cnn4")
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--train-subset", type=int, default=None)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers for the textbook loop")
    ap.add_argument("--modes", nargs="+", choices=["eager", "compile"], default=["eager"],
                    help="bnlib trainer runs to time: eager and/or torch.compile")
    ap.add_argument("--concurrent", type=int, default=1,
                    help="also train this many eager models at once (one process each) and sum their rates")
    ap.add_argument("--bnlib-only", action="store_true", help="skip the textbook loop (what --concurrent runs)")
    args = ap.parse_args()
    cifar = args.dataset.startswith("cifar")
    configs = {mode: TrainConfig(dataset=args.dataset, arch=args.arch, norm=args.norm, seed=0,
                                 optimizer="adam" if cifar else "sgd", lr=1e-3 if cifar else 0.01,
                                 momentum=0.0 if cifar else 0.9, epochs=args.epochs, batch_size=args.batch_size,
                                 augment=cifar, train_subset=args.train_subset, device=args.device,
                                 bf16=True, channels_last=True, compile=mode == "compile") for mode in args.modes}
    config = configs[args.modes[0]]
    device = torch.device(args.device)
    train_data, test_data = load_dataset(args.dataset, "train"), load_dataset(args.dataset, "test")
    if args.train_subset:
        train_data = train_data.subset(stratified_indices(train_data.labels, args.train_subset, 0))
    print(f"{args.arch}/{args.norm} on {args.dataset}: {len(train_data)} images x {args.epochs} epoch(s), "
          f"batch {args.batch_size}, device {device}, torch threads {torch.get_num_threads()}")

    rates = {}
    for mode, cfg in configs.items():
        t0 = time.perf_counter()
        result = train(cfg, train_data, test_data, progress=False)
        seconds = [h["train_seconds"] for h in result.history]  # the training steps, not the test pass
        rates[mode] = len(train_data) / (seconds[-1] if len(seconds) > 1 else seconds[0])
        first = f", first epoch {seconds[0] - seconds[-1]:+.1f}s over the last" if len(seconds) > 1 else ""
        print(f"bnlib {mode:<8}: {rates[mode]:9.0f} images/s, test acc {result.test_accuracy:.4f}, "
              f"wall {time.perf_counter() - t0:.0f}s{first}")
    ours = max(rates.values())
    if args.concurrent > 1:
        ours = max(ours, concurrent_rate(args))
    if args.bnlib_only:
        return
    theirs, acc = textbook_loop(config, train_data, test_data, device, args.workers)
    print(f"textbook loop : {theirs:9.0f} images/s, test acc {acc:.4f}")
    for mode, rate in rates.items():
        print(f"ratio {mode:<8}: {rate / theirs:.2f}x the textbook loop")
    if device.type == "cuda":
        flops = train_flops_per_image(config, device)
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in BF16_DENSE_PEAK_TFLOPS.items() if k in name), float("nan"))
        achieved = ours * flops / 1e12
        print(f"achieved      : {achieved:.1f} TFLOP/s = {achieved / peak:.1%} of {name}'s {peak:.0f} TFLOP/s "
              f"bf16 peak")


if __name__ == "__main__":
    main()
