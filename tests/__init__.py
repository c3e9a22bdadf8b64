"""The test suite.

Every test process computes on the CPU with one thread. A run's floats depend on how many
threads split a reduction, so fingerprints recorded on one thread (tests/golden.py) hold on a
machine with any number of cores; workflow jobs run one thread each too; and the parallel test
workers of `make test` (one per core) do not oversubscribe the cores. Set before torch starts,
and inherited by the runs tests start as subprocesses.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)
