"""Throughput and memory of the LRA data layer.

    python benchmarks/data.py [--quick] [--json out.json]

Measures, each against its target:
- ListOps generation: rows per second, 100k rows on all cores (target: < 60 s on 2 cores);
- Pathfinder-32 and Path-X generation per core, PNGs and metadata included (targets: <= 20 ms
  and <= 200 ms per image; the original generator takes about 140 ms and 1.1 s);
- Path-X reader: peak resident memory of a full pass over the training split, relative to
  that split's size as uint8 (target: within 1.2x). The images repeat a few generated ones
  (hard links) so that the split is large without hours of generation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lra.generators.listops import generate_listops  # noqa: E402
from lra.generators.parallel import default_workers  # noqa: E402
from lra.generators.pathfinder_dataset import difficulty_dir, generate_pathfinder  # noqa: E402


def bench_listops(rows: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = generate_listops(d, rows, workers=workers, progress=False)
    return {"rows": rows, "workers": workers, "seconds": round(out["seconds"], 2),
            "rows_per_s": round(rows / out["seconds"], 1), "label_0": out["label_fraction"][0],
            "label_9": out["label_fraction"][9]}


def bench_pathfinder(resolution: int, images: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        generate_pathfinder(d, resolution, size=min(images, 8), workers=1, progress=False)  # warm up tables
        out = generate_pathfinder(Path(d) / "run", resolution, size=images, workers=workers, progress=False)
    per_img = out["seconds"] / images
    return {"resolution": resolution, "images": images, "workers": workers, "seconds": round(out["seconds"], 2),
            "images_per_s": round(images / out["seconds"], 2), "ms_per_image_per_core": round(1000 * per_img * workers, 1),
            "pair_success": round(out["pair_success"], 4), "positive_fraction": out["positive_fraction"]}


_READER = r"""
import json, sys, numpy as np
sys.path.insert(0, {root!r})
def status():
    out = {{}}
    for line in open("/proc/self/status"):
        k, v = line.split(":", 1)
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out
from lra.data import PathXDataModule
import torch
torch.set_num_threads(1)
before = status()
dm = PathXDataModule({data!r}, batch_size=32)
loader = dm.train_dataloader()
n = 0
for batch in loader:
    n += batch["x"].shape[0]
after = status()
print(json.dumps({{"before": before, "after": after, "train_images": n}}))
"""


def bench_pathx_reader(unique: int, images: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        generate_pathfinder(d, 128, size=unique, workers=default_workers(), images_per_batch=unique, progress=False)
        folder = difficulty_dir(d, 128)
        src = [ln.split() for ln in (folder / "metadata" / "0.npy").read_text().splitlines()]
        # A large dataset made of hard links to the few generated images.
        per_batch = 1000
        for b in range(1, -(-images // per_batch) + 1):
            (folder / "imgs" / str(b)).mkdir(parents=True, exist_ok=True)
            lines = []
            for i in range(min(per_batch, images - (b - 1) * per_batch)):
                f = src[(b * per_batch + i) % unique]
                os.link(folder / f[0] / f[1], folder / "imgs" / str(b) / f"sample_{i}.png")
                lines.append(" ".join([f"imgs/{b}", f"sample_{i}.png", str(i)] + f[3:]))
            (folder / "metadata" / f"{b}.npy").write_text("\n".join(lines) + "\n")
        (folder / "metadata" / "0.npy").unlink()
        # Decode once (a separate process), then measure a fresh reader.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                        f"from lra.data import PathXDataModule; PathXDataModule({d!r}).setup()"], check=True,
                       stderr=subprocess.DEVNULL)
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _READER.format(root=str(ROOT), data=d)], check=True,
                             capture_output=True, text=True)
        pass_s = time.perf_counter() - t0
    m = json.loads(res.stdout.strip().splitlines()[-1])
    split_bytes = m["train_images"] * 128 * 128
    grown = m["after"]["VmHWM"] - m["before"]["VmRSS"]
    return {"images": images, "train_images": m["train_images"], "split_uint8_mb": round(split_bytes / 2**20, 1),
            "peak_rss_growth_mb": round(grown / 2**20, 1), "ratio": round(grown / split_bytes, 3),
            "anon_growth_mb": round((m["after"]["RssAnon"] - m["before"]["RssAnon"]) / 2**20, 1),
            "file_backed_mb": round(m["after"]["RssFile"] / 2**20, 1),
            "decode_s": round(decode_s, 1), "full_pass_s": round(pass_s, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--only", choices=("listops", "pathfinder", "reader"), default=None, help="run one part only")
    p.add_argument("--reader-images", type=int, default=None, help="Path-X images for the reader test (20000)")
    args = p.parse_args()
    q = args.quick
    results = {"cpu_cores": default_workers()}
    print(f"cores available: {results['cpu_cores']}", flush=True)
    if args.only in (None, "listops"):
        results["listops"] = r = bench_listops(10_000 if q else 100_000, args.workers)
        print(f"ListOps: {r['rows']} rows in {r['seconds']} s on {r['workers']} workers = {r['rows_per_s']} rows/s "
              f"(label 0: {r['label_0']:.3f}, 9: {r['label_9']:.3f})", flush=True)
    if args.only in (None, "pathfinder"):
        for res, n in ((32, 300 if q else 2000), (128, 10 if q else 100)):
            key = f"pathfinder{res}"
            results[key] = r = bench_pathfinder(res, n, 1)
            print(f"Pathfinder-{res}: {r['images_per_s']} images/s per core = {r['ms_per_image_per_core']} ms/image "
                  f"(pair survival {r['pair_success']}, positives {r['positive_fraction']:.3f})", flush=True)
        results["pathfinder32_all_cores"] = r = bench_pathfinder(32, 300 if q else 4000, args.workers)
        print(f"Pathfinder-32 on {r['workers']} workers: {r['images_per_s']} images/s", flush=True)
    if args.only not in (None, "reader"):
        return _finish(args, results)
    n_reader = args.reader_images or (2000 if q else 20_000)
    results["pathx_reader"] = r = bench_pathx_reader(20 if q else 50, n_reader)
    print(f"Path-X reader: {r['train_images']} training images = {r['split_uint8_mb']} MB as uint8; peak RSS grew "
          f"{r['peak_rss_growth_mb']} MB over a full pass = {r['ratio']}x (anonymous +{r['anon_growth_mb']} MB, "
          f"file-backed {r['file_backed_mb']} MB); decode {r['decode_s']} s, pass {r['full_pass_s']} s", flush=True)
    _finish(args, results)


def _finish(args: argparse.Namespace, results: dict) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
