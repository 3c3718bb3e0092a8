"""The portable smoke grid, and its digests as made on other CPUs: what turns "bit-identical on any AVX2 CPU" into
a measurement on whichever machine runs the tests.

    .venv/bin/python tests/portable_reference.py          # print this machine's digests, and any table that differs
    .venv/bin/python tests/portable_reference.py --write  # make them the reference of this CPU's vendor

The grid is the smoke design with `cpu_portable: true` (2 seeds x {BN, no BN} of cnn4, 400 measured samples of
conv4 and fc1), trained and measured in a fresh process with two threads: every weight file, the final-model
measures (sparsity, silhouette, kNN) and the clustering views (CKA, probes, DB, CH). tests/test_portable.py
compares a fresh grid with the reference; tests/test_ray.py compares a Ray grid with the same fresh grid.

The reference holds one record per CPU vendor (tests/portable_reference.json). The weights are the same bits on an
Intel Xeon (AMX) and an AMD EPYC (AVX-512), so every record must agree on them. The two measured tables are not:
on 2026-12-04 the EPYC gave other digests than the Xeon's record, at the Xeon record's own commit too, and none of
numpy's AVX2 dispatch, oneDNN or MKL capped at AVX2 changed the EPYC's (benchmarks/README.md#reproducibility). So
the tables are compared with this vendor's record, which also keeps the tables themselves, so that a mismatch says
which numbers moved and by how much.
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


def grid(cache: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(digests, tables) of the built grid, read from its cache: the sha256 of every weight file and of each measured
    table as CSV text (floats written round-trip exact), and those CSV texts."""
    from bnlib import final_measures, measuring
    from bnlib.cache import Artifact

    P = params(cache)
    models = measuring.train_all(P, log=lambda s: None)
    assert all(m.from_cache for m in models), "the grid should be trained already (build first)"
    made = {"final-model measures": final_measures.experiment_results(P, models, log=lambda s: None),
            "clustering views": final_measures.clustering_views(P, models)}
    texts = {name: table.to_csv(index=False) for name, table in made.items()}
    digests = {f"weights {c.norm} seed {c.seed}": Artifact(c, P.cache_dir).weights_sha256() for c in P.train_configs()}
    return digests | {name: hashlib.sha256(text.encode()).hexdigest() for name, text in texts.items()}, texts


def records() -> list[dict]:
    """The reference's records, one per CPU vendor: cpu, vendor, date, digests and (where kept) the tables' CSV."""
    return json.loads(REFERENCE_FILE.read_text())["records"]


def vendor() -> str:
    """This CPU's vendor as /proc/cpuinfo names it (GenuineIntel, AuthenticAMD)."""
    return next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("vendor_id")), platform.machine())


def moved(reference_csv: str, made_csv: str) -> str:
    """Which rows of a table differ between two CSV texts: each metric and layer with the largest |difference|."""
    import io

    import pandas as pd

    ref, new = (pd.read_csv(io.StringIO(t)) for t in (reference_csv, made_csv))
    keys = [c for c in ref.columns if c != "value"]
    both = ref.merge(new, on=keys, how="outer", suffixes=("_reference", "_here"))
    both["delta"] = (both["value_here"] - both["value_reference"]).abs()
    changed = both[~(both["value_here"] == both["value_reference"])]
    if changed.empty:
        return "no value differs (the CSV text does)"
    worst = changed.sort_values("delta", ascending=False).head(8)
    return "; ".join(f"{r.metric} {r.layer} {r.norm} seed {r.seed}: |Δ| {r.delta:.3g}" for r in worst.itertuples()) \
        + f" ({len(changed)} of {len(both)} rows)"


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
        made, texts = grid(Path(cache))
    record = {"cpu": this_cpu(), "vendor": vendor(), "date": date.today().isoformat(), "digests": made}
    print(json.dumps(record, indent=1))
    for other in records():
        for name, text in other.get("tables", {}).items():
            if text != texts[name]:
                print(f"{name} against {other['cpu']}: {moved(text, texts[name])}")
    if "--write" in sys.argv:
        kept = [r for r in records() if r["vendor"] != record["vendor"]]
        body = {"records": kept + [record | {"tables": texts}]}
        REFERENCE_FILE.write_text(json.dumps(body, indent=1) + "\n")
        print(f"wrote {REFERENCE_FILE} ({record['vendor']}'s record; kept {len(kept)} other)")


if __name__ == "__main__":
    main()
