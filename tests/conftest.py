import sys
from pathlib import Path

import torch

# shared helper modules (scan_cases.py) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
# CI machines have 2 cores; pin the thread count so test times do not depend on the host.
torch.set_num_threads(2)
