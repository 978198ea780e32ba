import os
import sys
from pathlib import Path

import torch

# Without a GPU the Triton kernels run under the interpreter; the variable must be set before anything
# imports triton (Lightning and torch may, during collection), so it is set here, first.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# shared helper modules (scan_cases.py) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
# CI machines have 2 cores; pin the thread count so test times do not depend on the host.
torch.set_num_threads(2)
