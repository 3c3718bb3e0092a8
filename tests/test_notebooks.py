"""Every notebook, end to end through papermill, on the smoke profile."""

import pandas as pd
import pytest

from bnlib import runner
from bnlib.paths import FIGURES_DIR

pytestmark = pytest.mark.slow

EXPECTED = {"training": ["dataset", "arch", "norm", "seed", "status", "epoch", "train_loss", "train_acc_running",
                         "test_loss", "test_acc"],
            "training_time": ["dataset", "arch", "norm", "seed", "status", "epoch", "train_seconds", "seconds",
                              "machine"],
            "accuracy": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "sparsity": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "silhouette": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "umap": ["dataset", "arch", "norm", "seed", "layer", "sample", "label", "class", "umap_x", "umap_y"],
            "views": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "cka": ["layer_index", "layer", "pair", "seed_1", "seed_2", "cka"],
            "dynamics": ["dataset", "arch", "norm", "seed", "epoch", "step", "layer", "layer_index", "metric", "value"],
            "tree_summary": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "trees": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "depth", "fidelity",
                            "accuracy", "leaves", "codes"],
            "translation": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "dx", "dy", "metric", "value"],
            "invariance": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "margins": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "kind", "samples", "unflipped",
                        "q25", "median", "q75", "mean"],
            "margin_summary": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "fragmentation": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "source", "kind", "triplet",
                              "regions"],
            "fragmentation_summary": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "metric", "value"],
            "planes": ["dataset", "arch", "norm", "seed", "layer", "layer_index", "x", "y", "label", "anchor"],
            "fragmentation_dynamics": ["dataset", "arch", "norm", "seed", "epoch", "step", "source", "kind",
                                       "triplet", "regions"]}


def test_paired_notebooks_hold_exactly_their_source_cells(smoke_run):
    import jupytext
    import nbformat
    nbdir = smoke_run[1]
    for name in runner.NOTEBOOKS:
        source, executed = nbdir / f"{name}.py", nbdir / f"{name}.ipynb"
        text = jupytext.read(source)
        nb = nbformat.read(executed, as_version=4)
        assert [(c.cell_type, c.source, c.metadata) for c in nb.cells] == \
            [(c.cell_type, c.source, c.metadata) for c in text.cells], name
        assert not any("injected-parameters" in str(c.metadata) for c in nb.cells)
        assert set(nb.metadata) <= {"kernelspec", "language_info"}  # no papermill paths or timings
        assert executed.stat().st_mtime <= source.stat().st_mtime  # not newer than its source: jupytext opens the pair
        # what jupytext writes back from the executed notebook is the source, byte for byte
        assert jupytext.writes(jupytext.read(executed), fmt="py:percent",
                               config=jupytext.config.load_jupytext_configuration_file(str(nbdir / "jupytext.toml"))) \
            == source.read_text(), name
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert str(runner.REPO_ROOT) not in executed.read_text() and "PosixPath" not in executed.read_text()


def test_every_notebook_writes_its_figures_and_csvs(smoke_run):
    smoke_run = smoke_run[0]
    for name in runner.NOTEBOOKS:
        assert (smoke_run / f"{name}.ipynb").is_file()
    for fig in ("training", "sparsity", "silhouette", "umap", "views", "ablation", "dynamics", "trees", "translation",
                "margins", "fragmentation"):
        for ext in ("png", "svg", "csv"):
            assert (smoke_run / f"{fig}.{ext}").stat().st_size > 0, f"{fig}.{ext}"
    for name, columns in EXPECTED.items():
        assert list(pd.read_csv(smoke_run / f"{name}.csv").columns) == columns, name


def test_csv_layers_seeds_and_ranges(smoke_run):
    smoke_run = smoke_run[0]
    sparsity = pd.read_csv(smoke_run / "sparsity.csv")
    assert set(sparsity.layer) == {"conv1", "conv2", "conv3", "conv4", "fc1"}
    assert set(sparsity.seed) == {0, 1} and set(sparsity.norm) == {"batch", "none"}
    assert set(sparsity.metric) == {"channel_sparsity", "element_sparsity", "dead_channels"}
    assert sparsity.value.between(0, 1).all()
    assert len(sparsity) == 5 * 3 * 2 * 2
    sil = pd.read_csv(smoke_run / "silhouette.csv")
    assert set(sil.metric) == {"silhouette", "silhouette_pooled"} and sil.value.between(-1, 1).all()
    acc = pd.read_csv(smoke_run / "accuracy.csv")
    assert acc[acc.metric == "test_accuracy"].value.between(0.1, 1).all()
    umap = pd.read_csv(smoke_run / "umap.csv")
    assert set(umap.layer) == {"conv1", "fc1"} and len(umap) == 2 * 2 * 100
    views = pd.read_csv(smoke_run / "views.csv")
    layer_views = views[views.layer != "model"]
    assert set(layer_views.metric) >= {"silhouette", "knn_accuracy", "linear_probe", "davies_bouldin",
                                       "calinski_harabasz", "within_between_ratio", "code_neighbour_agreement"}
    for metric in ("knn_accuracy", "linear_probe", "code_neighbour_agreement", "code_purity"):
        assert layer_views[layer_views.metric == metric].value.between(0, 1).all(), metric
    # the views notebook's silhouette is the silhouette notebook's number, from one shared distance pass
    key = ["norm", "seed", "layer"]
    both = sil[sil.metric == "silhouette"].merge(layer_views[layer_views.metric == "silhouette"], on=key)
    assert len(both) == 5 * 2 * 2 and (both.value_x - both.value_y).abs().max() < 1e-9
    cka = pd.read_csv(smoke_run / "cka.csv")
    assert set(cka.pair) == {"batch vs none", "batch vs batch", "none vs none"} and cka.cka.between(0, 1 + 1e-9).all()
    curves = pd.read_csv(smoke_run / "trees.csv")
    assert set(curves.layer) == set(sparsity.layer) and curves.depth.max() == 20
    assert curves[["fidelity", "accuracy"]].stack().between(0, 1).all()
    assert (curves.groupby(["norm", "seed", "layer"]).leaves.diff().dropna() >= 0).all()  # deeper: never fewer leaves
    maps = pd.read_csv(smoke_run / "translation.csv")
    assert set(maps.layer) == set(sparsity.layer) | {"output"} and set(maps.dx) == set(range(-3, 4))  # shift_max 3
    assert maps.value.between(-1e-9, 1 + 1e-9).all()
    unshifted = maps[(maps.dx == 0) & (maps.dy == 0)]
    assert (unshifted.value - 1).abs().max() < 1e-5  # the same image: similarity 1, every prediction kept
    margins = pd.read_csv(smoke_run / "margins.csv")
    assert set(margins.layer) == set(sparsity.layer) | {"input"}
    assert set(margins[margins.layer == "input"].kind) == {"deepfool", "deepfool_pca"}
    ordered = margins.dropna(subset=["median"])
    assert ((ordered.q25 <= ordered["median"]) & (ordered["median"] <= ordered.q75)).all() and (ordered.q25 > 0).all()
    inputs = margins[margins.layer == "input"].pivot_table(index=["norm", "seed"], columns="kind", values="median")
    assert (inputs.deepfool <= inputs.deepfool_pca * (1 + 1e-6)).all()  # a subspace never gets closer to the boundary
    regions = pd.read_csv(smoke_run / "fragmentation.csv")
    assert set(regions.layer) == {"input", "conv3", "fc1"} and (regions.regions >= 1).all()
    assert len(regions) == 4 * 3 * 4 * 2  # models x spaces x triplet kinds x fragment_triplets
    along = pd.read_csv(smoke_run / "fragmentation_dynamics.csv")
    dynamics = pd.read_csv(smoke_run / "dynamics.csv")
    assert set(zip(along.norm, along.seed, along.step)) == set(zip(dynamics.norm, dynamics.seed, dynamics.step))
    assert len(along) == len(set(zip(along.norm, along.seed, along.step))) * 4 * 2  # x kinds x snapshot triplets
    # the last snapshot is the final model and its triplets are the final planes' first: the same regions
    last = along[along.step == along.step.max()].merge(regions[regions.layer == "input"],
                                                       on=["norm", "seed", "source", "kind", "triplet"])
    assert len(last) == 4 * 4 * 2 and (last.regions_x == last.regions_y).all()
    planes = pd.read_csv(smoke_run / "planes.csv")
    assert (planes.anchor == 0).sum() == 2 * 2 * 12 * 12 and (planes.anchor > 0).sum() == 2 * 2 * 3


@pytest.mark.parametrize("override,key", [({"epochs": -1}, "epochs"), ({"epochz": 2}, "epochz")])
def test_bad_parameter_fails_fast_and_writes_nothing(tmp_path, override, key):
    import papermill
    out = tmp_path / "figures"
    before = sorted(FIGURES_DIR.rglob("*"))
    # through the runner: refused before a kernel starts
    with pytest.raises(Exception, match=key):
        runner.run_notebook("01_sparsity", "smoke", override | {"output_dir": str(out)})
    # through papermill itself (which only warns on unknown keys): stopped in the notebook's first cells
    nb = tmp_path / "01.ipynb"
    import jupytext
    notebook = jupytext.read(runner.NOTEBOOK_DIR / "01_sparsity.py")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, nb)
    with pytest.raises(papermill.PapermillExecutionError) as info:
        papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3",
                                   parameters={"profile": "smoke", "output_dir": str(out), **override},
                                   progress_bar=False)
    assert key in str(info.value) and "ConfigError" in str(info.value)
    assert info.value.exec_count <= 3  # the validation cell, right after the parameters
    assert not out.exists()
    assert sorted(FIGURES_DIR.rglob("*")) == before


def test_a_runner_call_over_existing_csvs_ends_with_how_it_compares(smoke_run, smoke_cache, tmp_path, capsys):
    """Issue 42: a rerun into a folder that holds CSVs (the committed ones, after `make figures`) says how many numbers
    moved and whether a claim word changed. Here the smoke grid's own folder and cache: nothing moves."""
    import shutil

    out = tmp_path / "smoke"
    shutil.copytree(smoke_run[0], out)
    assert runner.main(["--profile", "smoke", "--notebook", "01_sparsity", "-p", f"output_dir={out}",
                        "-p", f"cache_dir={smoke_cache}"]) == 0
    printed = capsys.readouterr().out
    assert f"compared with the CSVs that were in {out}/ before this run:" in printed
    assert "identical" in printed and "claim words: none of 9 changed" in printed, printed[-1500:]
