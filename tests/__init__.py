"""The test suite.

Every test process computes on the CPU with one thread. A run's floats depend on how many
threads split a reduction, so fingerprints recorded on one thread (tests/golden.py) hold on a
machine with any number of cores; workflow jobs run one thread each too; and the parallel test
workers of `make test` (one per core) do not oversubscribe the cores. Set before torch starts,
and inherited by the runs tests start as subprocesses.

The vectorized kernels are pinned to AVX2 (``ATEN_CPU_CAPABILITY``): torch picks AVX-512
where the CPU has it, and its tanh and sigmoid then round differently, so ReBAL's GRU gave
other fingerprints on an AVX-512 host (2026-12-01) than on the AVX2 ones they were recorded
on; every x86-64 machine of the last decade runs AVX2. NumPy's OpenBLAS (least squares of the
linear baselines) picks its kernels by CPU model in the same way, and is pinned to its AVX2
(Haswell) kernels: on a Zen 4 host (2026-12-07) DDPG, GrBAL and rllab TRPO gave other
fingerprints without the pin and the recorded ones with it.
"""

import os
import platform

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import torch  # noqa: E402

torch.set_num_threads(1)
