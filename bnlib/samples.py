"""The fixed sample draws every measure is taken on: the same images for every model, so BN and no BN are compared
on identical inputs. Each is a stratified draw (bnlib.data.stratified_indices) seeded by `represent_seed`."""

from __future__ import annotations

import numpy as np

from .boundaries import draw_triplets
from .data import load_dataset, stratified_indices
from .images import ImageData
from .params import ExperimentParams

# The kinds of fragmentation triplet (notebooks 10 and 11): from training or test images, within one class or across
TRIPLET_KINDS = [(source, kind) for source in ("train", "test") for kind in ("within", "across")]


def _draw(data: ImageData, n: int, seed: int) -> ImageData:
    return data if n >= len(data.labels) else data.subset(stratified_indices(data.labels, n, seed))


def representation_set(params: ExperimentParams) -> ImageData:
    """The training samples whose representations are measured: `n_represent` of the training split."""
    train = load_dataset(params.dataset, "train", params.data_dir)
    return train.subset(stratified_indices(train.labels, params.n_represent, params.represent_seed))


def probe_set(params: ExperimentParams) -> ImageData:
    """Held-out test images (`probe_test_samples`): the linear probe's score, the trees' test codes, the test
    triplets."""
    test = load_dataset(params.dataset, "test", params.data_dir)
    return test.subset(stratified_indices(test.labels, params.probe_test_samples, params.represent_seed))


def snapshot_set(params: ExperimentParams) -> ImageData:
    """The samples measured at each snapshot: `snapshot_represent` of the measured set (null: all of it)."""
    return _draw(representation_set(params), params.snapshot_represent or params.n_represent, params.represent_seed)


def umap_indices(params: ExperimentParams, reps: ImageData):
    """Which of the measured samples a UMAP panel embeds (`umap_samples`, drawn with `umap_seed`)."""
    return stratified_indices(reps.labels, params.umap_samples, params.umap_seed)


def shift_set(params: ExperimentParams) -> ImageData:
    """The test images of the translation maps (`shift_images`)."""
    test = load_dataset(params.dataset, "test", params.data_dir)
    return test.subset(stratified_indices(test.labels, params.shift_images, params.represent_seed))


def margin_set(params: ExperimentParams) -> ImageData:
    """The samples whose margins are taken: `margin_samples` of the measured set (all of it when that is smaller)."""
    return _draw(representation_set(params), params.margin_samples, params.represent_seed)


def triplet_images(params: ExperimentParams) -> dict[tuple[str, str], tuple[ImageData, np.ndarray]]:
    """{(source, kind): (the images, their fixed triplets [fragment_triplets, 3])} for every TRIPLET_KINDS."""
    sets = {"train": representation_set(params), "test": probe_set(params)}
    return {(source, kind): (sets[source], draw_triplets(sets[source].labels.numpy(), params.fragment_triplets, kind,
                                                         seed=params.represent_seed + i))
            for i, (source, kind) in enumerate(TRIPLET_KINDS)}
