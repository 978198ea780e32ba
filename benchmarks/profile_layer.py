"""Where a training step's time and memory go: torch.profiler on one step of a benchmark pair (CPU).

    python benchmarks/profile_layer.py --pair image --side hgrn [--batch 2] [--top 25] [--compile]

Builds the network exactly as benchmarks/model.py does (benchmarks/pairs.py), runs one warm-up step, then
profiles one step (forward, backward, AdamW) and prints the top ops by self CPU time and by memory
allocated, and the profiled step's peak resident memory above the pre-step baseline.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# Pinned malloc thresholds, as in every CPU benchmark here: fresh temporaries otherwise page-fault in some
# processes and not others, which swings timings by several times.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
    os.environ.update(MALLOC_ENV)
    os.execv(sys.executable, [sys.executable, *sys.argv])

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.pairs import PAIRS, SIDES, build, training_step  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pair", choices=list(PAIRS), default="image")
    p.add_argument("--side", choices=SIDES, default="hgrn")
    p.add_argument("--batch", type=int, default=None, help="default: the pair's batch")
    p.add_argument("--length", type=int, default=1024, help="sequence length of the 'small' pair")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--compile", action="store_true", help="torch.compile the network first")
    p.add_argument("--memory", action="store_true", help="also record memory per op (slower)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if os.environ.get("FLUSH_DENORMAL"):
        torch.set_flush_denormal(True)
    torch.manual_seed(0)
    net, loss_fn = build(args.pair, args.side, args.batch, args.length)
    if args.compile:
        net.compile()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    start = time.perf_counter()
    training_step(net, loss_fn, opt)
    print(f"warm-up step: {time.perf_counter() - start:.2f} s")
    with profile(activities=[ProfilerActivity.CPU], profile_memory=args.memory) as prof:
        start = time.perf_counter()
        training_step(net, loss_fn, opt)
        wall = time.perf_counter() - start
    print(f"profiled step: {wall:.2f} s ({args.pair}, {args.side}, batch {args.batch or PAIRS[args.pair].batch})")
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=48))
    if args.memory:
        print(table.table(sort_by="self_cpu_memory_usage", row_limit=args.top, max_name_column_width=48))


if __name__ == "__main__":
    main()
