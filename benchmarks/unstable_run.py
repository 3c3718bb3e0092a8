"""Why one no-BN run of the `custom` template trains badly (issue 40): its curve, natively and under the AVX2 cap.

`python benchmarks/unstable_run.py [SEED ...]` trains the no-BN cnn4 of `params/custom.yaml` (MNIST's IDX files, a
stratified 4,000-image subset, SGD lr 0.01 with momentum 0.9, 6 epochs, batch 128) for each seed in an empty cache,
once on this CPU as it is and once with `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`, and prints each epoch's
mean training loss and test accuracy, and what the proposed rule (README, Assumptions) says.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPS = {"native": {}, "avx2 cap": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
CHILD = """
import json, sys
from bnlib import final_measures, measuring
from bnlib.params import resolve
seed = int(sys.argv[2])
p = resolve("custom", seeds=[seed], norms=["none"], umap_model_seed=seed, cache_dir=sys.argv[1], device="cpu")
(m,) = measuring.train_all(p, log=lambda s: None)
h = final_measures.history_table([m])
print(json.dumps({"status": m.status, "test_acc": m.test_accuracy, "loss": h.train_loss.round(3).tolist(),
                  "acc": h.test_acc.round(3).tolist()}))
"""


def main(seeds) -> None:
    for seed in seeds:
        for cap, env in CAPS.items():
            with tempfile.TemporaryDirectory() as tmp:
                done = subprocess.run([sys.executable, "-c", CHILD, tmp, str(seed)], cwd=REPO, check=True,
                                      capture_output=True, text=True, env=os.environ | env)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            chance = 0.8 * math.log(10)  # the proposed rule: a last-epoch loss above 0.8 x the chance cross-entropy
            word = "unusable" if r["loss"][-1] > chance else "usable"
            print(f"no BN seed {seed}, {cap:<8}: status {r['status']}, test acc {r['test_acc']:.4f}; "
                  f"train loss by epoch {r['loss']}; test acc by epoch {r['acc']}; "
                  f"proposed rule (last train loss > {chance:.2f}): {word}", flush=True)


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [2])
