"""`cpu_portable`: the same bits whatever the thread count; a clear stop when its environment is missing."""

import os
import subprocess
import sys

import pytest

from bnlib import params
from bnlib.config import PORTABLE_ENV, ConfigError
from bnlib.train import get_or_train, portable_cpu
from conftest import threads_env

pytestmark = pytest.mark.slow

CHILD = r"""
import sys
from bnlib import params
from bnlib.cache import Artifact
from bnlib.train import get_or_train
P = params.resolve("smoke", cache_dir=sys.argv[1], cpu_portable=sys.argv[2] == "1", device="cpu")
config = P.train_config("batch", 0)
get_or_train(config, cache_dir=P.cache_dir)
print(Artifact(config, P.cache_dir).weights_sha256())
"""


def train_sha(tmp_path, portable: bool, threads: int) -> str:
    env = os.environ | threads_env(threads) | (PORTABLE_ENV if portable else {})
    cache = tmp_path / f"cache-{int(portable)}-{threads}"
    out = subprocess.run([sys.executable, "-c", CHILD, str(cache), str(int(portable))], env=env, check=True,
                         capture_output=True, text=True, timeout=600)
    return out.stdout.split()[-1]


def test_the_portable_grid_is_bit_identical_to_the_reference_made_on_another_cpu(portable_grid):
    """The cross-machine check: CI runs on whichever CPU it gets (AMD AVX2, AMD AVX-512, Intel AMX have all been
    seen), and a portable grid made here must equal, byte for byte, tests/portable_reference.json: its weights every
    record's (every vendor's), its measured tables the record of this CPU's vendor (they differ between vendors:
    portable_reference.py says what is known). On a mismatch, benchmarks/cpu_drift.py finds the setting that
    differs: fix PORTABLE_ENV or document the CPU, never loosen this test."""
    import portable_reference

    records = portable_reference.records()
    made, texts = portable_reference.grid(portable_grid)
    for record in records:
        differ = [name for name in made if name.startswith("weights") and made[name] != record["digests"][name]]
        assert not differ, f"{', '.join(differ)} differ on {portable_reference.this_cpu()} from {record['cpu']}"
    mine = [r for r in records if r["vendor"] == portable_reference.vendor()]
    if not mine:
        pytest.skip(f"no reference of {portable_reference.vendor()}'s measured tables: make one with "
                    f"`.venv/bin/python tests/portable_reference.py --write` and commit it")
    reference = mine[0]
    differ = {name: portable_reference.moved(reference["tables"][name], texts[name]) if "tables" in reference
              else "digest" for name in texts if made[name] != reference["digests"][name]}
    assert not differ, (f"on {portable_reference.this_cpu()}, against the reference made on {reference['cpu']} "
                        f"({reference['date']}): {differ}")


def test_portable_numerics_do_not_depend_on_the_thread_count(tmp_path, portable_grid):
    """One thread here against the grid's two (its BN seed 0 is this config: the grid's keys only measure)."""
    import portable_reference
    from bnlib.cache import Artifact

    config = portable_reference.params(portable_grid).train_config("batch", 0)
    assert config == params.resolve("smoke", cpu_portable=True, device="cpu").train_config("batch", 0)
    assert train_sha(tmp_path, True, 1) == Artifact(config, portable_grid).weights_sha256()


def test_default_numerics_do_depend_on_it(tmp_path):
    # Why cpu_portable exists: if this ever passes with equal hashes, the README's drift note is stale.
    assert train_sha(tmp_path, False, 1) != train_sha(tmp_path, False, 2)


def test_portable_without_its_environment_stops_naming_the_key_and_the_fix(monkeypatch):
    monkeypatch.delenv("MKL_CBWR", raising=False)
    setting = r"MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell"
    with pytest.raises(ConfigError, match=rf"cpu_portable.*{setting}.*make lab"):
        with portable_cpu(True):
            pass
    P = params.resolve("smoke", cpu_portable=True, device="cpu")
    with pytest.raises(ConfigError, match="cpu_portable"):
        get_or_train(P.train_config("batch", 0), cache_dir=P.cache_dir)


def test_portable_on_a_cpu_without_avx2_stops_naming_the_key(monkeypatch):
    import torch

    for key, value in PORTABLE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    with pytest.raises(ConfigError, match=r"'cpu_portable'.*'DEFAULT'.*lacks AVX2.*cpu_portable: false"):
        with portable_cpu(True):
            pass


def test_portable_is_part_of_the_cache_key_only_when_on():
    from bnlib.config import PORTABLE_NUMERICS

    off, on = (params.resolve("smoke", cpu_portable=v).train_config("batch", 0) for v in (False, True))
    assert "cpu_portable" not in off.identity() and on.identity()["cpu_portable"] is True
    # the numerics are named in the key: a change of PORTABLE_ENV must not reuse models trained under the old one
    assert "portable_numerics" not in off.identity() and on.identity()["portable_numerics"] == PORTABLE_NUMERICS
    from bnlib.cache import config_key

    assert config_key(off) != config_key(on)
