"""One training step (forward + backward + AdamW) of HGRN against the Transformer baseline, side by side.

    python benchmarks/model.py [--d-model 64] [--layers 2] [--batch 1] [--lengths 1024 4096 16384]

Same width, depth, embedding and head; bidirectional HGRN (the LRA setting) against a bidirectional
pre-norm Transformer with ``scaled_dot_product_attention``. Each (model, T) runs in its own child process so
that its peak resident memory can be read cleanly (VmHWM reset through /proc/self/clear_refs); the parent
prints tokens per second and peak memory, with the HGRN / Transformer ratios. A Transformer that runs out of
memory or time is reported as such, not hidden.
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


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(args: argparse.Namespace) -> None:
    """Build one model, time a few training steps, print a JSON line with the results."""
    import torch

    from models import HGRN, ClassificationHead, SequenceClassifier, TokenEmbedding, Transformer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, L, T, B = args.d_model, args.layers, args.length, args.batch
    body = HGRN(d, L, mode="bidirectional") if args.model == "hgrn" else Transformer(d, L, n_heads=args.heads, ffn_ratio=1.0)
    model = SequenceClassifier(TokenEmbedding(256, d), body, ClassificationHead(d, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(1, 256, (B, T))
    labels = torch.randint(0, 10, (B,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(tokens), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    base = _status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:  # reset the high-water mark to the current RSS
            f.write("5")
    except OSError:
        pass
    times = []
    try:
        step()  # warm-up (also allocates AdamW state)
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    except (RuntimeError, MemoryError) as err:
        print(json.dumps({"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:80]}"}))
        return
    peak = _status_kib("VmHWM") - base
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"status": "ok", "step_s": statistics.median(times), "peak_mib": peak / 1024, "params": params}))


def run_child(model: str, length: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", model, "--length", str(length)]
    for name in ("d_model", "layers", "batch", "heads", "steps", "threads"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    env = {**os.environ, **MALLOC_ENV}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"did not finish in {args.timeout} s"}
    if done.returncode != 0:
        killed = done.returncode < 0 or done.returncode == 137
        tail = (done.stderr.strip().splitlines() or ["?"])[-1][:100]
        return {"status": "out of memory (killed)" if killed else f"crashed: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per (model, T) child")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=["hgrn", "transformer"], help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(
        f"training step, d_model={args.d_model}, layers={args.layers}, batch={args.batch}, "
        f"{args.threads} threads, median of {args.steps} steps"
    )
    header = (
        f"{'T':>6} | {'HGRN tok/s':>11} {'Transf. tok/s':>13} {'speed ratio':>11} | "
        f"{'HGRN MiB':>9} {'Transf. MiB':>11} {'memory ratio':>12}"
    )
    print(header)
    print("-" * len(header))
    for T in args.lengths:
        h, t = run_child("hgrn", T, args), run_child("transformer", T, args)
        tokens = args.batch * T

        def rate(r: dict) -> str:
            return f"{tokens / r['step_s']:,.0f}" if r["status"] == "ok" else "-"

        def mem(r: dict) -> str:
            return f"{r['peak_mib']:,.0f}" if r["status"] == "ok" else "-"

        both = h["status"] == "ok" and t["status"] == "ok"
        speed = f"{t['step_s'] / h['step_s']:.2f}x" if both else "-"
        memory = f"{h['peak_mib'] / t['peak_mib']:.2f}x" if both else "-"
        print(f"{T:>6} | {rate(h):>11} {rate(t):>13} {speed:>11} | {mem(h):>9} {mem(t):>11} {memory:>12}", flush=True)
        for name, r in (("HGRN", h), ("Transformer", t)):
            if r["status"] != "ok":
                print(f"       {name} at T={T}: {r['status']}")
    print("speed ratio = HGRN tokens/s over Transformer tokens/s; memory ratio = HGRN peak over Transformer peak")


if __name__ == "__main__":
    main()
