from __future__ import annotations

import os

# Tests run on the CPU with a fixed thread count so results are reproducible.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
