"""GPU benchmark of the Triton HGRN scan: correctness first, then timings side by side, then the targets.

    python benchmarks/scan_gpu.py --out results/scan_gpu.json

One process, one GPU, about 3-5 minutes on an H200 (a deadline, --budget-s, skips what is left).
1. Correctness: the Triton path against the float64 reference loop on small shapes (outputs and every
   gradient; real, complex, reverse, bidirectional, T-split, bf16 against the same rounded inputs), and
   against fla's kernels on a large shape when `fla` imports.
2. Ceiling: a device-to-device copy of 2 GiB (bytes read + written).
3. Timings with `triton.testing.do_bench` (median, 20%/80% quantiles, L2 flushed between repetitions;
   `do_bench_cudagraph` for the forward of shapes under ~50 us, where launch overhead would dominate),
   on fla's benchmark shapes in (B, T, D) form plus a long-T one for the T-split (SHAPES): our forward and
   forward+backward for real bf16, real fp32, complex HGRN form (complex64 x, bf16 log gate, fp32 theta) and
   bidirectional;
   fla `chunk_hgrn` / `fused_recurrent_hgrn` (real bf16, with h0 and the final state) when importable;
   a plain PyTorch loop on the small shapes. Every warm-up (compilation, autotuning) happens before a
   kernel is timed. The sweep is run twice (rounds) and the median of the rounds is reported.
4. A short sweep of tile configurations and of the T-split, to tune the defaults on real hardware.

Reported per row: ms, GB/s over minimal bytes (forward: read x and log_f, write h; backward: read g,
log_f and the saved h, write dx and dlog_f; bidirectional counted like one causal scan), the fraction of
the measured copy bandwidth, and each baseline's time divided by ours (> 1: we are faster). The table is
printed and, with --out, written as JSON together with the targets and whether they are met:
- forward >= 70% and forward+backward >= 60% of the measured copy bandwidth (real bf16, >= 64M elements);
- >= 3x fla ``chunk_hgrn`` forward and >= 2.5x forward+backward (>= 64M elements);
- never slower than fla ``fused_recurrent_hgrn`` (every shape, both modes);
- the complex HGRN-form forward within 1.8x of the real fp32 forward.

Without CUDA the script prints a message and exits 0. `--smoke` instead runs every code path on tiny
shapes under the Triton interpreter (timings are then wall-clock and meaningless); CI-style check only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SHAPES = [
    (4, 4096, 8192), (8, 2048, 8192), (1, 8192, 12288), (2, 16384, 2048),
    (4, 2048, 2048), (8, 1024, 512), (1, 32768, 1024), (64, 1, 4096),
]
SMOKE_SHAPES = [(2, 40, 24), (4, 1, 8)]
# whole HGRU layers (B, T, d, mode): the LRA Image paper config's layer, HGRN-DeiT-Tiny's, a long causal one
LAYER_SHAPES = [(8, 1024, 512, "2d"), (16, 256, 192, "bidirectional"), (4, 4096, 512, "causal")]
SMOKE_LAYER_SHAPES = [(2, 16, 4, "2d"), (2, 9, 4, "bidirectional")]
LARGE = 64 * 2**20  # "shapes of 64M elements or more"
SMALL_US = 50.0  # forward under this: time with CUDA graphs


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", help="write the results as JSON to this path")
    p.add_argument("--rounds", type=int, default=2, help="repeat the main sweep (median reported)")
    p.add_argument("--no-sweep", action="store_true", help="skip the tile / T-split sweep")
    p.add_argument("--no-fla", action="store_true", help="do not time fla even if it imports")
    p.add_argument("--budget-s", type=float, default=250.0, help="skip remaining work after this")
    p.add_argument("--smoke", action="store_true", help="without CUDA: tiny shapes under the interpreter")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------------------
# Timing


class Clock:
    """do_bench on CUDA (wall-clock medians in smoke mode); a deadline for the whole run."""

    def __init__(self, cuda: bool, budget_s: float):
        self.cuda = cuda
        self.start = time.time()
        self.budget_s = budget_s

    def left(self) -> float:
        return self.budget_s - (time.time() - self.start)

    def time(self, fn, small: bool = False) -> tuple[float, float, float]:
        """(median, p20, p80) in ms; fn has been run once (warm) by the caller."""
        if not self.cuda:
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                fn()
                runs.append((time.perf_counter() - t) * 1e3)
            runs.sort()
            return runs[1], runs[0], runs[2]
        import triton.testing as tt

        q = [0.5, 0.2, 0.8]
        if small:
            try:
                return tuple(tt.do_bench_cudagraph(fn, rep=100, quantiles=q))
            except Exception:  # not capturable here: fall back to plain events
                pass
        return tuple(tt.do_bench(fn, warmup=25, rep=100, quantiles=q))


# ---------------------------------------------------------------------------------------------------------
# Inputs and minimal bytes


def _inputs(torch, shape, variant: str, device, grad: bool, seed: int = 0):
    B, T, D = shape
    gen = torch.Generator(device=device).manual_seed(seed)
    bf16, f32 = torch.bfloat16, torch.float32
    real_dt = f32 if variant == "real-fp32" else bf16
    lf = torch.nn.functional.logsigmoid(torch.randn(B, T, D, device=device, generator=gen)).to(real_dt)
    th_f = th_r = None
    if variant.startswith("cplx"):
        # HGRN form: complex input (the model's interleaved re/im projection), bf16 log gate, fp32 phase.
        x = torch.randn(B, T, D, device=device, dtype=torch.complex64, generator=gen)
        th_f = torch.rand(D, device=device, generator=gen) * math.pi
        h0 = torch.randn(B, D, device=device, dtype=torch.complex64, generator=gen)
    else:
        x = torch.randn(B, T, D, device=device, generator=gen).to(real_dt)
        h0 = torch.randn(B, D, device=device, generator=gen).to(real_dt)
    if variant.startswith("bidir"):
        h0 = None  # the bidirectional API has no initial state
    for t in (x, lf, th_f, th_r, h0):
        if t is not None and grad:
            t.requires_grad_()
    return x, lf, th_f, th_r, h0


def _nbytes(t) -> int:
    return 0 if t is None else t.numel() * t.element_size()


def _min_bytes(x, lf, out, h0, mode: str) -> int:
    fwd = _nbytes(x) + _nbytes(lf) + _nbytes(out) + 2 * _nbytes(h0)
    bwd = 2 * _nbytes(out) + 2 * _nbytes(lf) + _nbytes(x) + 2 * _nbytes(h0)
    return fwd if mode == "fwd" else fwd + bwd


# ---------------------------------------------------------------------------------------------------------
# Callables to time


def _ours(torch, TS, variant, x, lf, th_f, th_r, h0, mode, cfg=None):
    if variant.startswith("bidir"):
        def f():
            return TS.hgrn_scan_bidirectional_triton(x, lf, th_f, th_r, config=cfg)
    else:
        def f():
            return TS.hgrn_scan_triton(x, lf, th_f, initial_state=h0, config=cfg)
    return _wrap(torch, f, [x, lf, th_f, th_r, h0], mode)


def _wrap(torch, f, inputs, mode, first=False):
    if mode == "fwd":
        def run():
            with torch.no_grad():
                return f()
        return run
    leaves = [t for t in inputs if t is not None and t.requires_grad]
    with torch.no_grad():
        probe = f()
    probe = probe[0] if first else probe
    g = torch.randn_like(probe)

    def run():
        out = f()
        out = out[0] if first else out
        return torch.autograd.grad(out, leaves, g, allow_unused=True)
    return run


def _torch_loop(torch, x, lf, h0):
    a = lf.float().exp()
    xs = x.float()
    h = h0.float()
    outs = []
    for t in range(x.shape[1]):
        h = a[:, t] * h + xs[:, t]
        outs.append(h)
    return torch.stack(outs, 1).to(x.dtype)


# ---------------------------------------------------------------------------------------------------------
# Correctness


def _rel(torch, a, b) -> float:
    wide = torch.complex128 if (a.is_complex() or b.is_complex()) else torch.float64
    a, b = a.detach().to(wide), b.detach().to(wide)
    return ((a - b).abs().norm() / b.abs().norm().clamp_min(1e-30)).item()


def _correctness(torch, TS, ref, device, fla) -> list[dict]:
    checks = []
    C = TS.TritonScanConfig

    def case(name, B, T, D, *, dtype, cplx=False, theta=False, h0=False, reverse=False, bidir=False,
             cfg=None, tol=(2e-6, 2e-6)):
        gen = torch.Generator(device=device).manual_seed(len(checks))
        wide = dtype in (torch.float64,)
        x = torch.randn(B, T, D, device=device, generator=gen,
                        dtype=(torch.complex128 if wide else torch.complex64) if cplx else torch.float64)
        x = x if (cplx or wide) else x.to(dtype)
        lf = torch.nn.functional.logsigmoid(torch.randn(B, T, D, device=device, generator=gen) + 2).to(dtype)
        th = torch.randn(D, device=device, generator=gen, dtype=torch.float64 if wide else torch.float32) \
            if theta else None
        th2 = torch.randn_like(th) if (theta and bidir) else None
        st = None
        if h0 and not bidir:
            st = torch.randn(B, D, device=device, generator=gen, dtype=x.dtype if cplx else torch.float32)
            st = st.to(torch.float64) if (wide and not cplx) else st
        args = [t.requires_grad_() if t is not None else None for t in (x, lf, th, th2, st)]
        # The reference sees the very same (rounded) inputs, widened to float64.
        wargs = [t.detach().to(torch.complex128 if t.is_complex() else torch.float64).requires_grad_()
                 if t is not None else None for t in args]
        if bidir:
            out = TS.hgrn_scan_bidirectional_triton(args[0], args[1], args[2], args[3], config=cfg)
            exp = ref.hgrn_scan_bidirectional_reference(wargs[0], wargs[1], wargs[2], wargs[3])
        else:
            out = TS.hgrn_scan_triton(args[0], args[1], args[2], reverse=reverse, initial_state=args[4],
                                      config=cfg)
            exp = ref.hgrn_scan_reference(wargs[0], wargs[1], wargs[2], reverse=reverse,
                                          initial_state=wargs[4])
        w = torch.randn(out.shape, device=device, generator=gen,
                        dtype=out.dtype if out.is_complex() else torch.float32).to(out.dtype)
        live = [i for i, t in enumerate(args) if t is not None]
        got = torch.autograd.grad(out, [args[i] for i in live], w)
        want = torch.autograd.grad(exp, [wargs[i] for i in live], w.to(exp.dtype))
        errs = {"out": _rel(torch, out, exp)}
        names = ("x", "log_f", "theta", "theta_rev", "initial_state")
        for i, g, r in zip(live, got, want):
            errs[names[i]] = _rel(torch, g, r)
        ok = errs["out"] <= tol[0] and all(v <= tol[1] for k, v in errs.items() if k != "out")
        checks.append({"name": name, "shape": [B, T, D], "errors": errs, "tolerance": tol, "ok": ok})
        print(f"  {'ok ' if ok else 'FAIL'} {name:42s} " + " ".join(f"{k}={v:.1e}" for k, v in errs.items()))

    f64, f32, bf16 = torch.float64, torch.float32, torch.bfloat16
    case("fp64 real h0", 2, 300, 96, dtype=f64, h0=True, tol=(1e-12, 1e-12))
    case("fp64 complex theta h0 reverse split", 2, 300, 40, dtype=f64, cplx=True, theta=True, h0=True,
         reverse=True, cfg=C(chunks=5), tol=(1e-12, 1e-12))
    case("fp32 real h0 split", 1, 1000, 72, dtype=f32, h0=True, cfg=C(chunks=7))
    case("fp32 complex theta h0", 2, 257, 48, dtype=f32, cplx=True, theta=True, h0=True, tol=(2e-6, 5e-6))
    case("fp32 bidirectional complex", 2, 200, 40, dtype=f32, cplx=True, theta=True, bidir=True,
         tol=(2e-6, 5e-6))
    case("bf16 real h0 (same rounded inputs)", 2, 513, 80, dtype=bf16, h0=True, tol=(5e-3, 1e-2))
    case("bf16 bidirectional split", 2, 333, 64, dtype=bf16, bidir=True, cfg=C(chunks=3), tol=(1e-2, 1e-2))
    case("bf16 x real with theta", 1, 100, 64, dtype=bf16, theta=True, tol=(2e-6, 1e-2))
    case("T=1 decode", 64, 1, 256, dtype=f32, h0=True)

    if fla is not None:
        B, T, D = 2, 4096, 2048
        gen = torch.Generator(device=device).manual_seed(99)
        x = torch.randn(B, T, D, device=device, generator=gen).bfloat16().requires_grad_()
        lf = torch.nn.functional.logsigmoid(torch.randn(B, T, D, device=device, generator=gen)).bfloat16()
        lf.requires_grad_()
        h0 = torch.randn(B, D, device=device, generator=gen).requires_grad_()
        g = torch.randn(B, T, D, device=device, generator=gen).bfloat16()
        ours = TS.hgrn_scan_triton(x, lf, initial_state=h0)
        dours = torch.autograd.grad(ours, [x, lf, h0], g)
        for fname in ("fused_recurrent_hgrn", "chunk_hgrn"):
            o, _ = getattr(fla, fname)(x, lf, initial_state=h0, output_final_state=True)
            d = torch.autograd.grad(o, [x, lf], g)
            errs = {"out": _rel(torch, ours, o), "x": _rel(torch, dours[0], d[0]),
                    "log_f": _rel(torch, dours[1], d[1])}
            ok = errs["out"] <= 1e-2 and errs["x"] <= 1e-2 and errs["log_f"] <= 3e-2
            checks.append({"name": f"bf16 vs fla {fname}", "shape": [B, T, D], "errors": errs, "ok": ok})
            print(f"  {'ok ' if ok else 'FAIL'} {'bf16 vs fla ' + fname:42s} "
                  + " ".join(f"{k}={v:.1e}" for k, v in errs.items()))
    return checks


# ---------------------------------------------------------------------------------------------------------
# Main sweep


def _measure_rows(torch, TS, clock, device, shapes, variants, fla, rounds, smoke) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for rnd in range(rounds):
        for shape in shapes:
            B, T, D = shape
            n = B * T * D
            for variant in variants:
                for mode in ("fwd", "fwd+bwd"):
                    if clock.left() < 0:
                        continue
                    key = (shape, variant, mode)
                    x, lf, th_f, th_r, h0 = _inputs(torch, shape, variant, device, grad=(mode != "fwd"))
                    with torch.no_grad():
                        out_probe = (TS.hgrn_scan_bidirectional_triton(x, lf, th_f, th_r)
                                     if variant.startswith("bidir")
                                     else TS.hgrn_scan_triton(x, lf, th_f, initial_state=h0))
                    nbytes = _min_bytes(x, lf, out_probe, h0, mode)
                    del out_probe
                    row = rows.setdefault(key, {"shape": list(shape), "elements": n, "variant": variant,
                                                "mode": mode, "min_bytes": nbytes, "ms": [], "baselines": {}})
                    fn = _ours(torch, TS, variant, x, lf, th_f, th_r, h0, mode)
                    fn()  # compile outside the timing
                    med = clock.time(fn, small=False)[0]
                    if mode == "fwd" and med * 1e3 < SMALL_US and clock.cuda:
                        med = clock.time(fn, small=True)[0]
                    row["ms"].append(med)
                    if variant == "real-bf16":
                        bl = row["baselines"]
                        if fla is not None:
                            for fname in ("chunk_hgrn", "fused_recurrent_hgrn"):
                                f = getattr(fla, fname)
                                h0f = h0.float().detach().requires_grad_(h0.requires_grad)
                                run = _wrap(torch, lambda f=f, h0f=h0f: f(x, lf, initial_state=h0f,
                                                                        output_final_state=True),
                                            [x, lf], mode, first=True)
                                try:
                                    run()
                                    t = clock.time(run, small=(mode == "fwd" and n <= 2**22))[0]
                                except Exception as e:  # a baseline failing is reported, not fatal
                                    print(f"  fla {fname} failed on {shape} {mode}: {e!r}")
                                    continue
                                bl.setdefault(fname, []).append(t)
                        if T <= 2048 and n <= 2**24 and clock.left() > 20:
                            run = _wrap(torch, lambda: _torch_loop(torch, x, lf, h0), [x, lf, h0], mode)
                            run()
                            bl.setdefault("torch_loop", []).append(clock.time(run)[0])
                    x = lf = th_f = th_r = h0 = fn = run = None  # free before the next shape
                    if clock.cuda:
                        torch.cuda.empty_cache()
            print(f"  round {rnd + 1}: {shape} done ({clock.left():.0f} s left)", flush=True)
    out = []
    for row in rows.values():
        row["rounds_ms"] = row.pop("ms")
        row["ms"] = statistics.median(row["rounds_ms"])
        spread = (max(row["rounds_ms"]) - min(row["rounds_ms"])) / row["ms"] if row["ms"] else 0.0
        row["round_spread"] = spread
        row["baselines"] = {k: statistics.median(v) for k, v in row["baselines"].items()}
        out.append(row)
    return out


def _annotate(rows, copy_gbps):
    for r in rows:
        r["gbps"] = r["min_bytes"] / (r["ms"] * 1e-3) / 1e9 if r["ms"] > 0 else float("nan")
        r["frac_copy"] = r["gbps"] / copy_gbps if copy_gbps else float("nan")
        r["ratio"] = {k: v / r["ms"] for k, v in r["baselines"].items()}


def _print_table(rows):
    head = (f"{'shape':>18s} {'variant':>11s} {'mode':>8s} {'ms':>9s} {'GB/s':>8s} {'%copy':>6s} "
            f"{'x chunk':>8s} {'x fused':>8s} {'x loop':>8s} {'spread':>6s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        rt = r["ratio"]

        def fmt(k):
            return f"{rt[k]:8.2f}" if k in rt else f"{'-':>8s}"
        print(f"{str(tuple(r['shape'])):>18s} {r['variant']:>11s} {r['mode']:>8s} {r['ms']:9.4f} "
              f"{r['gbps']:8.0f} {100 * r['frac_copy']:5.1f}% {fmt('chunk_hgrn')} "
              f"{fmt('fused_recurrent_hgrn')} {fmt('torch_loop')} {100 * r['round_spread']:5.1f}%")


def _targets(rows) -> list[dict]:
    """The targets of the module docstring, each with its evidence and whether it holds (None: not measurable here)."""
    res = []

    def pick(variant, mode):
        return [r for r in rows if r["variant"] == variant and r["mode"] == mode]

    def add(name, items, need):
        items = [(tuple(r["shape"]), v) for r, v in items if v == v]
        res.append({"target": name, "values": [[list(s), v] for s, v in items],
                    "ok": (all(v >= need for _, v in items) if items else None)})

    add("forward >= 70% of copy bandwidth (real bf16, >= 64M elements)",
        [(r, r["frac_copy"]) for r in pick("real-bf16", "fwd") if r["elements"] >= LARGE], 0.70)
    add("forward+backward >= 60% of copy bandwidth (real bf16, >= 64M elements)",
        [(r, r["frac_copy"]) for r in pick("real-bf16", "fwd+bwd") if r["elements"] >= LARGE], 0.60)
    add(">= 3x fla chunk_hgrn forward (>= 64M elements)",
        [(r, r["ratio"].get("chunk_hgrn", float("nan"))) for r in pick("real-bf16", "fwd")
         if r["elements"] >= LARGE], 3.0)
    add(">= 2.5x fla chunk_hgrn forward+backward (>= 64M elements)",
        [(r, r["ratio"].get("chunk_hgrn", float("nan"))) for r in pick("real-bf16", "fwd+bwd")
         if r["elements"] >= LARGE], 2.5)
    add("never slower than fla fused_recurrent_hgrn (all shapes, both modes)",
        [(r, r["ratio"].get("fused_recurrent_hgrn", float("nan")))
         for r in pick("real-bf16", "fwd") + pick("real-bf16", "fwd+bwd")], 1.0)
    # Complex HGRN form stores complex64 (8 B) x and h: torch has no complex bf16, so against the bf16 real
    # forward (6 B/elem vs 18) the byte ratio alone is 3x. Judge it against the fp32 real forward.
    by_key = {(tuple(r["shape"]), r["variant"], r["mode"]): r for r in rows}
    items = []
    for r in pick("cplx-hgrn", "fwd"):
        base = by_key.get((tuple(r["shape"]), "real-fp32", "fwd"))
        if base:
            items.append((r, 1.8 / (r["ms"] / base["ms"])))  # >= 1 means within 1.8x
    add("complex HGRN-form forward within 1.8x of the real (fp32) forward (value: 1.8 / ratio, >= 1)",
        items, 1.0)
    return res


def _sweep(torch, TS, clock, device, smoke) -> list[dict]:
    C = TS.TritonScanConfig
    out = []
    if smoke:
        cases = [((1, 70, 16), "real-bf16", [C(block_t=8, block_d=8), C(block_t=16, block_d=16, chunks=3)])]
    else:
        real_tiles = [C(block_t=bt, block_d=bd, num_warps=w, num_stages=s) for bt, bd, w, s in
                      [(32, 64, 4, 2), (32, 64, 4, 3), (16, 64, 4, 2), (64, 64, 4, 2), (64, 64, 8, 2),
                       (32, 128, 4, 2), (32, 32, 4, 2), (32, 64, 4, 1)]]
        cplx_tiles = [C(block_t=bt, block_d=bd, num_warps=w) for bt, bd, w in
                      [(16, 32, 4), (32, 32, 4), (16, 64, 4), (16, 16, 4), (32, 32, 8)]]
        split = [C(chunks=k) for k in (1, 8, 16, 33, 64)]
        cases = [((8, 2048, 8192), "real-bf16", real_tiles),
                 ((1, 8192, 12288), "real-bf16", [C(chunks=k) for k in (1, 2, 3, 4)]),
                 ((1, 32768, 1024), "real-bf16", split + real_tiles[:3]),
                 ((8, 2048, 8192), "cplx-hgrn", cplx_tiles)]
    for shape, variant, cfgs in cases:
        for mode in ("fwd", "fwd+bwd"):
            x, lf, th_f, th_r, h0 = _inputs(torch, shape, variant, device, grad=(mode != "fwd"))
            for cfg in cfgs:
                if clock.left() < 0:
                    break
                fn = _ours(torch, TS, variant, x, lf, th_f, th_r, h0, mode, cfg)
                try:
                    fn()
                    ms = clock.time(fn)[0]
                except Exception as e:
                    ms = float("nan")
                    print(f"  sweep config failed {cfg}: {e!r}")
                cfg_d = {k: v for k, v in vars(cfg).items() if v is not None}
                out.append({"shape": list(shape), "variant": variant, "mode": mode, "config": cfg_d,
                            "ms": ms})
                print(f"  sweep {str(shape):>18s} {variant:>10s} {mode:>8s} {str(cfg_d):60s} {ms:9.4f} ms")
            x = lf = th_f = th_r = h0 = fn = None
            if clock.cuda:
                torch.cuda.empty_cache()
    return out


def main() -> int:
    args = _parse()
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print("scan_gpu.py: no CUDA device here, so nothing is measured (the GPU figures come from a run on "
              "a GPU machine). Use --smoke to exercise every code path on tiny shapes under the Triton "
              "interpreter.")
        return 0
    if not cuda:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are first imported
        os.environ["HGRN_SCAN_IMPL"] = "triton"  # the HGRU layers' scans too
    sys.path.insert(0, ROOT)
    import triton

    import kernels.reference as ref
    import kernels.triton_scan as TS

    device = torch.device("cuda" if cuda else "cpu")
    clock = Clock(cuda, args.budget_s)
    fla = None
    if cuda and not args.no_fla:
        try:
            import fla.ops.hgrn as fla  # noqa: F811
        except Exception as e:  # fla is optional: report and go on
            print(f"fla not importable ({e.__class__.__name__}: {e}); its columns stay empty")
    info = {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu, interpreter smoke ({platform.machine()})",
        "torch": torch.__version__, "triton": triton.__version__,
        "fla": getattr(sys.modules.get("fla"), "__version__", None) if fla is not None else None,
        "sms": torch.cuda.get_device_properties(0).multi_processor_count if cuda else None,
        "smoke": not cuda,
    }
    print(json.dumps(info))
    result = {"schema": 1, "info": info}

    print("\n== correctness ==")
    checks = _correctness(torch, TS, ref, device, fla) if cuda else _smoke_correctness(torch, TS, ref)
    result["correctness"] = checks
    all_ok = all(c["ok"] for c in checks)
    if not all_ok:
        print("CORRECTNESS FAILED: timings below are recorded but the kernels are wrong somewhere")

    print("\n== copy ceiling ==")
    n_copy = (2 * 2**30 if cuda else 2**22) // 4
    src = torch.empty(n_copy, device=device, dtype=torch.float32).normal_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    copy_ms = clock.time(lambda: dst.copy_(src))[0]
    copy_gbps = 2 * src.numel() * 4 / (copy_ms * 1e-3) / 1e9
    src = dst = None
    result["copy"] = {"bytes_read_plus_written": 2 * n_copy * 4, "ms": copy_ms, "gbps": copy_gbps}
    print(f"device-to-device copy: {copy_ms:.3f} ms, {copy_gbps:.0f} GB/s (read + write)")

    print("\n== timings ==")
    variants = ["real-bf16", "real-fp32", "cplx-hgrn", "bidir-bf16"]
    shapes = SHAPES if cuda else SMOKE_SHAPES
    rounds = max(1, args.rounds) if cuda else 1
    rows = _measure_rows(torch, TS, clock, device, shapes, variants, fla, rounds, not cuda)
    _annotate(rows, copy_gbps)
    result["rows"] = rows
    _print_table(rows)

    print("\n== whole HGRU layer beside its bare scans ==")
    result["layers"] = _layer_rows(torch, TS, clock, device, LAYER_SHAPES if cuda else SMOKE_LAYER_SHAPES)

    if not args.no_sweep:
        print("\n== tile / T-split sweep ==")
        result["sweep"] = _sweep(torch, TS, clock, device, not cuda)

    # Interpreter timings say nothing about the GPU: no verdicts in smoke mode.
    result["targets"] = _targets(rows) if cuda else []
    print("\n== targets ==" + ("" if cuda else " not evaluated in smoke mode"))
    for t in result["targets"]:
        state = {True: "MET", False: "NOT MET", None: "n/a"}[t["ok"]]
        vals = ", ".join(f"{tuple(s)}: {v:.2f}" for s, v in t["values"])
        print(f"  [{state:7s}] {t['target']}  {vals}")
    result["wall_s"] = time.time() - clock.start
    result["budget_exhausted"] = clock.left() < 0
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
        os.replace(tmp, args.out)
        print(f"\nwrote {args.out}")
    print(f"total {result['wall_s']:.0f} s")
    return 0 if all_ok else 1


def _layer_rows(torch, TS, clock, device, shapes) -> list[dict]:
    """Forward and forward+backward of a complex HGRU layer (fused core, and the op-by-op path) against the
    bare Triton scans it runs (the same directions over complex (B, T, d) inputs), in ms and as ratios."""
    from models import HGRU

    rows = []
    print(f"{'B, T, d, mode':>26} | {'pass':>7} | {'fused ms':>9} {'unfused ms':>10} {'scans ms':>9} | "
          f"{'fused/scans':>11} {'unfused/fused':>13}")
    for B, T, d, mode in shapes:
        if rows and clock.left() < 0:  # the first shape always runs, so every code path is exercised
            print("  (budget exhausted: remaining layer shapes skipped)")
            break
        torch.manual_seed(0)
        layer = HGRU(d, mode).to(device)
        x = torch.randn(B, T, d, device=device, requires_grad=True)
        bound = torch.rand(d, device=device)
        side = math.isqrt(T)
        grid = (side, T // side) if mode == "2d" else None
        u = torch.randn(B, T, d, device=device, dtype=torch.complex64, requires_grad=True)
        lf = torch.nn.functional.logsigmoid(torch.randn(B, T, d, device=device)).requires_grad_()
        th_f = torch.rand(d, device=device, requires_grad=True)
        th_r = torch.rand(d, device=device, requires_grad=True)

        def scans():
            if mode == "causal":
                return TS.hgrn_scan_triton(u, lf, th_f)
            out = TS.hgrn_scan_bidirectional_triton(u, lf, th_f, th_r)
            if mode == "2d":  # the columns as a (B, H, W*d) view, phase repeated per column
                H, W = grid
                cols = TS.hgrn_scan_bidirectional_triton(
                    u.reshape(B, H, W * d), lf.reshape(B, H, W * d), th_f.repeat(W), th_r.repeat(W))
                out = out + cols.reshape(B, T, d)
            return out

        def run_layer(fused: bool):
            def f():
                layer.fused = fused
                return layer(x, bound, grid=grid)
            return f

        row = {"shape": [B, T, d], "mode": mode}
        for pas in ("fwd", "fwdbwd"):
            times = {}
            for name, f, inputs in (("fused", run_layer(True), [x]), ("unfused", run_layer(False), [x]),
                                    ("scans", scans, [u, lf, th_f, th_r])):
                run = _wrap(torch, f, inputs, pas)
                run()  # warm-up: compilation and autotuning stay out of the timing
                times[name] = clock.time(run)[0]
            row[pas] = times
            print(f"{str((B, T, d, mode)):>26} | {pas:>7} | {times['fused']:9.3f} {times['unfused']:10.3f} "
                  f"{times['scans']:9.3f} | {times['fused'] / times['scans']:10.2f}x "
                  f"{times['unfused'] / times['fused']:12.2f}x")
        rows.append(row)
    return rows


def _smoke_correctness(torch, TS, ref) -> list[dict]:
    # Interpreter: one tiny real and one tiny complex case, so the reporting path runs.
    checks = []
    C = TS.TritonScanConfig
    for name, cplx in (("smoke real", False), ("smoke complex theta", True)):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 21, 6, generator=gen, dtype=torch.complex128 if cplx else torch.float64)
        lf = torch.nn.functional.logsigmoid(torch.randn(2, 21, 6, generator=gen, dtype=torch.float64))
        th = torch.randn(6, generator=gen, dtype=torch.float64) if cplx else None
        out = TS.hgrn_scan_triton(x, lf, th, config=C(block_t=8, block_d=4, chunks=2))
        err = _rel(torch, out, ref.hgrn_scan_reference(x, lf, th))
        checks.append({"name": name, "shape": [2, 21, 6], "errors": {"out": err}, "ok": err <= 1e-12})
        print(f"  {'ok ' if err <= 1e-12 else 'FAIL'} {name:42s} out={err:.1e}")
    return checks


if __name__ == "__main__":
    sys.exit(main())
