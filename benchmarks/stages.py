"""Where one model's share of the main job goes: each stage's seconds, its arithmetic, and its rate against a matmul.

    .venv/bin/python benchmarks/stages.py --profile quick                  # one BN model of quick, every stage
    .venv/bin/python benchmarks/stages.py --profile cifar10-cpu -p epochs=1 -p train_subset=5000 \
        -p "snapshots=[0, 0.5, 1]"                                          # one cifar10-cpu model, one short epoch

One model (`--norm`, `--seed`) of the profile is trained into an empty cache, and every stage a default run does for
it is run once, the way the notebooks run it (the same bnlib builders, each table measured afresh): training,
capture, the final-model measures, the clustering views, its CKA Gram matrices, UMAP, the training dynamics and the
four lenses. For each stage it prints:

- seconds, on this process's threads;
- GFLOP: the arithmetic of its dense products, counted while it runs: every Conv2d and Linear forward (2 x MACs, from
  global module hooks), their backward (2x the forward in training, where weights get gradients too; 1x in the
  lenses' input gradients), and every product bnlib.metrics hands to BLAS (2 m k n, float64 in the silhouette and
  kNN tiles). Pooling, BatchNorm, ReLU, sorting and scikit-learn's fits (the probe, the trees, UMAP's graph) are
  not counted: they are memory- or branch-bound, and a stage made of them shows a large ratio for that reason;
- GFLOP/s achieved, and the ratio of its seconds to the floor: GFLOP / the float32 matmul rate measured at the start
  of the same run on the same threads (a 2048^3 torch matmul, best of five).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import torch
from torch import nn

from bnlib import dynamics, final_measures, lens_tables, measures, metrics, params, samples
from bnlib.hooks import capture_all
from bnlib.kernels import machine_class
from bnlib.measures import LayerData
from bnlib.runner import parse_overrides
from bnlib.train import get_or_train, load_train_test, resolve_device


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """float32 FLOP/s of an n^3 torch matmul on this process's threads, the fastest of `repeats`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


class Flops:
    """Counts the FLOPs of dense products while active (see the module docstring)."""

    def __init__(self):
        self.total, self.training = 0.0, False

    def _forward(self, module, inputs, output):
        if isinstance(module, nn.Conv2d) and isinstance(output, torch.Tensor):
            macs = output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
            macs = output.numel() * module.in_features
        else:
            return
        flops = 2 * macs
        # a forward under autograd is followed by a backward: weights' and inputs' gradients in training, the
        # inputs' only in the lenses (torch.autograd.grad with respect to an input or a hidden representation)
        if torch.is_grad_enabled() and output.requires_grad:
            flops *= 3 if self.training else 2
        self.total += flops

    @contextmanager
    def counting(self, training: bool = False):
        self.total, self.training = 0.0, training
        original = metrics._matmul

        def counted(a, b, backend):
            self.total += 2 * a.shape[0] * a.shape[1] * b.shape[1]
            return original(a, b, backend)

        handle = nn.modules.module.register_module_forward_hook(self._forward)
        metrics._matmul = counted
        try:
            yield self
        finally:
            metrics._matmul = original
            handle.remove()


def run_stages(P, norm: str, seed: int, log=print) -> list[tuple[str, float, float]]:
    """[(stage, seconds, FLOPs)] of one model of `P`, every stage run once from an empty cache."""
    flops, out = Flops(), []
    device = resolve_device(P.device)

    def stage(name, work, training=False, extra=0.0):
        """`extra`: the FLOPs of products torch runs outside bnlib.metrics' BLAS hand-over (the CKA Grams)."""
        with flops.counting(training):
            t0 = time.perf_counter()
            result = work()
            seconds = time.perf_counter() - t0
        out.append((name, seconds, flops.total + extra))
        log(f"  {name}: {seconds:.1f} s")
        return result

    config = P.train_config(norm, seed)
    data = load_train_test(config, P.data_dir)
    trained = stage("training (and its test evaluations)",
                    lambda: get_or_train(config, P.data_dir, P.cache_dir, data=data, progress=False), training=True)
    models = [trained]
    reps, probe = samples.representation_set(P), samples.probe_set(P)
    layers = P.hidden_layers()
    acts = stage("capture: every layer, measured and probe images", lambda: [
        capture_all(trained.model, d.images, d.normalise, layers, device=device, batch_size=P.capture_batch)
        for d in (reps, probe)])

    def family(name):
        return lambda: [measures.measure_layer(name, LayerData(acts[0][layer].float(), reps.labels, P, device,
                                                               acts[1][layer].float(), probe.labels))
                        for layer in layers]

    stage("final measures: sparsity, silhouette (full, pooled), kNN", family("layer"))
    stage("clustering views: probe, DB, CH, W/B, codes", family("views"))
    gram_flops = sum(2 * len(reps.labels) ** 2 * acts[0][layer][0].numel() for layer in layers)
    stage("CKA: this model's centred Gram matrices",
          lambda: [metrics.centered_gram(acts[0][layer], dtype=torch.float32) for layer in layers], extra=gram_flops)
    acts.clear()  # the lenses capture their own
    if seed == P.umap_model_seed:
        stage(f"UMAP: {len(P.umap_layers)} panels", lambda: final_measures.umap_table(P, models))
    stage("06 training dynamics (every snapshot)", lambda: dynamics.dynamics_table(P, models))
    stage("07 decision trees", lambda: lens_tables.tree_curves(P, models))
    stage("08 translation maps", lambda: lens_tables.translation_table(P, models))
    stage("09 margins", lambda: lens_tables.margin_table(P, models))
    stage("10 fragmentation", lambda: lens_tables.fragmentation_table(P, models))
    stage("11 fragmentation along training", lambda: lens_tables.fragmentation_dynamics_table(P, models))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=params.DEFAULT_PROFILE)
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE", help="override a profile key")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bnlib-stages-") as cache:
        P = params.resolve(args.profile, **parse_overrides(args.p), cache_dir=cache, progress=False)
        rate = matmul_rate()
        print(f"{args.profile}, {args.norm} seed {args.seed}, {torch.get_num_threads()} threads, {machine_class()}; "
              f"float32 matmul {rate / 1e9:.0f} GFLOP/s")
        rows = run_stages(P, args.norm, args.seed, log=lambda s: None)
    print("\n| stage | seconds | GFLOP | GFLOP/s | x floor |\n|---|---|---|---|---|")
    for name, seconds, flops in rows:
        achieved = flops / seconds / 1e9 if seconds else 0.0
        ratio = f"{seconds / (flops / rate):.1f}" if flops else "–"
        print(f"| {name} | {seconds:.1f} | {flops / 1e9:.1f} | {achieved:.0f} | {ratio} |")
    total = sum(s for _, s, _ in rows)
    print(f"| all stages of one model | {total:.1f} | {sum(f for *_, f in rows) / 1e9:.1f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
