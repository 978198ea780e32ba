"""One training step (forward + backward + AdamW) of HGRN against the Transformer, side by side.

    python benchmarks/model.py                                  # d 64, 2 layers, batch 1, T 1024/4096/16384
    python benchmarks/model.py --pair image [--batch 8]         # LRA Image paper config, 2D HGRN
    python benchmarks/model.py --pair deit [--batch 16]         # HGRN-DeiT-Tiny vs DeiT-Tiny
    python benchmarks/model.py --pair deit-p16                  # ... with HGRN at patch 16: equal tokens per image
    python benchmarks/model.py --pair image --compile           # both sides under torch.compile
    python benchmarks/model.py --pair image --hgrn-path unfused # HGRN's op-by-op path (no fused layer)
    python benchmarks/model.py --pair deit --rounds 3           # sides alternating, medians (shared machine)
    python benchmarks/model.py --pair deit --interleave 8       # time only: both sides in one process, step by step
    python benchmarks/model.py --pair deit --interleave 8 --each-recompute on g off   # three HGRU settings, one run
    python benchmarks/model.py --pair image --recompute off     # HGRU keeps p, z, g (CPU default: recompute from T 1024)
    python benchmarks/model.py --pair deit --recompute g        # ... recomputes the output gate g only
    python benchmarks/model.py --pair deit --keep-norm-input off # HGRN blocks keep norm(x) as well as x

The pairs are built from the paper configs through the task classes (benchmarks/pairs.py). Each (model, T)
runs in its own child process so that its peak resident memory can be read cleanly (VmHWM reset through
/proc/self/clear_refs, reported above the RSS held before the first step); the two sides of a pair run one
after the other in the same invocation and the ratios are printed (time ratio = HGRN step time over the
Transformer's; tokens/s ratio = its inverse; memory ratio = HGRN peak over the Transformer's). A last,
untimed step runs under the profiler for the peak of live tensor memory ("live"): the resident set also
holds what glibc keeps of freed temporaries, which depends on the order of allocations more than on what
the model needs. With --compile the first (compiling) step's time is reported too.
``--interleave N`` measures time only, on a machine whose speed drifts within minutes (other tenants, CPU
steal): both networks are built in one process and their training steps alternate, N steps each, and the
median of the N per-step ratios is printed with their spread. A Transformer that runs out of memory or time
is reported as such, not hidden.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def live_peak_mib(step) -> float:
    """Peak of live tensor memory during ``step()`` above what was live when it began, from the profiler's
    allocation events: what a caching GPU allocator would need, free of glibc's heap retention."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20


def _recompute_value(choice: str) -> bool | str | None:
    """The HGRU.recompute_projections value of a --recompute choice (default: None, each layer's own)."""
    return {"on": True, "off": False, "default": None}.get(choice, choice)


def _hgrn_options(net, args: argparse.Namespace) -> None:
    """The HGRN side's --hgrn-path, --recompute and --keep-norm-input."""
    from models import HGRU, set_recompute_projections
    from models.residual import PreNormResidual

    for module in net.modules():
        if isinstance(module, HGRU):
            module.fused = args.hgrn_path == "fused"
        if isinstance(module, PreNormResidual) and args.keep_norm_input != "default":
            module.keep_norm_input = args.keep_norm_input == "on"
    if args.recompute != "default":
        set_recompute_projections(net, _recompute_value(args.recompute))


def _baseline_options(net, args: argparse.Namespace) -> None:
    """The Transformer side's --baseline-keep-norm-input."""
    from models.residual import PreNormResidual

    for module in net.modules():
        if isinstance(module, PreNormResidual):
            module.keep_norm_input = args.baseline_keep_norm_input


def child(args: argparse.Namespace) -> None:
    """Build one model, time a few training steps, print a JSON line with the results."""
    sys.path.insert(0, ROOT)
    import torch

    from benchmarks.pairs import build, training_step

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net, loss_fn = build(args.pair, args.model, args.batch, args.length)
    if args.model == "hgrn":
        _hgrn_options(net, args)
    else:
        _baseline_options(net, args)
    if args.compile:
        net.compile()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    if args.warm_start:  # one small step of a copy first: code pages, thread pools, the heap's first growth
        small, small_loss = build(args.pair, args.model, 1, min(args.length, 512))
        (_hgrn_options if args.model == "hgrn" else _baseline_options)(small, args)
        small_loss().backward()
        del small, small_loss
    base = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
            f.write("5")
    except OSError:
        pass
    times = []
    try:
        start = time.perf_counter()
        training_step(net, loss_fn, opt)  # warm-up (also allocates AdamW state; compiles with --compile)
        first = time.perf_counter() - start
        for _ in range(args.steps):
            start = time.perf_counter()
            training_step(net, loss_fn, opt)
            times.append(time.perf_counter() - start)
    except (RuntimeError, MemoryError) as err:
        print(json.dumps({"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:80]}"}))
        return
    peak = _status_kib("VmHWM") - base
    live = live_peak_mib(lambda: training_step(net, loss_fn, opt)) if not args.compile else float("nan")
    params = sum(p.numel() for p in net.parameters())
    print(json.dumps({"status": "ok", "step_s": statistics.median(times), "first_s": first,
                      "peak_mib": peak / 1024, "live_mib": live, "params": params}))


def run_child(model: str, length: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--model", model, "--length", str(length),
           "--pair", args.pair, "--hgrn-path", args.hgrn_path]
    for name in ("batch", "steps", "threads"):
        cmd += [f"--{name}", str(getattr(args, name))]
    if args.compile:
        cmd.append("--compile")
    cmd += ["--recompute", args.recompute, "--keep-norm-input", args.keep_norm_input]
    if args.warm_start:
        cmd.append("--warm-start")
    if args.baseline_keep_norm_input:
        cmd.append("--baseline-keep-norm-input")
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV}
    if args.malloc == "pinned":
        env.update(MALLOC_ENV)
    env["PYTHONPATH"] = ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {args.timeout} s"}
    if done.returncode != 0:
        killed = done.returncode < 0 or done.returncode == 137
        tail = (done.stderr.strip().splitlines() or ["?"])[-1][:100]
        return {"status": "out of memory (killed)" if killed else f"crashed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rounds(T: int, args: argparse.Namespace) -> tuple[dict, dict]:
    """Both sides' results over ``args.rounds`` alternating rounds: medians of step time, first step and peak,
    and (as 'ratio') the median over rounds of the HGRN / Transformer step-time ratio of the same round."""
    runs: dict[str, list[dict]] = {"hgrn": [], "transformer": []}
    for r in range(args.rounds):
        for model in (("hgrn", "transformer") if r % 2 == 0 else ("transformer", "hgrn")):
            runs[model].append(run_child(model, T, args))
    merged = []
    for model in ("hgrn", "transformer"):
        ok = [x for x in runs[model] if x["status"] == "ok"]
        if len(ok) < len(runs[model]):
            merged.append(next(x for x in runs[model] if x["status"] != "ok"))
            continue
        merged.append({"status": "ok", **{k: statistics.median(x[k] for x in ok)
                                          for k in ("step_s", "first_s", "peak_mib", "live_mib", "params")}})
    h, t = merged
    if h["status"] == "ok" and t["status"] == "ok":
        h["ratio"] = statistics.median(a["step_s"] / b["step_s"] for a, b in zip(runs["hgrn"], runs["transformer"]))
    return h, t


def interleaved(args: argparse.Namespace, T: int) -> None:
    """Both sides in this process, one training step each in turn (order rotating every round): the median
    of the per-round HGRN / Transformer step-time ratios, steadier than separate processes minutes apart.
    With ``--each-recompute`` the one HGRN network takes each ``recompute_projections`` value in turn, one
    step per value and round."""
    import torch

    from benchmarks.pairs import build, training_step
    from models import set_recompute_projections

    torch.set_num_threads(args.threads)
    nets = {}
    for side in ("hgrn", "transformer"):
        torch.manual_seed(0)
        net, loss_fn = build(args.pair, side, args.batch, T)
        if side == "hgrn":
            _hgrn_options(net, args)
        else:
            _baseline_options(net, args)
        if args.compile:
            net.compile()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        nets[side] = (net, loss_fn, opt)
    variants = [f"HGRN {v}" for v in args.each_recompute] if args.each_recompute else ["HGRN"]
    values = {f"HGRN {v}": _recompute_value(v) for v in args.each_recompute}

    def step(name: str) -> None:
        if name in values:
            set_recompute_projections(nets["hgrn"][0], values[name])
        training_step(*nets["transformer" if name == "Transformer" else "hgrn"])

    names = [*variants, "Transformer"]
    for name in names:
        step(name)  # warm-up (with --each-recompute, one for every setting)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.interleave):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            step(name)
            times[name].append(time.perf_counter() - start)
    transformer = times["Transformer"]
    for name in variants:
        ratios = sorted(h / t for h, t in zip(times[name], transformer))
        print(f"{T:>6} | {name} {statistics.median(times[name]):.3f} s, Transformer "
              f"{statistics.median(transformer):.3f} s | time ratio {statistics.median(ratios):.2f}x "
              f"(per-round {ratios[0]:.2f}-{ratios[-1]:.2f}x, {len(ratios)} rounds)", flush=True)


def _recompute_choice(value: str) -> str:
    """default, on, off, or projection letters as HGRU.recompute_projections takes them."""
    if value in ("default", "on", "off"):
        return value
    from models.hgru import check_recompute_projections

    try:
        return check_recompute_projections(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected default, on, off or {err}") from None


def main() -> None:
    sys.path.insert(0, ROOT)
    from benchmarks.pairs import PAIRS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=list(PAIRS), default="small")
    parser.add_argument("--batch", type=int, default=None, help="default: the pair's (image 8, deit 16, small 1)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile both networks")
    parser.add_argument("--hgrn-path", choices=["fused", "unfused"], default="fused",
                        help="HGRU recurrence: the fused custom op or the op-by-op reference path")
    parser.add_argument("--recompute", default="default", type=_recompute_choice,
                        help="HGRU.recompute_projections: default (the layer's own: all on CPU from 1024 tokens), on, off, or the "
                             "letters of the projections to project again in the backward, e.g. g or zg")
    parser.add_argument("--keep-norm-input", choices=["default", "on", "off"], default="default",
                        help="HGRN blocks rebuild norm(x) from x in the backward instead of keeping both "
                             "(models/norm_recompute.py; default: on, as HGRN builds them; the Transformer "
                             "side is left as it is)")
    parser.add_argument("--baseline-keep-norm-input", action="store_true",
                        help="the Transformer side rebuilds norm(x) in the backward too, as HGRN's blocks do "
                             "(models/norm_recompute.py); default: the baseline as published, keeping both")
    parser.add_argument("--warm-start", action="store_true",
                        help="memory: before the baseline is read, one forward and backward of a copy of the "
                             "network on a batch of 1 (the small pair: at most 512 tokens), so that what any "
                             "first step costs once (code pages, thread pools, the heap's first growth) is not "
                             "counted as the step's memory")
    parser.add_argument("--timeout", type=int, default=900, help="seconds allowed per (model, T) child")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384],
                        help="sequence lengths of the 'small' pair (the others have fixed lengths)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the two sides alternately this many times (order swapped every round) and "
                             "report medians and the median of the per-round ratios: steadier on a shared machine")
    parser.add_argument("--interleave", type=int, default=0, metavar="N",
                        help="time only: both sides in this process, N alternating steps each; prints the median "
                             "per-round ratio (steadier where the machine's speed drifts)")
    parser.add_argument("--each-recompute", type=_recompute_choice, nargs="+", default=[], metavar="VALUE",
                        help="with --interleave: time the HGRN network with each of these recompute_projections "
                             "values (default, on, off or letters), switched step by step in one process")
    parser.add_argument("--malloc", choices=["pinned", "default"], default="pinned",
                        help="pinned: fixed glibc mmap/trim thresholds in both children (steadier times); "
                             "default: glibc's own dynamic thresholds (peak RSS closer to the live tensors)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=["hgrn", "transformer"], help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=1024, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.each_recompute and not args.interleave:
        parser.error("--each-recompute times variants in one process; it needs --interleave N")
    if args.interleave and args.malloc == "pinned" and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        # glibc reads its thresholds once, at start
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})
    args.batch = args.batch or PAIRS[args.pair].batch
    lengths = args.lengths if args.pair == "small" else [{"image": 1024, "deit": 256, "deit-p16": 196}[args.pair]]
    from kernels import cpu_native

    print(f"{PAIRS[args.pair].description}; training step, batch {args.batch}, {args.threads} threads, "
          f"{f'{args.interleave} interleaved steps each' if args.interleave else f'median of {args.steps} steps'}, "
          f"{'compiled' if args.compile else 'eager'}, HGRU path {args.hgrn_path}, "
          f"{'' if args.interleave else f'{args.rounds} round(s), '}malloc {args.malloc}, "
          f"{'warm start, ' if args.warm_start else ''}"
          f"{'Transformer keep_norm_input on, ' if args.baseline_keep_norm_input else ''}"
          f"HGRU recompute_projections {args.recompute}, "
          f"keep_norm_input {args.keep_norm_input}; "
          f"{cpu_native.status()}")
    if args.interleave:
        for T in lengths:
            interleaved(args, T)
        return
    header = (f"{'T':>6} | {'HGRN s':>8} {'Transf. s':>9} {'time ratio':>10} {'tok/s ratio':>11} | "
              f"{'HGRN MiB':>9} {'Transf. MiB':>11} {'mem ratio':>9} | {'HGRN live':>9} {'Tr. live':>8} "
              f"{'live ratio':>10}")
    if args.compile:
        header += f" | {'HGRN 1st s':>10} {'Transf. 1st s':>13}"
    print(header)
    print("-" * len(header))
    for T in lengths:
        h, t = _rounds(T, args)

        def show(r: dict, key: str, fmt: str) -> str:
            return format(r[key], fmt) if r["status"] == "ok" else "-"

        both = h["status"] == "ok" and t["status"] == "ok"
        ratio = f"{h['ratio']:.2f}x" if both else "-"
        rate = f"{1 / h['ratio']:.2f}x" if both else "-"
        memory = f"{h['peak_mib'] / t['peak_mib']:.2f}x" if both else "-"
        live = f"{h['live_mib'] / t['live_mib']:.2f}x" if both else "-"
        line = (f"{T:>6} | {show(h, 'step_s', '.3f'):>8} {show(t, 'step_s', '.3f'):>9} {ratio:>10} {rate:>11} | "
                f"{show(h, 'peak_mib', ',.0f'):>9} {show(t, 'peak_mib', ',.0f'):>11} {memory:>9} | "
                f"{show(h, 'live_mib', ',.0f'):>9} {show(t, 'live_mib', ',.0f'):>8} {live:>10}")
        if args.compile:
            line += f" | {show(h, 'first_s', '.1f'):>10} {show(t, 'first_s', '.1f'):>13}"
        print(line, flush=True)
        for name, r in (("HGRN", h), ("Transformer", t)):
            if r["status"] != "ok":
                print(f"       {name} at T={T}: {r['status']}")
    print("time ratio = median over rounds of HGRN step time / Transformer's (lower is better); tok/s ratio = "
          "its inverse; "
          "mem ratio = HGRN peak RSS above baseline / Transformer's; live = peak of live tensors in one more step "
          "(profiler allocation events; no allocator retention)")


if __name__ == "__main__":
    main()
