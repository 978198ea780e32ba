"""Pathfinder / Path-X generator: labels balanced, uint8 images of the right size, both markers
present, and connectivity on the rendered image matches the label (checked here with an
independent connected-components labelling); the written files are read by the reader."""

from __future__ import annotations

import filecmp
import math

import numpy as np
import pytest
from PIL import Image

from lra.data import PathfinderDataModule
from lra.generators.pathfinder import PathfinderSampler
from lra.generators.pathfinder_config import lra_config
from lra.generators.pathfinder_dataset import generate_pathfinder


def components(lit: np.ndarray, reach: int) -> np.ndarray:
    """Label lit pixels so that two pixels within Chebyshev distance ``reach`` share a label."""
    labels = np.zeros(lit.shape, dtype=np.int64)
    h, w = lit.shape
    ys, xs = np.nonzero(lit)
    current = 0
    for y0, x0 in zip(ys, xs):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        stack = [(y0, x0)]
        while stack:  # plain flood fill
            y, x = stack.pop()
            y_lo, y_hi, x_lo, x_hi = max(0, y - reach), min(h, y + reach + 1), max(0, x - reach), min(w, x + reach + 1)
            win = lit[y_lo:y_hi, x_lo:x_hi] & (labels[y_lo:y_hi, x_lo:x_hi] == 0)
            for dy, dx in zip(*np.nonzero(win)):
                labels[y_lo + dy, x_lo + dx] = current
                stack.append((y_lo + dy, x_lo + dx))
    return labels


def check_images(samples, cfg, threshold: int = 10) -> None:
    r = cfg.marker_radius
    for s in samples:
        img = s.image
        assert img.shape == (cfg.window_size, cfg.window_size) and img.dtype == np.uint8
        assert img.min() == 0 and img.max() == 255  # per-image min-max scaling
        lit = img > threshold
        for (y, x) in s.markers:  # a filled disc at each marker
            yy, xx = np.ogrid[: img.shape[0], : img.shape[1]]
            disc = (yy - y) ** 2 + (xx - x) ** 2 <= (r - 0.5) ** 2
            assert lit[disc].all(), (s.markers, s.label)
            assert disc.sum() >= math.pi * (r - 0.5) ** 2 * 0.8
        # Dashes of one snake are at most link_distance apart; different snakes never that close.
        lab = components(lit, cfg.link_distance)
        (ya, xa), (yb, xb) = s.markers
        assert (lab[ya, xa] == lab[yb, xb]) == bool(s.label), (s.markers, s.label)


def test_pathfinder32_images_labels_markers_connectivity():
    cfg = lra_config(32)
    samples = PathfinderSampler(cfg).sample_many(np.random.default_rng(11), 300)
    labels = np.array([s.label for s in samples])
    assert 0.4 < labels.mean() < 0.6  # fair coin (binomial sd 0.029)
    check_images(samples, cfg)
    # Contours: a negative image has the two marked snakes apart, so at least two components
    # hold markers; images are not blank and not saturated.
    lit_frac = np.mean([(s.image > 10).mean() for s in samples])
    assert 0.05 < lit_frac < 0.5


def test_pathx_images_labels_markers_connectivity():
    cfg = lra_config(128)
    assert (cfg.paddle_length, cfg.marker_radius, cfg.seed_distance, cfg.num_distractor_snakes) == (5, 3.0, 20, 8)
    samples = PathfinderSampler(cfg).sample_many(np.random.default_rng(5), 6)
    check_images(samples, cfg)
    assert {s.margin for s in samples} <= {2, 3}


def test_baseline_difficulty_preset():
    cfg = lra_config(32, "curv_baseline")
    assert (cfg.contour_length, cfg.distractor_length, cfg.num_distractor_snakes) == (6, 2, 10)
    samples = PathfinderSampler(cfg).sample_many(np.random.default_rng(2), 100)
    check_images(samples, cfg)


def test_written_dataset_is_read_back(tmp_path):
    out = generate_pathfinder(tmp_path, 32, size=60, seed=4, workers=2, images_per_batch=25, progress=False)
    assert out["images"] == 60 and out["batches"] == 3
    folder = tmp_path / "pathfinder32" / "curv_contour_length_14"
    lines = [ln.split() for b in range(3) for ln in (folder / "metadata" / f"{b}.npy").read_text().splitlines()]
    assert len(lines) == 60
    assert all(len(f) == 11 and f[0].startswith("imgs/") and f[4:] == ["1.0", "14", "4", "2", "0.5", "1", "1"] for f in lines)
    for f in lines[:5]:
        img = np.asarray(Image.open(folder / f[0] / f[1]))
        assert img.shape == (32, 32) and img.dtype == np.uint8
    dm = PathfinderDataModule(tmp_path, val_fraction=0.0, test_fraction=0.0)
    ds = dm.dataset("train")
    assert len(ds) == 60
    assert sorted(ds[k][1] for k in range(60)) == sorted(int(f[3]) for f in lines)


def test_generation_does_not_depend_on_worker_count(tmp_path):
    kw = dict(size=24, seed=9, images_per_batch=12, chunk_size=6, progress=False)
    generate_pathfinder(tmp_path / "a", 32, workers=1, **kw)
    generate_pathfinder(tmp_path / "b", 32, workers=2, **kw)
    rel = "pathfinder32/curv_contour_length_14"
    assert filecmp.cmp(tmp_path / "a" / rel / "metadata/1.npy", tmp_path / "b" / rel / "metadata/1.npy", shallow=False)
    for i in (0, 7, 11):
        assert filecmp.cmp(tmp_path / "a" / rel / f"imgs/1/sample_{i}.png", tmp_path / "b" / rel / f"imgs/1/sample_{i}.png",
                           shallow=False)


def test_existing_data_is_not_overwritten(tmp_path):
    generate_pathfinder(tmp_path, 32, size=4, workers=1, progress=False)
    with pytest.raises(FileExistsError, match="--force"):
        generate_pathfinder(tmp_path, 32, size=4, workers=1, progress=False)
