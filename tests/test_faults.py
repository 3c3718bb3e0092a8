"""Fault probes (issue: no wrong verdict from a broken run, no silent cache damage).

Each test reproduces one fault as a user meets it and checks the fix: the run
is excluded with its reason, damaged cache files are detected and rebuilt,
and bad input stops at once naming the key, the value and the fix.
"""

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from bnlib import params as params_mod
from bnlib import analyses, comparisons, final_measures, measuring, prose, runner, samples, stats
from bnlib.cache import Artifact
from bnlib.checked import CacheWarning
from bnlib.config import ConfigError
from bnlib.models import build_model
from bnlib.params import resolve
from bnlib.paths import REPO_ROOT
from bnlib.train import usability

QUIET = dict(n_represent=120, umap_samples=100, device="cpu")


def smoke(cache, **kw):
    return resolve("smoke", cache_dir=str(cache), **(QUIET | kw))


# ------------------------------------------------------------------ 1. a blown-up run is not a normal run
BLOWN_UP = {"lr": {"batch": 10.0, "none": 10.0}}  # every run of the smoke grid diverges at lr 10


@pytest.fixture(scope="module")
def blown_up(tmp_path_factory):
    """The smoke grid at lr 10, trained once for the session (its cache is shared with the notebooks test)."""
    from conftest import built_once

    cache = built_once(tmp_path_factory, "blown-up-cache",
                       lambda folder: measuring.train_all(resolve("smoke", cache_dir=str(folder), **BLOWN_UP, **QUIET),
                                                        log=lambda s: None))
    p = resolve("smoke", cache_dir=str(cache), **BLOWN_UP, **QUIET)
    models = measuring.train_all(p, log=lambda s: None)
    return p, models, final_measures.experiment_results(p, models, log=lambda s: None)


def test_blown_up_runs_are_excluded_with_a_reason(blown_up):
    p, models, df = blown_up
    assert all(m.status in ("diverged", "failed") and m.reason for m in models)
    assert df[df.layer != "model"].empty  # no metric from an unusable model
    assert set(df[df.metric == "excluded"].value) == {1.0}
    text = prose.describe_exclusions(df)
    assert "4 of 4 runs are EXCLUDED" in text and all(f"{m.config.norm}, seed {m.config.seed}" in text for m in models)
    verdict = stats.describe_comparison(stats.compare_norms(df, "silhouette"), "silhouette")
    assert "No silhouette values" in verdict or "NO VERDICT" in verdict
    assert "higher in" not in verdict and "lower in" not in verdict
    emb = final_measures.umap_table(p, models)
    assert emb.empty and "no usable model" in prose.describe_embedding_silhouettes(analyses.embedding_silhouettes(emb))


def test_every_unusable_kind_is_caught():
    model = build_model("cnn4", "batch")
    labels = torch.arange(1000) % 10
    ok = [{"epoch": 1, "train_loss": 0.5, "test_loss": 0.4, "test_acc": 0.9}]
    assert usability(model, ok, labels) == ("complete", "")
    assert usability(model, [ok[0] | {"test_loss": float("nan")}], labels)[0] == "diverged"  # train loss finite
    assert usability(model, [ok[0] | {"test_acc": 0.105}], labels)[0] == "failed"
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("inf")
    status, reason = usability(model, ok, labels)
    assert status == "diverged" and "non-finite" in reason


def test_non_finite_activations_mark_the_run_diverged(tmp_path):
    p = smoke(tmp_path / "cache", seeds=[0])
    models = measuring.train_all(p, log=lambda s: None)
    bad = models[0]
    with torch.no_grad():  # finite weights whose activations overflow float32
        bad.model.conv1.conv.weight.mul_(1e38)
    rows = final_measures.measure_model(bad, samples.representation_set(p), p)
    assert bad.status == "diverged" and "non-finite activations in conv1" in bad.reason
    assert rows[rows.layer != "model"].empty and rows[rows.metric == "excluded"].value.item() == 1
    assert Artifact(bad.config, p.cache_dir).load().status == "diverged"  # recorded in the store


@pytest.mark.slow
@pytest.mark.parametrize("name", resolve("smoke").notebook_list()[1:])  # after 00_models: every run diverged at lr 10
def test_notebooks_name_the_excluded_runs_and_finish(blown_up, tmp_path, name):
    """One test a notebook, so that pytest-xdist spreads the kernels over both workers."""
    over = BLOWN_UP | {"output_dir": str(tmp_path / "out"), "cache_dir": str(blown_up[0].cache_dir)}
    text = runner.run_notebook(name, "smoke", over, log=lambda s: None).read_text()
    assert "EXCLUDED" in text and "separates the classes more" not in text


def test_power_needs_two_usable_seeds_a_side():
    from bnlib import prose
    assert prose.power(comparisons.comparisons(pd.DataFrame(columns=["norm", "seed", "layer", "layer_index", "metric",
                                                                 "value"]))).startswith("Power: not computed")
    rows = [dict(norm=n, seed=s, layer="conv1", layer_index=1, metric="silhouette", value=v)
            for n, s, v in [("batch", 0, 0.5), ("batch", 1, 0.6), ("none", 0, 0.1), ("none", 1, 0.2)]]
    assert "with 2 vs 2 seeds" in prose.power(comparisons.comparisons(pd.DataFrame(rows)))
    assert "not computed" in prose.power(comparisons.comparisons(pd.DataFrame(rows[:3])))


# ------------------------------------------------------------------ 2. no verdict from a missing variant
def test_fewer_than_two_usable_seeds_gives_no_verdict():
    rows = [dict(norm=n, seed=s, layer="conv1", layer_index=1, metric="silhouette", value=v)
            for n, s, v in [("batch", 0, 0.5), ("batch", 1, 0.6), ("none", 0, 0.1)]]
    rows += [dict(norm="none", seed=1, layer="model", layer_index=0, metric="excluded", value=1.0)]
    cmp = stats.compare_norms(pd.DataFrame(rows), "silhouette")
    assert not cmp.testable.any() and np.isnan(cmp.p).all()
    text = stats.describe_comparison(cmp, "silhouette")
    assert "NO VERDICT" in text and "higher" not in text


def test_usable_drops_every_row_of_an_excluded_model():
    df = pd.DataFrame([dict(norm="none", seed=1, layer=layer, layer_index=i, metric=m, value=v)
                       for layer, i, m, v in [("model", 0, "excluded", 1.0), ("model", 0, "test_accuracy", 0.1),
                                              ("conv1", 1, "silhouette", 0.3)]])
    assert stats.usable(df).empty


@pytest.mark.parametrize("kind", ["point", "bar"])
def test_a_figure_with_one_variant_left_draws_it(kind):
    """Every no-BN run excluded (as a too-short no-BN run on MNIST is): the BN series is drawn alone. Seaborn's
    dodge divided by (variants - 1) and stopped notebook 02 with a ZeroDivisionError."""
    import matplotlib.pyplot as plt

    from bnlib import plots
    rows = [dict(norm="batch", seed=s, layer=layer, layer_index=i, metric="silhouette", value=0.1 * i + 0.01 * s)
            for s in (0, 1) for i, layer in enumerate(["conv1", "fc1"], start=1)]
    ax = plots.layer_metric_plot(pd.DataFrame(rows), "silhouette", kind=kind)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["BN"]
    plt.close("all")


# ------------------------------------------------------------------ 3-4. damaged result files are rebuilt
@pytest.fixture
def measured(smoke_cache):
    """BN seed 0 of the suite's smoke grid, from a copy of its cache (these tests damage the cached files)."""
    p = resolve("smoke", cache_dir=str(smoke_cache), seeds=[0], norms=["batch"])  # the grid's keys, device too
    models = measuring.train_all(p, log=lambda s: None)
    assert all(m.from_cache for m in models)  # the shared grid's model, not a second training
    df = final_measures.experiment_results(p, models, log=lambda s: None)
    csv = next((models[0].path / "results").glob("metrics-*.csv"))
    return p, models, df, csv


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no-digest"])
def test_damaged_results_csv_is_detected_and_rebuilt(measured, damage):
    p, models, df, csv = measured
    if damage == "truncate":  # the header and 5 rows: a valid CSV, silently short before the fix
        csv.write_text("\n".join(csv.read_text().splitlines()[:6]) + "\n")
    elif damage == "garbage":
        csv.write_bytes(os.urandom(300) + b"\xff\xfe")
    else:
        csv.with_name(csv.name + ".sha256").unlink()
    with pytest.warns(CacheWarning, match=str(csv.name)):
        again = final_measures.experiment_results(p, models, log=lambda s: None)
    pd.testing.assert_frame_equal(again, df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next read is clean
        pd.testing.assert_frame_equal(final_measures.experiment_results(p, models, log=lambda s: None), df)


def test_damaged_umap_embedding_is_rebuilt(measured):
    p, models, _, _ = measured
    table = final_measures.umap_table(p, models)
    npy = next((models[0].path / "results").glob("umap-*.npy"))
    npy.write_bytes(npy.read_bytes()[:100])
    with pytest.warns(CacheWarning):
        pd.testing.assert_frame_equal(final_measures.umap_table(p, models), table)


# ------------------------------------------------------------------ 5. a half-extracted MNIST heals
def test_half_extracted_mnist_in_the_cache_is_re_extracted(shared_data, isolated_cache):
    from bnlib.data import load_dataset
    first = load_dataset("mnist", "test", data_dir=shared_data)
    raw = next(isolated_cache.glob("torchvision/*/MNIST/raw"))
    victim = raw / "t10k-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="half-finished extraction"):
        healed = load_dataset("mnist", "test", data_dir=shared_data)
    assert torch.equal(healed.images, first.images)


# ------------------------------------------------------------------ 6. the kernel runs the runner's checkout
def test_kernel_from_another_checkout_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(params_mod.CHECKOUT_ENV, str(tmp_path / "checkout-B"))
    with pytest.raises(ConfigError, match=f"imports bnlib from {REPO_ROOT}.*checkout-B"):
        params_mod.from_notebook({"profile": "smoke"})


def test_runner_pins_the_kernel_environment(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    with runner._pinned_kernel_env():
        assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
        assert os.environ[params_mod.CHECKOUT_ENV] == str(REPO_ROOT)
    assert os.environ["PYTHONPATH"] == "/elsewhere" and params_mod.CHECKOUT_ENV not in os.environ


# ------------------------------------------------------------------ 7-9. one strict validation, first time
@pytest.mark.parametrize("override,key,hint", [
    ({"lr": {"batch": 11.0, "none": 0.01}}, "lr.batch", "less than or equal to 10"),
    ({"lr": {"batch": float("nan"), "none": 0.01}}, "lr.batch", "finite"),
    ({"epochs": True}, "epochs", "valid integer"),
    ({"sparsity_threshold": float("inf")}, "sparsity_threshold", "finite"),
    ({"n_represent": 4001}, "n_represent", "4000 training images of mnist5k"),
    ({"train_subset": 10 ** 6}, "train_subset", "4000 training images"),
    ({"norms": ["batch", "none", "batch"]}, "norms", "twice"),
    ({"width": 0.0}, "width", "greater than 0"),
])
def test_bad_values_are_refused_at_the_first_validation(override, key, hint):
    with pytest.raises(ConfigError, match=key) as info:
        resolve("smoke", **override)
    assert hint in str(info.value)


@pytest.mark.parametrize("text,match", [("epochs: [1\n", r"bad\.yaml, line \d+"),
                                        ("epochs: 1\nseeds: [0]\nepochs: 2\n", r"'epochs' is given twice.*line 1"),
                                        ("  - a\n b: 1\n", r"bad\.yaml, line \d+")])
def test_malformed_profile_names_the_file_and_line(tmp_path, monkeypatch, text, match):
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.setattr(params_mod, "PARAMS_DIR", tmp_path)
    with pytest.raises(ConfigError, match=match):
        params_mod.load_profile("bad")


# ------------------------------------------------------------------ 10. leftovers and hints
def test_training_table_has_no_wall_clock(measured):
    _, models, _, _ = measured
    curves, timings = final_measures.history_table(models), final_measures.history_table(models, timings=True)
    assert not set(final_measures.TIMING_COLUMNS) & set(curves.columns)
    assert set(final_measures.TIMING_COLUMNS) <= set(timings.columns)


def test_dead_kernel_says_that_a_rerun_resumes(monkeypatch, tmp_path):
    import papermill
    from nbclient.exceptions import DeadKernelError

    def die(*a, **k):
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(papermill, "execute_notebook", die)
    with pytest.raises(runner.NotebookFailed, match="resumes where it stopped"):
        runner.run_notebook("00_models", "smoke", {"output_dir": str(tmp_path)}, log=lambda s: None)


@pytest.mark.slow
def test_sigterm_leaves_no_temporary_folder_or_kernel_file(tmp_path):
    tmp, rt = tmp_path / "tmp", tmp_path / "runtime"
    tmp.mkdir()
    rt.mkdir()
    env = os.environ | {"TMPDIR": str(tmp), "JUPYTER_RUNTIME_DIR": str(rt)}
    proc = subprocess.Popen([sys.executable, "-m", "bnlib.runner", "--profile", "smoke", "--notebook", "00_models",
                             "-p", f"output_dir={tmp_path / 'out'}", "-p", f"cache_dir={tmp_path / 'c'}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 180
        kernel_files = lambda: list(tmp.rglob("*.json")) + list(rt.rglob("kernel-*.json"))  # noqa: E731
        while not kernel_files() and time.time() < deadline:
            time.sleep(0.2)
        assert kernel_files(), "no kernel started"
        time.sleep(3)  # the kernel is busy in a cell
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert out.startswith("expected: about") and "training 4 model(s)" in out.splitlines()[0], out  # before any work
    assert "resumes" in out
    assert "Traceback" not in out, out  # no kernel-side zmq traceback a user cannot act on
    assert not list(tmp.iterdir()), list(tmp.iterdir())
    assert not list(rt.glob("kernel-*.json"))


ORPHANED_CELL = """
import asyncio, gc, sys
from nbclient.exceptions import DeadKernelError
from bnlib import runner
if sys.argv[1] == "quiet":
    runner.quiet_logs()

async def cell():
    raise DeadKernelError("Kernel died")

loop = asyncio.new_event_loop()
task = loop.create_task(cell())
loop.run_until_complete(asyncio.sleep(0.01))  # the cell's task fails; nobody awaits it (the run was interrupted)
del task
gc.collect()
loop.run_until_complete(asyncio.sleep(0))
print("end")
"""


@pytest.mark.parametrize("mode", ["quiet", "plain"])
def test_an_interrupted_cell_leaves_no_asyncio_traceback(mode):
    """The CI race behind test_sigterm_...: a cell's task dies after the interrupt; asyncio must not print it."""
    done = subprocess.run([sys.executable, "-c", ORPHANED_CELL, mode], capture_output=True, text=True, timeout=60,
                          cwd=runner.REPO_ROOT)
    assert done.returncode == 0 and "end" in done.stdout, done.stderr
    if mode == "quiet":
        assert "Traceback" not in done.stderr, done.stderr
    else:  # the mechanism is real: without the filter asyncio prints it
        assert "Task exception was never retrieved" in done.stderr and "DeadKernelError" in done.stderr
