"""One home per concept: measures, training keys, notebooks, profiles and cache keys are each defined once."""

import re
import subprocess

import pandas as pd
import pytest
import yaml

from bnlib import measures, measuring, pages, params, tables
from bnlib.config import ConfigError, TrainConfig, TrainingKeys
from bnlib.paths import FIGURES_DIR, PARAMS_DIR, REPO_ROOT
from bnlib.tables import TABLES

BNLIB = REPO_ROOT / "bnlib"


def _sources(*skip: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(BNLIB.glob("*.py")) if p.name not in skip}


def test_every_measured_metric_is_registered_and_only_the_registry_lists_them():
    for table in ("accuracy", "sparsity", "silhouette", "views"):
        metrics = set(pd.read_csv(FIGURES_DIR / "quick" / f"{table}.csv").metric)
        assert metrics == set(measures.names(table=table)), table
    assert len(measures.names(votes=True)) == 7  # the seven independent views of claim 3 (README, notebook 04)
    for name, text in _sources("measures.py").items():
        for metric in ("davies_bouldin", "within_between_ratio", "code_purity", "knn_accuracy"):
            assert f'"{metric}"' not in text, f"{name} names {metric}: read it from bnlib.measures"


def test_every_measure_reads_and_has_a_direction():
    for m in measures.MEASURES.values():
        assert m.label and m.axis and m.better in ("higher", "lower", "")
        assert (m.compute is None) == (m.stage == "model"), m.name
        assert set(m.tables) <= set(TABLES), m.name
        assert not m.votes or m.better, f"{m.name} votes on claim 3, so it needs a direction"


def test_every_table_entry_builds_and_is_shown_by_a_notebook():
    for name, table in TABLES.items():
        assert callable(measuring.builder(name)), name
        assert table.notebook in params.NOTEBOOKS, name
        assert table.source is None or name in tables.written_with(table.source), name
        assert table.summary is None or TABLES[table.summary].source == name, name
        assert table.columns is None or len(set(table.columns)) == len(table.columns), name
    for notebook in params.NOTEBOOKS:  # each figure is named after the table it is drawn from
        assert params.NOTEBOOKS[notebook][0] == tables.figure_of(notebook)
    assert tables.written_with("tree_summary") == tables.written_with("trees") == ["trees", "tree_summary"]
    with pytest.raises(KeyError, match="no measured table 'sparsity_tabel'"):
        tables.check_names(["sparsity", "sparsity_tabel"])


def test_the_tables_the_claims_and_the_estimate_name_are_registered():
    from bnlib import claims, estimate

    assert {table for _, table, _ in claims.LENSES.values()} <= set(TABLES)
    assert set(tables.HEADLINE) == {"accuracy", "sparsity", "silhouette", "views"}
    assert set(estimate.LENS_TABLES) <= set(tables.CACHES)


def test_training_keys_are_declared_once():
    assert issubclass(params.ExperimentParams, TrainingKeys) and issubclass(TrainConfig, TrainingKeys)
    assert set(TrainConfig.model_fields) - set(TrainingKeys.model_fields) == {"norm", "seed", "lr", "cpu_bf16"}
    for name, text in _sources("config.py").items():
        assert not re.search(r"^\s+(epochs|batch_size|momentum|weight_decay|lr_schedule): ", text, re.M), name


def test_one_cache_key_recipe():
    for name, text in _sources("files.py").items():
        assert "json.dumps(spec" not in text and "hexdigest()[:" not in text, f"{name}: use files.spec_key"


def test_the_notebook_list_is_the_notebooks_folder_and_the_makefile_follows_it():
    sources = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert list(params.NOTEBOOKS) == sources
    for name, (figure, _) in params.NOTEBOOKS.items():
        assert f'"{figure}")' in (REPO_ROOT / "notebooks" / f"{name}.py").read_text(), f"{name} saves {figure}"
        target = name.split("_", 1)[1]
        dry = subprocess.run(["make", "-n", "-o", "env", target], cwd=REPO_ROOT, capture_output=True, text=True)
        assert dry.returncode == 0 and f"--notebook {name}" in dry.stdout, dry.stderr


def test_profiles_extend_the_base_which_documents_every_key():
    base = (PARAMS_DIR / f"{params.BASE_PROFILE}.yaml").read_text()
    documented = {m.group(1) for m in re.finditer(r"^([A-Za-z_0-9]+): .*#", base, re.M)}
    assert set(params.ExperimentParams.model_fields) - {"profile"} <= documented
    for path in PARAMS_DIR.glob("*.yaml"):
        if path.stem != params.BASE_PROFILE:
            assert "extends" in yaml.safe_load(path.read_text()), path.name


def test_extends_layers_keys_and_refuses_a_cycle_or_a_missing_parent(tmp_path, monkeypatch):
    monkeypatch.setattr(params, "PARAMS_DIR", tmp_path)
    (tmp_path / "quick.yaml").write_text((PARAMS_DIR / "quick.yaml").read_text())
    (tmp_path / "a.yaml").write_text("extends: quick\nepochs: 2\n")
    (tmp_path / "b.yaml").write_text("extends: a\nseeds: [5]\numap_model_seed: 5\n")
    b = params.resolve("b", n_represent=100, umap_samples=100)
    assert (b.epochs, b.seeds, b.n_represent, b.arch, b.profile) == (2, [5], 100, "cnn4", "b")
    (tmp_path / "c.yaml").write_text("extends: d\n")
    (tmp_path / "d.yaml").write_text("extends: c\n")
    with pytest.raises(ConfigError, match="'extends' = 'c'.*cycle"):
        params.resolve("c")
    (tmp_path / "e.yaml").write_text("extends: nowhere\n")
    with pytest.raises(ConfigError, match="key 'extends' = 'nowhere': no file"):
        params.resolve("e")


def test_a_papermill_file_with_extends_builds_on_the_profile_it_names():
    from_file = params.from_notebook({"profile": "smoke", "extends": "quick"})  # -f params/smoke.yaml, as written
    assert from_file.model_dump() == params.resolve("smoke").model_dump()
    overrides = params.from_notebook({"profile": "quick", "extends": "smoke", "epochs": 2})  # -f a file of overrides
    assert (overrides.profile, overrides.epochs, overrides.seeds) == ("smoke", 2, [0, 1])


def test_a_profiles_run_status_is_read_from_its_folder(tmp_path):
    """The README's profile table says what is committed, from the files: nothing, every notebook, or which."""
    folder = tmp_path / "cifar10-jpeg"
    assert pages.run_status("cifar10-jpeg", tmp_path) == "none committed"
    folder.mkdir()
    for name in ("00_models", "01_sparsity", "02_silhouette.failed"):
        (folder / f"{name}.ipynb").write_text("{}")
    pd.DataFrame({"epoch": [1, 1], "machine": ["NVIDIA H200", "NVIDIA H200"]}).to_csv(folder / "training_time.csv")
    total = len(params.resolve("cifar10-jpeg").notebook_list())
    assert pages.run_status("cifar10-jpeg", tmp_path) == f"notebooks 00, 01 of its {total}, trained on NVIDIA H200"
    for name in params.resolve("cifar10-jpeg").notebook_list():
        (folder / f"{name}.ipynb").write_text("{}")
    assert pages.run_status("cifar10-jpeg", tmp_path) == "every notebook, trained on NVIDIA H200"
