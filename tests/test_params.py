import pytest

from bnlib.config import ConfigError
from bnlib.params import available_profiles, from_notebook, resolve
from bnlib.paths import FIGURES_DIR


def test_every_profile_validates():
    assert {"smoke", "quick", "mnist", "cifar10", "cifar10-jpeg"} <= set(available_profiles())
    for profile in available_profiles():
        if profile == "custom" and not (FIGURES_DIR.parent.parent / "shared" / "data" / "mnist").is_dir():
            continue  # its example points at ../shared/data/mnist (tests/test_custom_data.py covers the rest)
        params = resolve(profile)
        assert params.profile == profile
        assert len(params.train_configs()) == len(params.norms) * len(params.seeds)


def test_paper_profiles_follow_the_paper():
    mnist, cifar = resolve("mnist"), resolve("cifar10")
    assert (mnist.dataset, mnist.arch, mnist.optimizer, mnist.lr) == \
        ("mnist", "cnn4", "sgd", {"batch": 0.01, "none": 0.01})
    assert (cifar.arch, cifar.optimizer) == ("vgg16", "adam") and cifar.lr["none"] < cifar.lr["batch"]
    for p in (mnist, cifar):
        assert len(p.seeds) == 4 and p.n_represent == 5000 and set(p.norms) == {"batch", "none"}


@pytest.mark.parametrize("override,key", [({"epochs": -1}, "epochs"), ({"epochz": 3}, "epochz"),
                                          ({"seeds": [0, 0]}, "seeds"), ({"umap_layers": ["conv9"]}, "umap_layers"),
                                          ({"silhouette_metric": "l1"}, "silhouette_metric"),
                                          ({"snapshots": [0, 2]}, "snapshots"), ({"snapshots": [-0.5]}, "snapshots"),
                                          ({"snapshots": [0.5, 0.5]}, "snapshots"),
                                          ({"snapshots": [0.01, 0.02]}, "snapshots")])  # one optimizer step
def test_bad_parameter_names_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        resolve("smoke", **override)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ConfigError, match="key 'profile'.*smoke"):
        resolve("nope")


def test_from_notebook_sees_injected_keys_and_ignores_later_cells():
    namespace = {"profile": "smoke", "epochs": 2, "__name__": "__main__", "In": [], "_": None}
    assert from_notebook(namespace).epochs == 2
    namespace["misspelt_key"] = 1  # injected after the first call: ignored on a re-run...
    assert from_notebook(namespace).epochs == 2
    with pytest.raises(ConfigError, match="'misspelt_key': unknown key"):  # ...but not on a fresh kernel
        from_notebook({"profile": "smoke", "misspelt_key": 1})


def test_figures_dir_is_the_profile_unless_a_result_changes(tmp_path):
    assert resolve("quick").figures_dir() == FIGURES_DIR / "quick"
    assert resolve("quick", device="cpu", cache_dir="/x").figures_dir() == FIGURES_DIR / "quick"
    custom = resolve("quick", epochs=3).figures_dir()
    assert custom.parent == FIGURES_DIR and custom.name.startswith("quick-custom-")
    assert resolve("quick", output_dir=str(tmp_path)).figures_dir() == tmp_path
