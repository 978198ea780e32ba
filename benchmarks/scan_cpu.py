"""CPU scan benchmark: the native kernel and the chunked PyTorch scan against the per-step loop and a memory
floor, side by side.

    python benchmarks/scan_cpu.py [--repeats 7] [--threads 2]

Everything runs in one process, candidates interleaved within each repetition, medians reported as ratios
(absolute times on shared machines mean little). The memory floor is ``torch.add(x, log_f, out=h)``: it
reads and writes exactly the bytes a scan must (x and log_f in, a fresh h out, allocated like the scan's).
glibc's dynamic mmap threshold makes fresh temporaries page-fault in some processes and not others (timings
then swing up to 4x between processes), so the script re-executes itself with the malloc thresholds
pinned.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
    os.environ.update(MALLOC_ENV)
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch  # noqa: E402

from kernels import cpu_native  # noqa: E402
from kernels.cpu_scan import hgrn_scan_cpu  # noqa: E402

STRATEGIES = ["native", "chunked", "loop"] if cpu_native.available() else ["chunked", "loop"]
SHAPES = [  # (B, T, D, complex)
    (8, 512, 1024, False),
    (4, 2048, 512, False),
    (1, 16384, 256, False),
    (2, 8192, 1024, False),
    (4, 2048, 256, True),
]


def make_inputs(B: int, T: int, D: int, complex_: bool):
    x = torch.randn(B, T, D, dtype=torch.complex64 if complex_ else torch.float32, requires_grad=True)
    log_f = torch.nn.functional.logsigmoid(torch.randn(B, T, D) + 3).requires_grad_()
    theta = torch.rand(D, requires_grad=True) if complex_ else None
    grad = torch.randn(B, T, D, dtype=x.dtype)
    return x, log_f, theta, grad


def bench_shape(B: int, T: int, D: int, complex_: bool, repeats: int) -> dict[str, float]:
    x, log_f, theta, grad = make_inputs(B, T, D, complex_)
    log_f_floor = log_f.detach().to(x.dtype)

    def floor() -> None:
        torch.add(x.detach(), log_f_floor)

    def forward(strategy: str):
        def run() -> None:
            with torch.no_grad():
                hgrn_scan_cpu(x, log_f, theta, strategy=strategy)
        return run

    def forward_backward(strategy: str):
        def run() -> None:
            h = hgrn_scan_cpu(x, log_f, theta, strategy=strategy)
            torch.autograd.backward(h, grad)
            x.grad = log_f.grad = None
            if theta is not None:
                theta.grad = None
        return run

    cases = {"floor": floor}
    for strategy in STRATEGIES:
        cases[f"{strategy}_fwd"] = forward(strategy)
        cases[f"{strategy}_fwdbwd"] = forward_backward(strategy)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():  # warm-up
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():  # interleaved, so drift hits every candidate alike
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}, times in ms; "
          f"{cpu_native.status()}")
    fast = STRATEGIES[0]
    header = (f"{'B,T,D':>16} {'dtype':>9} | {'floor':>7} " + " ".join(f"{s + ' fwd':>12}" for s in STRATEGIES)
              + f" {'loop/' + fast:>13} {'fwd/floor':>9} | " + " ".join(f"{s + ' f+b':>12}" for s in STRATEGIES)
              + f" {'loop/' + fast:>13}")
    if fast == "native":
        header += f" {'chunked/native':>14}"
    print(header)
    print("-" * len(header))
    for B, T, D, complex_ in SHAPES:
        r = bench_shape(B, T, D, complex_, args.repeats)
        line = (f"{f'{B},{T},{D}':>16} {'complex64' if complex_ else 'float32':>9} | {r['floor']:7.2f} "
                + " ".join(f"{r[s + '_fwd']:12.2f}" for s in STRATEGIES)
                + f" {r['loop_fwd'] / r[fast + '_fwd']:12.1f}x {r[fast + '_fwd'] / r['floor']:8.1f}x | "
                + " ".join(f"{r[s + '_fwdbwd']:12.2f}" for s in STRATEGIES)
                + f" {r['loop_fwdbwd'] / r[fast + '_fwdbwd']:12.1f}x")
        if fast == "native":
            line += f" {r['chunked_fwdbwd'] / r['native_fwdbwd']:13.1f}x"
        print(line, flush=True)

if __name__ == "__main__":
    main()
