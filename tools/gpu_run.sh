#!/usr/bin/env bash
# A lent GPU's work on one profile, in stages that resume, sized to a short lease (issue 46). Here, first:
# `make gpu-bundle` (wheels into .whl/, the CIFAR-10 JPEG archive into .devdata/). On the device, from the checkout
# root, with .whl and .devdata carried:
#     bash tools/gpu_run.sh SECONDS [PROFILE]        # PROFILE: cifar10-jpeg unless named
# 1. installs the carried wheels once (.devsite/);
# 2. on the first call only, the training-throughput benchmark (benchmarks/train_throughput.py);
# 3. the runner on the profile's notebooks not yet executed, stopped cleanly SECONDS after the start;
# 4. packs figures/PROFILE/ into $OUT in 15 MiB parts (the device returns files of at most 16 MiB), with the log.
# Models, measures and a copy of figures/PROFILE/ stay under .cache/ (git-ignored, kept on a warm machine), so the
# same command again resumes where the last one stopped. Unpack here: cat figures.tgz.* | tar xzf -
set -u
start=$SECONDS
budget=${1:?usage: tools/gpu_run.sh SECONDS [PROFILE]}
profile=${2:-cifar10-jpeg}
out=${OUT:-.cache/gpu_run}  # the device tool sets OUT; elsewhere, beside the cache
figs=figures/$profile
kept=.cache/figures-$profile
mkdir -p "$out" .cache
exec > >(tee -a "$out/gpu_run.log") 2>&1
say() { echo "[gpu_run +$((SECONDS - start))s] $*"; }

if [ ! -f .devsite/.installed ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .devsite .whl/*.whl \
    || exit 1
  touch .devsite/.installed
fi
export PYTHONPATH=$PWD:$PWD/.devsite BNLIB_DATA_DIR=$PWD/.devdata BNLIB_CACHE_DIR=$PWD/.cache/bnlib \
  NUMBA_CACHE_DIR=$PWD/.cache/numba PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
say "installed"

if [ -d "$kept" ] && [ ! -d "$figs" ]; then cp -r "$kept" "$figs"; fi  # the last call's executed notebooks
if [ ! -f .cache/throughput.done ]; then
  timeout 150 python3 benchmarks/train_throughput.py --device cuda --arch vgg16 --dataset cifar10-jpeg --epochs 2 \
    --train-subset 10000 --batch-size 256 --workers 8 --modes eager compile --concurrent 2
  touch .cache/throughput.done
  say "throughput measured"
fi

todo=$(python3 -c "
from bnlib.params import resolve
import pathlib, sys
params = resolve('$profile')
print(' '.join(f'--notebook {n}' for n in params.notebook_list()
               if not (pathlib.Path('$figs') / f'{n}.ipynb').is_file()))")
left=$((budget - (SECONDS - start) - 40))  # 40 s to stop the kernel and pack
if [ -n "$todo" ] && [ "$left" -gt 30 ]; then
  say "runner on:$todo, stopped after ${left}s"
  timeout --signal=TERM --kill-after=20 "$left" python3 -m bnlib.runner --profile "$profile" $todo
  say "runner exit $?"
fi
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
if [ -d "$figs" ]; then
  rm -rf "$kept" && cp -r "$figs" "$kept"
  tar czf - "$figs" | split -b 15m - "$out/figures.tgz."
  ls -la "$out"
fi
say "done"
