"""The tables of the group's other lenses (notebooks 07-11): trees over binary codes, translation maps, margins and
fragmentation, each model's rows cached next to its weights (bnlib.measuring.per_model_table), and the summaries the
comparisons read (`lens_summary`). The lenses themselves: bnlib.lenses and bnlib.boundaries.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from . import measures
from .boundaries import (
    INPUT,
    count_regions,
    deepfool,
    first_order_margins,
    plane_grid,
    predict_classes,
    principal_basis,
    split_at,
    total_variance,
)
from .dynamics import snapshot_model, snapshot_points
from .images import ImageData
from .lenses import OUTPUT, forward_layers, pooled_codes, shift_grid, translation_maps, tree_curve
from .measuring import artifact_of, numerics, per_model_table
from .params import ExperimentParams
from .samples import margin_set, probe_set, representation_set, shift_set, triplet_images
from .tables import COLUMNS, TABLES
from .train import TrainedModel, resolve_device


def lens_summary(params: ExperimentParams, models: list[TrainedModel], stage: str, table: pd.DataFrame
                 ) -> pd.DataFrame:
    """Every measure of `stage` (a lens table's name: its measures in bnlib.measures) per model and layer of the
    lens `table`, long-form (COLUMNS): what the comparisons read."""
    rows = []
    keys = ["dataset", "arch", "norm", "seed", "layer_index", "layer"]
    for (dataset, arch, norm, seed, index, layer), g in table.groupby(keys, sort=False):
        for metric, value in measures.measure_layer(stage, measures.LensRows(g, params)).items():
            rows.append((dataset, arch, norm, seed, layer, index, metric, value))
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype({"value": float})


def tree_curves(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, layer and depth 1..tree_max_depth: the test fidelity (to the network's prediction) and
    accuracy (to the label) of the depth-d prefix of a decision tree over the layer's binary codes (bnlib.lenses),
    its leaves, and the number of distinct codes among the measured samples."""
    reps, probe = representation_set(params), probe_set(params)
    layers = params.hidden_layers()

    def measure_one(trained: TrainedModel, device):
        cfg, rows = trained.config, []
        codes, predicted = {}, {}
        for part, data in (("train", reps), ("test", probe)):
            codes[part], predicted[part] = forward_layers(
                trained.model, data.images, data.normalise, layers, device=device, batch_size=params.capture_batch,
                transform=lambda t: pooled_codes(t, params.tree_code_pool))
        for index, layer in enumerate(layers, start=1):
            train, test = codes["train"][layer].numpy(), codes["test"][layer].numpy()
            fidelity = tree_curve(train, predicted["train"].numpy(), test, predicted["test"].numpy(),
                                  params.tree_max_depth, seed=params.represent_seed)
            accuracy = tree_curve(train, reps.labels.numpy(), test, probe.labels.numpy(), params.tree_max_depth,
                                  seed=params.represent_seed)
            distinct = len(np.unique(np.packbits(train, axis=1), axis=0))
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, int(d), f, a, int(n), distinct)
                     for d, f, a, n in zip(fidelity["depth"], fidelity["score"], accuracy["score"],
                                           fidelity["leaves"])]
        return rows

    return per_model_table(params, models, "trees", measure_one)




def translation_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, layer and shift (dx, dy) of the grid: the mean cosine similarity between the
    representations of each image and of its shifted copy, full and spatial-mean pooled, and at the output
    (layer "output") the fraction of unchanged predictions (bnlib.lenses)."""
    images, layers = shift_set(params), params.hidden_layers()
    shifts = shift_grid(params.shift_radius(), params.shift_step)
    index_of = {layer: i for i, layer in enumerate(layers + [OUTPUT], start=1)}

    def measure_one(trained: TrainedModel, device):
        cfg = trained.config

        def represent(batch):
            return forward_layers(trained.model, batch, images.normalise, layers, device=device,
                                  batch_size=params.capture_batch)

        maps = translation_maps(represent, images.images, shifts, params.shift_fill, params.capture_batch)
        return [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index_of[layer], dx, dy, metric, float(v))
                for (layer, metric), values in sorted(maps.items(), key=lambda kv: index_of[kv[0][0]])
                for (dx, dy), v in zip(shifts, values)]

    return per_model_table(params, models, "translation", measure_one)




def _quartiles(values: torch.Tensor) -> tuple[int, int, float, float, float, float]:
    """(samples, unflipped, q25, median, q75, mean) of margins; an infinite one (never flipped) is counted apart."""
    v = values.double().numpy()
    finite = v[np.isfinite(v)]
    if not len(finite):
        return len(v), len(v), *([float("nan")] * 4)
    q25, median, q75 = np.quantile(finite, [0.25, 0.5, 0.75])
    return len(v), int((~np.isfinite(v)).sum()), float(q25), float(median), float(q75), float(finite.mean())


def margin_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model: the margin distribution (quartiles and mean over the `margin_samples` draw, each model's
    correctly classified ones) at every hidden layer, raw ("raw") and divided by the root of the layer's total
    variance over the draw ("normalised"), and at the input by DeepFool ("deepfool") and DeepFool in the top
    `margin_pca_dims` principal directions of the measured inputs ("deepfool_pca") (bnlib.boundaries)."""
    sample, reps = margin_set(params), representation_set(params)
    basis = principal_basis(reps.normalise(reps.images), params.margin_pca_dims, seed=params.represent_seed)
    layers, batch = params.hidden_layers(), max(1, params.capture_batch // 5)

    def measure_one(trained: TrainedModel, device):
        cfg, model = trained.config, trained.model.to(device).float().eval()
        x = sample.normalise(sample.images).to(device)
        with torch.no_grad():
            right = torch.cat([model(x[i:i + batch]).argmax(1).cpu() for i in range(0, len(x), batch)]) \
                == sample.labels
        labels, rows = sample.labels[right], []
        key = (cfg.dataset, cfg.arch, cfg.norm, cfg.seed)
        for kind, b in (("deepfool", None), ("deepfool_pca", basis)):
            xr = x[right.to(device)]
            found = torch.cat([deepfool(model, xr[i:i + batch], steps=params.deepfool_steps,
                                        overshoot=params.deepfool_overshoot,
                                        basis=None if b is None else b.to(device)).cpu()
                               for i in range(0, len(xr), batch)])
            rows.append((*key, INPUT, 0, kind, *_quartiles(found)))
        for index, layer in enumerate(layers, start=1):
            stem, head = split_at(model, layer)
            with torch.no_grad():
                h = torch.cat([stem(x[i:i + batch]) for i in range(0, len(x), batch)])
            scale = math.sqrt(total_variance(h.cpu()))
            hr = h[right.to(device)]
            raw = torch.cat([first_order_margins(head, hr[i:i + batch], labels[i:i + batch].to(device)).cpu()
                             for i in range(0, len(hr), batch)])
            rows.append((*key, layer, index, "raw", *_quartiles(raw)))
            rows.append((*key, layer, index, "normalised", *_quartiles(raw / scale)))
        return rows

    return per_model_table(params, models, "margins", measure_one)




def _plane_classes(model, data: ImageData, triplet, layer: str, params: ExperimentParams, device):
    """(classes [R, R], the Plane) of the plane through the triplet's representations at `layer`."""
    stem, head = split_at(model, layer)
    with torch.no_grad():
        a, b, c = stem(data.normalise(data.images[list(triplet)]).to(device)).float().cpu()
    plane = plane_grid(a, b, c, params.fragment_resolution)
    return predict_classes(head, plane, tuple(a.shape), params.capture_batch, device), plane


def _triplet_regions(model, triplets: dict, layer: str, params: ExperimentParams, device):
    """(source, kind, triplet number, class regions) of the plane at `layer` through each triplet of `triplets`
    ({(source, kind): (images, drawn triplets)})."""
    return [(source, kind, t, count_regions(_plane_classes(model, data, triplet, layer, params, device)[0]))
            for (source, kind), (data, drawn) in triplets.items() for t, triplet in enumerate(drawn)]


def fragmentation_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model, space (the input, and each of `fragment_layer_list`) and triplet: the class regions of the
    plane through the triplet (bnlib.boundaries), for `fragment_triplets` triplets of each kind
    (bnlib.samples.TRIPLET_KINDS)."""
    triplets = triplet_images(params)
    hidden = params.hidden_layers()
    spaces = [(INPUT, 0)] + [(layer, hidden.index(layer) + 1) for layer in params.fragment_layer_list()]

    def measure_one(trained: TrainedModel, device):
        cfg, model = trained.config, trained.model.to(device).float().eval()
        return [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, layer, index, *regions)
                for layer, index in spaces for regions in _triplet_regions(model, triplets, layer, params, device)]

    return per_model_table(params, models, "fragmentation", measure_one)




def fragmentation_dynamics_table(params: ExperimentParams, models: list[TrainedModel]) -> pd.DataFrame:
    """Per usable model and snapshot (bnlib.dynamics.snapshot_points): the class regions of the input-space plane
    through each of the first `fragment_snapshot_triplets` triplets of every kind (bnlib.samples.TRIPLET_KINDS), the
    final models' triplets (so the last snapshot repeats their numbers)."""
    n = params.fragment_snapshot_triplets
    triplets = {kind: (data, drawn[:n]) for kind, (data, drawn) in triplet_images(params).items()}

    def measure_one(trained: TrainedModel, device):
        cfg, artifact, rows = trained.config, artifact_of(trained, params), []
        for step, epoch in snapshot_points(trained, params):
            model = snapshot_model(trained, artifact, step, params, device).float()
            rows += [(cfg.dataset, cfg.arch, cfg.norm, cfg.seed, epoch, step, *regions)
                     for regions in _triplet_regions(model, triplets, INPUT, params, device)]
        return rows

    return per_model_table(params, models, "fragmentation_dynamics", measure_one)




def plane_table(params: ExperimentParams, models: list[TrainedModel], a: str = "batch", b: str = "none"
                ) -> pd.DataFrame:
    """The example planes of notebook 10's figure: for the first usable seed of each variant, the predicted class
    ("label") at every grid point ("anchor" 0) and the three images (anchor 1..3, with their true class) of the
    first across-class triplet of test images, in the input and in the middle one of `fragment_layer_list`."""
    data, drawn = triplet_images(params)[("test", "across")]
    triplet = drawn[0]
    fragment = params.fragment_layer_list()
    hidden, device = params.hidden_layers(), resolve_device(params.device)
    layer = fragment[(len(fragment) - 1) // 2]
    rows = []
    for norm in (a, b):
        usable_models = [m for m in models if m.config.norm == norm and not m.excluded]
        if not usable_models:
            continue
        trained = min(usable_models, key=lambda m: m.config.seed)
        cfg, model = trained.config, trained.model.to(device).float().eval()
        for space, index in ((INPUT, 0), (layer, hidden.index(layer) + 1)):
            with numerics(params):
                classes, plane = _plane_classes(model, data, triplet, space, params, device)
            key = (cfg.dataset, cfg.arch, cfg.norm, cfg.seed, space, index)
            rows += [(*key, x, y, int(k), 0) for (x, y), k in zip(plane.coords().tolist(), classes.ravel())]
            rows += [(*key, float(x), float(y), int(data.labels[i]), n)
                     for n, ((x, y), i) in enumerate(zip(plane.anchors, triplet), start=1)]
    return pd.DataFrame(rows, columns=list(TABLES["planes"].columns))
