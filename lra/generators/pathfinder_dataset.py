"""Write a generated Pathfinder / Path-X difficulty folder in the LRA release layout.

    <root>/pathfinder<res>/<difficulty>/imgs/<batch>/sample_<i>.png   (8-bit grey PNG)
    <root>/pathfinder<res>/<difficulty>/metadata/<batch>.npy          (text lines, not numpy!)

Each metadata line is ``imgs/<batch> sample_<i>.png <i> <label> <continuity> <contour_length>
<distractor_length> <paddle_length> <paddle_thickness> <margin> <n_paddle_contrasts>``, the
form the LRA release uses, so :mod:`lra.data.pathfinder` reads generated and released data
alike.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lra.generators.parallel import run_chunks
from lra.generators.pathfinder import PathfinderSampler
from lra.generators.pathfinder_config import DEFAULT_DIFFICULTY, PathfinderConfig, lra_config

_SAMPLERS: dict[PathfinderConfig, PathfinderSampler] = {}


@dataclass(frozen=True)
class _Chunk:
    out_dir: str
    config: PathfinderConfig
    seed: int
    batch: int
    start: int
    count: int


def _sampler(config: PathfinderConfig) -> PathfinderSampler:
    # One sampler (stamp tables) per process and config.
    if config not in _SAMPLERS:
        _SAMPLERS[config] = PathfinderSampler(config)
    return _SAMPLERS[config]


def _run_chunk(chunk: _Chunk) -> tuple[int, int, list[str], dict]:
    sampler = _sampler(chunk.config)
    sampler.reset()
    rng = np.random.default_rng([chunk.seed, chunk.batch, chunk.start])
    img_dir = Path(chunk.out_dir) / "imgs" / str(chunk.batch)
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    labels = 0
    before = (sampler.stats.attempts, sampler.stats.pairs, sampler.stats.distractors_wanted, sampler.stats.distractors_placed)
    for k, sample in enumerate(sampler.sample_many(rng, chunk.count)):
        i = chunk.start + k
        Image.fromarray(sample.image, mode="L").save(img_dir / f"sample_{i}.png")
        fields = [f"imgs/{chunk.batch}", f"sample_{i}.png", str(i), str(sample.label)]
        lines.append(" ".join(fields + chunk.config.metadata_fields(sample.margin)))
        labels += sample.label
    s = sampler.stats
    stats = {
        "attempts": s.attempts - before[0],
        "pairs": s.pairs - before[1],
        "distractors_wanted": s.distractors_wanted - before[2],
        "distractors_placed": s.distractors_placed - before[3],
        "positives": labels,
    }
    return chunk.batch, chunk.count, lines, stats


def difficulty_dir(root: str | os.PathLike, resolution: int, difficulty: str = DEFAULT_DIFFICULTY) -> Path:
    return Path(root) / f"pathfinder{resolution}" / difficulty


def generate_pathfinder(
    root: str | os.PathLike,
    resolution: int = 32,
    difficulty: str = DEFAULT_DIFFICULTY,
    size: int = 200_000,
    *,
    seed: int = 0,
    workers: int | None = None,
    images_per_batch: int = 1000,
    chunk_size: int | None = None,
    config: PathfinderConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Generate ``size`` images into ``<root>/pathfinder<resolution>/<difficulty>``.

    ``config`` overrides the LRA preset (its ``window_size`` must equal ``resolution``).
    Returns a summary (counts, label balance, timings, sampler statistics).
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    cfg = config or lra_config(resolution, difficulty)
    if cfg.window_size != resolution:
        raise ValueError(f"config.window_size {cfg.window_size} != resolution {resolution}")
    out = difficulty_dir(root, resolution, difficulty)
    meta_dir = out / "metadata"
    if meta_dir.is_dir() and any(meta_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{meta_dir} already holds metadata; pass overwrite=True (--force) to regenerate")
    meta_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for old in meta_dir.glob("*.npy"):
            old.unlink()
    # Small chunks keep every core busy and bound the memory of one batched draw. The chunking
    # depends only on the size (never on the worker count), so the output does too.
    chunk = chunk_size or max(1, min(100 if resolution <= 64 else 20, -(-size // 8)))
    tasks = []
    n_batches = -(-size // images_per_batch)
    for b in range(n_batches):
        count_b = min(images_per_batch, size - b * images_per_batch)
        for start in range(0, count_b, chunk):
            tasks.append(_Chunk(str(out), cfg, seed, b, start, min(chunk, count_b - start)))
    pending: dict[int, list[str]] = {}
    remaining = {b: min(images_per_batch, size - b * images_per_batch) for b in range(n_batches)}
    totals = {"attempts": 0, "pairs": 0, "distractors_wanted": 0, "distractors_placed": 0, "positives": 0}
    t0 = time.perf_counter()
    for batch, count, lines, stats in run_chunks(
        _run_chunk, tasks, workers=workers, total=size, count=lambda r: r[1],
        desc=f"pathfinder{resolution}/{difficulty}", unit="img", progress=progress,
    ):
        pending.setdefault(batch, []).extend(lines)
        for key, value in stats.items():
            totals[key] += value
        remaining[batch] -= count
        if remaining[batch] == 0:
            _write_metadata(meta_dir / f"{batch}.npy", pending.pop(batch))
    elapsed = time.perf_counter() - t0
    return {
        "dir": str(out),
        "images": size,
        "batches": n_batches,
        "positive_fraction": totals["positives"] / size,
        "seconds": elapsed,
        "pair_success": totals["pairs"] / max(1, totals["attempts"]),
        "distractors_placed_fraction": totals["distractors_placed"] / max(1, totals["distractors_wanted"]),
    }


def _write_metadata(path: Path, lines: list[str]) -> None:
    # Lines sorted by image index, written atomically (a half-written file would be misread).
    lines = sorted(lines, key=lambda s: int(s.split(" ", 3)[2]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)
