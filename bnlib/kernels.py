"""Which CPU fast paths this machine really has: one home for every instruction-set-dependent choice.

Two kernels the project can use are fast only on some CPUs of the same kind:

- torch's int8 GEMM (`torch._int_mm`), used for the Hamming distances of binary
  ReLU codes: 3-6x float32 with AVX-512 VNNI, but about 40x *slower* than
  float32 on a 2-core AVX2-only EPYC (1.5 GOPS, measured there). It changes no
  number: the float32 product of 0/1 codes is exact below 2^24. So it is chosen
  by a micro-benchmark of a few milliseconds, run once per machine and cached.
- bf16 autocast on CPU (`cpu_bf16`): 1.5-2x float32 with native bf16
  (avx512_bf16 or AMX), 10-15x slower than float32 where oneDNN emulates it.
  It changes the numbers, and the choice is part of a model's cache key, so it
  is decided from what the CPU reports, never from a timing that could flip.

`python benchmarks/cpu_kernels.py` times both paths of each under the native
instruction set and under an AVX2 cap and prints what this module picks.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time

import torch

from .files import atomic_write_text
from .paths import user_cache_root

# The instruction-set caps torch and oneDNN document; a capped process is another machine class.
ISA_CAP_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
AVX2_CAP = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
# The int8 micro-benchmark: big enough that a slow kernel shows (about 0.15 s at 1.5 GOPS) and timer noise does
# not, small enough that a fast one costs a few milliseconds. The inner size is a multiple of 8, as `_int_mm` needs.
PROBE_SHAPE = (384, 1536, 384)
PROBE_REPEATS = 3
# int8 is dropped only when it is this much slower than float32: the slow kernel is about 40x slower, while timings
# taken on a busy machine can be off by 2x either way, and a choice is kept per machine.
SLOW_FACTOR = 2.0
CHOICES_FORMAT = 2  # 2: the SLOW_FACTOR rule


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16() -> bool:
    """True when bf16 convolutions run natively: the CPU has avx512_bf16 or AMX *and* oneDNN may use it.

    The second half follows `ONEDNN_MAX_CPU_ISA`: an AVX2 cap makes it False on any CPU.
    """
    hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return bool(hardware and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def machine_class() -> str:
    """One line naming the CPU class results and timings hold for, e.g. 'AMD EPYC, AVX512, native bf16'."""
    caps = [f"{k}={os.environ[k]}" for k in ISA_CAP_ENV if os.environ.get(k)]
    bf16 = "native bf16" if native_bf16() else "no native bf16"
    return f"{cpu_model()}, {torch.backends.cpu.get_cpu_capability()}, {bf16}" + \
        (f" (capped: {' '.join(caps)})" if caps else "")


def _fingerprint() -> dict:
    return {"format": CHOICES_FORMAT, "cpu": cpu_model(), "capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            **{k: os.environ.get(k, "") for k in ISA_CAP_ENV}}


def best_time(fn, repeats: int = PROBE_REPEATS) -> float:
    """Seconds of the fastest of `repeats` calls of `fn`, after one warm-up call."""
    fn()  # warm-up: first-call dispatch and allocation
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_int8_gemm(shape=PROBE_SHAPE) -> dict[str, float]:
    """Seconds for one (m x k) @ (k x n) product of 0/1 codes: torch's int8 GEMM and float32, best of a few."""
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (m, k), dtype=torch.int8, generator=gen)
    b = torch.randint(0, 2, (k, n), dtype=torch.int8, generator=gen)
    af, bf = a.float(), b.float()
    try:
        t_int8 = best_time(lambda: torch._int_mm(a, b))
    except (RuntimeError, AttributeError):  # no integer kernel in this build
        t_int8 = float("inf")
    return {"int8": t_int8, "float32": best_time(lambda: af @ bf)}


def _choices_path():
    return user_cache_root() / "kernels.json"


@functools.lru_cache(maxsize=None)
def int8_gemm_is_fast() -> bool:
    """Whether torch's int8 GEMM is not far slower than float32 for 0/1 codes on this CPU (measured once, cached).

    The answer is kept in ~/.cache/bnlib/kernels.json under a fingerprint of the
    CPU model, instruction-set caps, torch version and thread count; any change
    measures again. Either answer gives the same exact distances.
    """
    fingerprint = _fingerprint()
    key = json.dumps(fingerprint, sort_keys=True)
    path = _choices_path()
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    if key in stored and isinstance(stored[key].get("int8_gemm_is_fast"), bool):
        return stored[key]["int8_gemm_is_fast"]
    times = time_int8_gemm()
    fast = times["int8"] < SLOW_FACTOR * times["float32"]
    stored[key] = {"int8_gemm_is_fast": fast, "seconds": times}
    try:
        atomic_write_text(path, json.dumps(stored, indent=1, sort_keys=True))
    except OSError:  # a read-only home: the choice still holds for this process
        pass
    return fast


def code_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for int8 0/1 codes as an exact int32 matrix, through whichever kernel is fast here."""
    if a.device.type != "cpu" or int8_gemm_is_fast():
        try:
            return torch._int_mm(a.contiguous(), b.contiguous())
        except (RuntimeError, AttributeError):  # shapes or a device the integer kernel does not take
            pass
    return (a.float() @ b.float()).round_().to(torch.int32)
