"""Where a training step's time and memory go on the CPU: torch.profiler on one step, or a layer A/B.

    python benchmarks/profile_layer.py --pair image --side hgrn [--batch 2] [--top 25] [--compile]
    python benchmarks/profile_layer.py --ab deit [--repeats 7] [--variants unfused fused attention]
    python benchmarks/profile_layer.py --ab image --batch 2 --profile fused      # top ops of one variant

Step mode builds the network exactly as benchmarks/model.py does (benchmarks/pairs.py), runs one warm-up
step, then profiles one step (forward, backward, AdamW) and prints the top ops by self CPU time (and by
memory allocated with --memory).

A/B mode (``--ab SHAPE``) times one token-mixer layer, forward + backward, in one process: the fused HGRU
(kernels/hgru_core.py), the fused HGRU keeping h for the backward, the fused HGRU with its gate and scan
input on PyTorch ops instead of the native pass (``fused-torch-gate``), the op-by-op HGRU, and the
Transformer's self-attention at the same width, batch and length. The variants run interleaved (one of each per round,
the order rotating) and the medians over rounds are printed, with each variant's median per-round ratio to
the first variant. On a shared machine only such in-process interleaved medians are meaningful: other jobs
slow every variant of a round alike, while separate runs minutes apart can differ by tens of percent.
"""
from __future__ import annotations

import argparse
import os
import statistics
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
from kernels import hgru_core  # noqa: E402

# A/B layer shapes: (batch, tokens, width, HGRU mode, attention heads, 2D grid) of the benchmark pairs' layers
AB_SHAPES = {
    "deit": (16, 256, 192, "bidirectional", 3, None),  # HGRN-DeiT-Tiny / DeiT-Tiny, batch 16
    "image": (8, 1024, 512, "2d", 8, (32, 32)),  # LRA Image paper config, batch 8
    "small": (1, 4096, 64, "bidirectional", 4, None),  # the small pair at T 4096
    "demo": (32, 100, 64, "bidirectional", 4, None),  # the demo's ListOps mini layer (lengths 20-100)
    "long": (1, 16384, 64, "bidirectional", 4, None),  # the small pair at T 16384 (runs in pieces of time)
}
# fused-torch-gate: the fused layer with the gate and scan input on PyTorch ops instead of the native pass;
# fused-whole: the fused layer on whole tensors where it would run in pieces of time (kernels/hgru_pieces.py)
AB_VARIANTS = ("unfused", "fused", "fused-keep-h", "fused-torch-gate", "fused-whole", "attention")


def _ab_layer(variant: str, D: int, mode: str, heads: int) -> torch.nn.Module:
    from models import HGRU
    from models.transformer import SelfAttention

    if variant == "attention":
        return SelfAttention(D, heads)
    layer = HGRU(D, mode)
    layer.fused = variant != "unfused"
    layer.save_states = True if variant == "fused-keep-h" else None
    return layer


def _saved_mib(fn) -> float:
    """MiB of distinct storages autograd keeps for the backward while ``fn`` runs the forward."""
    seen: dict[int, int] = {}

    def pack(t):
        if t.device.type == "cpu" and t.untyped_storage().nbytes():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values()) / 2**20


def ab(args: argparse.Namespace) -> None:
    B, T, D, mode, heads, grid = AB_SHAPES[args.ab]
    B = args.batch or B
    torch.manual_seed(0)
    x = torch.randn(B, T, D, requires_grad=True)
    bound = (torch.rand(D) * 0.9).requires_grad_()
    weight = torch.randn(B, T, D)
    layers = {v: _ab_layer(v, D, mode, heads) for v in args.variants}
    hgrus = [v for v in args.variants if v != "attention"]
    if len(hgrus) > 1:  # one set of HGRU weights, so every HGRU variant computes the same function
        for v in hgrus[1:]:
            layers[v].load_state_dict(layers[hgrus[0]].state_dict())

    def forward(v: str) -> torch.Tensor:
        if v == "attention":
            return layers[v](x)
        return layers[v](x, bound, grid=grid)

    pieces = os.environ.get("HGRN_TIME_PIECE")

    def step(v: str) -> float:
        hgru_core.USE_NATIVE_GATE = v != "fused-torch-gate"
        if v == "fused-whole":
            os.environ["HGRN_TIME_PIECE"] = "0"
        elif pieces is None:
            os.environ.pop("HGRN_TIME_PIECE", None)
        else:
            os.environ["HGRN_TIME_PIECE"] = pieces
        x.grad = bound.grad = None
        layers[v].zero_grad(set_to_none=True)
        start = time.perf_counter()
        (forward(v) * weight).sum().backward()
        return time.perf_counter() - start

    print(f"A/B {args.ab}: one token-mixer layer, forward + backward, B {B}, T {T}, width {D}, HGRU {mode}, "
          f"attention {heads} heads; {args.threads} threads, {args.repeats} interleaved rounds")
    saved = {v: _saved_mib(lambda v=v: forward(v)) for v in args.variants}
    for v in args.variants:  # warm-up
        step(v)
    if args.profile:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=args.memory) as prof:
            step(args.profile)
        hgru_core.USE_NATIVE_GATE = True
        table = prof.key_averages()
        print(f"top ops of {args.profile} (self CPU time):")
        print(table.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=48))
        return
    times: dict[str, list[float]] = {v: [] for v in args.variants}
    for r in range(args.repeats):
        order = args.variants[r % len(args.variants):] + args.variants[: r % len(args.variants)]
        for v in order:
            times[v].append(step(v))
    base = args.variants[0]
    print(f"{'variant':>14} | {'median s':>8} {'min s':>7} | {'vs ' + base:>14} | {'saved MiB':>9}")
    for v in args.variants:
        ratio = statistics.median(t / b for t, b in zip(times[v], times[base]))
        print(f"{v:>14} | {statistics.median(times[v]):8.3f} {min(times[v]):7.3f} | {ratio:13.2f}x | "
              f"{saved[v]:9.1f}")
    print("ratio: median over rounds of (variant time / first variant's time in the same round); saved MiB: "
          "what autograd keeps for the backward (the layer's input and weights included)")


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
    p.add_argument("--ab", choices=list(AB_SHAPES), help="A/B one token-mixer layer at this pair's shape instead")
    p.add_argument("--variants", nargs="+", choices=AB_VARIANTS, default=list(AB_VARIANTS),
                   help="A/B variants (the first is the ratios' reference)")
    p.add_argument("--repeats", type=int, default=7, help="A/B interleaved rounds")
    p.add_argument("--profile", choices=AB_VARIANTS, help="A/B: profile one step of this variant instead of timing")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.ab:
        ab(args)
        return
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
