"""Where the tests' trained-quantity thresholds come from: each quantity, natively and under the AVX2 cap.

`python benchmarks/test_margins.py` trains what the two tests that assert on a trained number train, once on this
CPU as it is and once with `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`, and prints each value beside the
test's threshold. The kernels (and so the last bits, and then the whole training run) differ between the two.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CAPS = {"native": {}, "avx2 cap": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}

# tests/test_train.py::test_mnist5k_model_learns: BN cnn4, 2 epochs on the 4,000 mnist5k training images
MNIST5K = """
import json
from bnlib.config import TrainConfig
from bnlib.train import load_train_test, train
c = TrainConfig.parse(dict(dataset="mnist5k", arch="cnn4", norm="batch", seed=0, optimizer="sgd", lr=0.01,
                           momentum=0.9, epochs=2, batch_size=64, train_subset=None, device="cpu"))
train_data, test = load_train_test(c)
print(json.dumps(train(c, train_data, test).test_accuracy))
"""

# tests/test_custom_data.py::test_own_data_runs_every_notebook: the smoke grid on the toy folder of 4 shapes
TOY = """
import json, sys
sys.path.insert(0, "tests")
from pathlib import Path
from test_custom_data import SMALL, _folder
from bnlib import measuring
from bnlib.params import resolve
root = Path(sys.argv[1])
spec = {"format": "folder", "path": str(_folder(root / "shapes"))}
p = resolve("smoke", dataset=spec, cache_dir=str(root / "cache"), **SMALL)
models = measuring.train_all(p, log=lambda s: None)
print(json.dumps({f"{m.config.norm}/{m.config.seed}": m.test_accuracy for m in models}))
"""

CASES = [("test_mnist5k_model_learns: BN test accuracy", MNIST5K, "> 0.9"),
         ("test_own_data_runs_every_notebook: test accuracy of each toy run", TOY, "> 0.5 (chance 0.25)")]


def main() -> None:
    print(f"{'case':<66} {'cap':<9} value    threshold  seconds")
    for name, code, threshold in CASES:
        for cap, env in CAPS.items():
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                done = subprocess.run([sys.executable, "-c", code, tmp], cwd=REPO, capture_output=True, text=True,
                                      env=os.environ | env | {"BNLIB_CACHE_DIR": tmp}, check=True)
                value = json.loads(done.stdout.strip().splitlines()[-1])
                shown = f"{value:.4f}" if isinstance(value, float) else \
                    f"min {min(value.values()):.4f} ({', '.join(f'{k} {v:.3f}' for k, v in value.items())})"
                print(f"{name:<66} {cap:<9} {shown}  {threshold}  {time.perf_counter() - t0:.0f}", flush=True)


if __name__ == "__main__":
    main()
