import os

import pytest
import torch

# Without a GPU the Triton kernels run under the interpreter. This is the one place that sets it: the variable
# must be set before anything imports the kernels (Lightning and torch may import triton during collection).
if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"

# CI machines have 2 cores; pin the thread count so test times do not depend on the host.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def triton_scan():
    """kernels.triton_scan, ready for CPU tensors without a GPU (interpreted, with the faster scan of
    tests/helpers/triton_interpreter.py); compiled for CUDA tensors on a GPU."""
    import kernels.triton_scan as ts

    if torch.cuda.is_available():
        yield ts
        return
    if not ts._is_interpreted():
        pytest.fail("the Triton kernels were imported before TRITON_INTERPRET=1 was set; tests/conftest.py sets it "
                    "at start-up, so import nothing from kernels/ in a pytest plugin or before conftest runs")
    from helpers.triton_interpreter import fast_scan

    with fast_scan():
        yield ts
