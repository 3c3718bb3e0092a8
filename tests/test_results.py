from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bnlib import final_measures, measures, measuring, samples, stats, tables, train
from bnlib.params import resolve

TINY = dict(n_represent=60, umap_samples=40, device="cpu", umap_layers=["conv1"], umap_n_neighbors=5, umap_pca_dims=10)


@pytest.fixture(scope="module")
def tiny_run(smoke_run, tmp_path_factory):
    """The smoke grid (tests/conftest.py), on a copy of its cache: these tests change cache files."""
    import shutil

    cache = tmp_path_factory.mktemp("smoke") / "cache"
    shutil.copytree(smoke_run[2], cache)
    params = resolve("smoke", cache_dir=str(cache))
    models = measuring.train_all(params, log=lambda s: None)
    assert all(m.from_cache for m in models)
    return params, models, final_measures.experiment_results(params, models, log=lambda s: None)


def test_tidy_columns_layers_and_ranges(tiny_run):
    params, models, df = tiny_run
    assert list(df.columns) == list(tables.COLUMNS)
    layers = df[df.layer != "model"]
    assert sorted(layers.layer.unique()) == sorted(params.hidden_layers())
    assert set(layers.metric) == set(measures.names(stage="layer"))
    assert set(df[df.layer == "model"].metric) == set(measures.names(stage="model"))
    assert len(df) == len(models) * (len(params.hidden_layers()) * len(measures.names(stage="layer")) + 3)
    sparsity = layers[layers.metric.str.contains("sparsity|dead")].value
    assert sparsity.between(0, 1).all()
    assert layers[layers.metric.str.startswith("silhouette")].value.between(-1, 1).all()
    assert layers.groupby("layer").layer_index.nunique().eq(1).all()


def test_results_are_cached_next_to_the_model(tiny_run, monkeypatch):
    params, models, df = tiny_run
    assert list((models[0].path / "results").glob("metrics-*.csv"))

    def fail(*a, **k):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(measures.M, "silhouette_and_knn", fail)
    again = final_measures.experiment_results(params, models, log=lambda s: None)
    pd.testing.assert_frame_equal(again, df)
    # a different metric parameter is a different cache entry
    changed = resolve("smoke", cache_dir=params.cache_dir, silhouette_metric="cosine")
    with pytest.raises(AssertionError, match="recomputed"):
        final_measures.measure_model(models[0], samples.representation_set(changed), changed)


def test_umap_embedding_is_cached(tiny_run, monkeypatch):
    params, models, _ = tiny_run
    table = final_measures.umap_table(params, models)
    assert set(table.norm) == {"batch", "none"} and set(table.seed) == {0}
    assert len(table) == 2 * len(params.umap_layers) * params.umap_samples
    assert np.isfinite(table[["umap_x", "umap_y"]]).all().all()
    import umap
    monkeypatch.setattr(umap, "UMAP", None)  # any recomputation would now fail
    pd.testing.assert_frame_equal(final_measures.umap_table(params, models), table)


def test_compare_norms_welch():
    rows = []
    for norm, base in (("batch", 0.5), ("none", 0.3)):
        for seed, jitter in enumerate((-0.01, 0.0, 0.01, 0.02)):
            common = dict(norm=norm, seed=seed, metric="silhouette")
            rows.append(dict(common, layer="conv1", layer_index=1, value=base + jitter))
            rows.append(dict(common, layer="conv2", layer_index=2, value=0.4 + jitter))
    cmp = stats.compare_norms(pd.DataFrame(rows), "silhouette")
    c1, c2 = cmp.iloc[0], cmp.iloc[1]
    assert c1["diff"] == pytest.approx(0.2) and c1.p < 1e-6 and c1.n_seeds == 4
    assert c2["diff"] == pytest.approx(0.0) and c2.p == pytest.approx(1.0)  # same samples: no evidence of a difference
    text = stats.describe_comparison(cmp, "silhouette")
    assert "BN higher in conv1;" in text and "Holm" in text


def test_smoke_profile_with_a_width_multiplier(tmp_path):
    """Trains its own model: a width multiplier is another architecture, which no shared grid holds."""
    params = resolve("smoke", cache_dir=str(tmp_path), seeds=[0], width=0.5, init="vgg", **{
        k: v for k, v in TINY.items() if k != "seeds"})
    models = measuring.train_all(params, log=lambda s: None)
    assert models[0].model.conv1.conv.out_channels == 16 and models[0].model.fc1.linear.out_features == 64
    df = final_measures.experiment_results(params, models, log=lambda s: None)
    assert set(df[df.layer != "model"].layer) == set(params.hidden_layers())
    other = resolve("smoke", cache_dir=str(tmp_path), seeds=[0], **{k: v for k, v in TINY.items() if k != "seeds"})
    first, changed = (train.artifact_dir(p.train_configs()[0], tmp_path) for p in (params, other))
    assert first != changed


def test_a_cached_cka_table_is_verified_and_a_changed_value_recomputed(tiny_run):
    from bnlib.checked import CacheWarning

    params, models, _ = tiny_run
    first = final_measures.cka_table(params, models)
    (path,) = (Path(params.cache_dir) / "cka").glob("cka-*.csv")
    assert path.with_name(f"{path.name}.sha256").is_file()
    pd.testing.assert_frame_equal(final_measures.cka_table(params, models), first)  # read back, verified
    lines = path.read_text().splitlines()
    head, value = lines[1].rsplit(",", 1)
    lines[1] = f"{head},{float(value) / 2}"  # halve one CKA value
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(CacheWarning, match="does not match its recorded sha256"):
        again = final_measures.cka_table(params, models)
    pd.testing.assert_frame_equal(again, first)  # detected and recomputed, not reused
