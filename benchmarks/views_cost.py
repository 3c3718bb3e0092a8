"""What every clustering view costs, per layer, for one model of a profile.

    python benchmarks/views_cost.py [--profile mnist] [--norm batch] [--seed 0]

Loads (or trains) the model, captures each hidden layer for the profile's
`n_represent` training samples and `probe_test_samples` test images, and
times every measure of bnlib.measures once, cold (the silhouette's time includes
kNN accuracy: they share one pass over the distances, so kNN shows about 0 s).
Prints one row per layer and measure and the total. Target (#14): all views, all layers of one `mnist` model
(5,000 samples) in <= 60 s on the 2-core development CPU.
"""

import argparse
import time

import torch

from bnlib import measures, params, samples
from bnlib.hooks import capture_layer
from bnlib.measures import LayerData
from bnlib.train import get_or_train, resolve_device


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="mnist")
    ap.add_argument("--norm", default="batch")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    P = params.resolve(args.profile)
    model = get_or_train(P.train_config(args.norm, args.seed), P.data_dir, P.cache_dir)
    reps, probe = samples.representation_set(P), samples.probe_set(P)
    device = resolve_device(P.device)
    print(f"{args.profile}: {model.name}, {len(reps.labels)} samples, {len(probe.labels)} probe test images, "
          f"{torch.get_num_threads()} torch threads")
    totals: dict[str, float] = {}
    for layer in P.hidden_layers():
        t0 = time.perf_counter()
        acts, test_acts = (capture_layer(model.model, d.images, d.normalise, layer, device=device)
                           for d in (reps, probe))
        capture = time.perf_counter() - t0
        timings = {"capture": capture}
        data = LayerData(acts.float(), reps.labels, P, device, test_acts.float(), probe.labels)
        for name in measures.names(stage="layer") + measures.names(stage="views"):  # every measure, registry order
            t = time.perf_counter()
            measures.MEASURES[name].compute(data)
            timings[name] = time.perf_counter() - t
        for name, seconds in timings.items():
            totals[name] = totals.get(name, 0.0) + seconds
        print(f"{layer:>6} [{acts[0].numel():>6} features]: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    views = sum(v for k, v in totals.items() if k != "capture")
    print("total: " + ", ".join(f"{k} {v:.1f}s" for k, v in totals.items()))
    print(f"all views, all layers: {views:.1f}s (+ {totals['capture']:.1f}s capture); target <= 60 s")


if __name__ == "__main__":
    main()
