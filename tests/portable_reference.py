"""The portable smoke grid, and its digests as made on another CPU: what turns "bit-identical on any AVX2 CPU" into
a measurement on whichever machine runs the tests.

    .venv/bin/python tests/portable_reference.py          # print this machine's digests
    .venv/bin/python tests/portable_reference.py --write  # make them the reference (tests/portable_reference.json)

The grid is the smoke design with `cpu_portable: true` (2 seeds x {BN, no BN} of cnn4, 400 measured samples of
conv4 and fc1), trained and measured in a fresh process with two threads: every weight file, the final-model
measures (sparsity, silhouette, kNN) and the clustering views (CKA, probes, DB, CH). tests/test_portable.py
compares a fresh grid with the reference; tests/test_ray.py compares a Ray grid with the same fresh grid.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

REFERENCE_FILE = Path(__file__).with_name("portable_reference.json")
KEYS = {"n_represent": 400, "device": "cpu", "cpu_portable": True, "layers": ["conv4", "fc1"],
        "notebooks": ["00_models", "04_clustering_views"]}
BUILD = f"""
import sys
from bnlib import final_measures, measuring, params
P = params.resolve("smoke", cache_dir=sys.argv[1], **{KEYS!r})
models = measuring.train_all(P, log=lambda s: None)
final_measures.experiment_results(P, models, log=lambda s: None)
final_measures.clustering_views(P, models)
"""


def params(cache, **overrides):
    from bnlib import params as params_mod

    return params_mod.resolve("smoke", cache_dir=str(cache), **KEYS | overrides)


def build(cache: Path) -> None:
    """Train and measure the grid into `cache` in a fresh process: the portable environment is read at start."""
    from bnlib.config import PORTABLE_ENV

    env = os.environ | PORTABLE_ENV | {k: "2" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    subprocess.run([sys.executable, "-c", BUILD, str(cache)], env=env, check=True, timeout=600)


def digests(cache: Path) -> dict[str, str]:
    """sha256 of every weight file and of each measured table as CSV text (floats written round-trip exact)."""
    from bnlib import final_measures, measuring
    from bnlib.cache import Artifact

    P = params(cache)
    models = measuring.train_all(P, log=lambda s: None)
    assert all(m.from_cache for m in models), "the grid should be trained already (build first)"
    out = {f"weights {c.norm} seed {c.seed}": Artifact(c, P.cache_dir).weights_sha256() for c in P.train_configs()}
    tables = {"final-model measures": final_measures.experiment_results(P, models, log=lambda s: None),
              "clustering views": final_measures.clustering_views(P, models)}
    for name, table in tables.items():
        out[name] = hashlib.sha256(table.to_csv(index=False).encode()).hexdigest()
    return out


def this_cpu() -> str:
    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    flags = Path("/proc/cpuinfo").read_text()
    isa = "AMX" if " amx_tile" in flags else "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "?"
    return f"{model} ({isa}; torch {torch.__version__}, {os.cpu_count()} cores)"


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        build(Path(cache))
        made = digests(Path(cache))
    record = {"cpu": this_cpu(), "date": date.today().isoformat(), "digests": made}
    print(json.dumps(record, indent=1))
    if "--write" in sys.argv:
        REFERENCE_FILE.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {REFERENCE_FILE}")


if __name__ == "__main__":
    main()
