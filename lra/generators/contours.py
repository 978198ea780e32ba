"""Rasterised building blocks of the contour generator: dash and marker stamps.

A stamp is a sparse list of pixel offsets (relative to the pixel a dash starts from, or the
marker centre) with anti-aliased intensities. Every dash the generator can draw starts on an
integer pixel and points in one of a finite set of directions (integer degrees for seeds,
integer candidate offsets on a circle for extensions), so all stamps are computed once per
(config, margin) and drawing becomes a few fancy-indexing operations.

Anti-aliasing: shapes are drawn on a grid ``aa`` times finer and averaged back down (the
original used PIL on an ``aa`` canvas plus a Lanczos resize). Each stamp is scaled so its
brightest pixel is 1, as the original's ``imresize`` byte-scaling of every dash did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stamp:
    """Pixel offsets (dy, dx) and intensities of one drawn shape, plus its dilated footprint."""

    dy: np.ndarray  # int32, lit pixels
    dx: np.ndarray
    value: np.ndarray  # float32 in (0, 1], max == 1
    ring_dy: np.ndarray  # int32, lit pixels dilated by the clearance (Chebyshev)
    ring_dx: np.ndarray
    inner_dy: np.ndarray  # lit pixels dilated by the (smaller) distractor clearance
    inner_dx: np.ndarray


def _square_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(-radius, radius + 1, dtype=np.int32)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    return yy.ravel(), xx.ravel()


def _dilate_offsets(dy: np.ndarray, dx: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    if radius <= 0:
        return dy.copy(), dx.copy()
    sy, sx = _square_offsets(radius)
    all_y = (dy[:, None] + sy[None, :]).ravel()
    all_x = (dx[:, None] + sx[None, :]).ravel()
    # Unique pairs through a single integer key; offsets are small so the shift is safe.
    key = np.unique((all_y.astype(np.int64) << 20) + (all_x.astype(np.int64) + (1 << 19)))
    return (key >> 20).astype(np.int32), ((key & ((1 << 20) - 1)) - (1 << 19)).astype(np.int32)


def _downsample(sub_y: np.ndarray, sub_x: np.ndarray, aa: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average hi-res on-pixels into low-res coverage; returns offsets and peak-normalised values."""
    if sub_y.size == 0:
        raise ValueError("empty stamp")
    key = (np.floor_divide(sub_y, aa).astype(np.int64) << 20) + (np.floor_divide(sub_x, aa) + (1 << 19))
    uniq, counts = np.unique(key, return_counts=True)
    dy = (uniq >> 20).astype(np.int32)
    dx = ((uniq & ((1 << 20) - 1)) - (1 << 19)).astype(np.int32)
    value = counts.astype(np.float32) / np.float32(aa * aa)
    return dy, dx, value / value.max()


def _origin(aa: int) -> float:
    # Centre of the middle hi-res sub-pixel of low-res pixel (0, 0), in hi-res units.
    return aa // 2 + 0.5


def dash_subpixels(theta: float, length: float, thickness: float, aa: int) -> tuple[np.ndarray, np.ndarray]:
    """Hi-res sub-pixels of a dash from pixel (0, 0) in direction ``theta`` (y = sin, x = cos)."""
    o = _origin(aa)
    y0 = x0 = o
    y1 = o + length * aa * math.sin(theta)
    x1 = o + length * aa * math.cos(theta)
    width = int(round(thickness * aa))
    if width <= 1:
        # One hi-res pixel per major-axis step, like a PIL width-1 line.
        steps = max(1, int(math.ceil(max(abs(y1 - y0), abs(x1 - x0)))))
        t = np.linspace(0.0, 1.0, steps + 1)
        sy = np.floor(y0 + t * (y1 - y0)).astype(np.int32)
        sx = np.floor(x0 + t * (x1 - x0)).astype(np.int32)
        key = np.unique((sy.astype(np.int64) << 20) + (sx + (1 << 19)))
        return (key >> 20).astype(np.int32), ((key & ((1 << 20) - 1)) - (1 << 19)).astype(np.int32)
    half = width / 2.0
    lo_y = int(math.floor(min(y0, y1) - half - 1))
    hi_y = int(math.ceil(max(y0, y1) + half + 1))
    lo_x = int(math.floor(min(x0, x1) - half - 1))
    hi_x = int(math.ceil(max(x0, x1) + half + 1))
    gy, gx = np.meshgrid(np.arange(lo_y, hi_y + 1), np.arange(lo_x, hi_x + 1), indexing="ij")
    cy, cx = gy + 0.5, gx + 0.5
    vy, vx = y1 - y0, x1 - x0
    norm2 = vy * vy + vx * vx
    t = ((cy - y0) * vy + (cx - x0) * vx) / norm2
    # Butt ends (PIL draws thick lines as a rectangle); perpendicular distance within half width.
    perp = np.abs((cy - y0) * vx - (cx - x0) * vy) / math.sqrt(norm2)
    on = (t >= 0.0) & (t <= 1.0) & (perp <= half + 1e-9)
    return gy[on].astype(np.int32), gx[on].astype(np.int32)


def disc_subpixels(radius: float, aa: int) -> tuple[np.ndarray, np.ndarray]:
    """Hi-res sub-pixels of a filled disc centred on pixel (0, 0)."""
    o = _origin(aa)
    r = radius * aa
    span = int(math.ceil(r)) + 2
    g = np.arange(int(o) - span, int(o) + span + 1)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    on = (gy + 0.5 - o) ** 2 + (gx + 0.5 - o) ** 2 <= r * r + 1e-9
    return gy[on].astype(np.int32), gx[on].astype(np.int32)


def make_stamp(sub_y: np.ndarray, sub_x: np.ndarray, aa: int, clearance: int, inner: int = 0) -> Stamp:
    dy, dx, value = _downsample(sub_y, sub_x, aa)
    ry, rx = _dilate_offsets(dy, dx, clearance)
    iy, ix = _dilate_offsets(dy, dx, inner)
    return Stamp(dy=dy, dx=dx, value=value, ring_dy=ry, ring_dx=rx, inner_dy=iy, inner_dx=ix)


@dataclass(frozen=True)
class MarginTables:
    """All stamps and candidate sets for one paddle margin."""

    margin: int
    seed_stamps: tuple[Stamp, ...]  # index d = orientation (d - 180) degrees
    seed_lit_dy: np.ndarray  # (360, k) padded lit offsets of the seed stamps
    seed_lit_dx: np.ndarray
    seed_ring_dy: np.ndarray
    seed_ring_dx: np.ndarray
    seed_inner_dy: np.ndarray
    seed_inner_dx: np.ndarray
    cand_dy: np.ndarray  # candidate new-head offsets from the pivot (radius L + margin)
    cand_dx: np.ndarray
    cand_theta: np.ndarray  # atan2 of each candidate offset, in (-pi, pi]
    cand_stamps: tuple[Stamp, ...]  # dash drawn back from the candidate towards the pivot
    # The same stamps as (n_candidates, k) arrays, padded by repeating the first offset (a
    # repeated offset changes neither an any() nor a min()), for one-shot validity checks.
    lit_dy: np.ndarray
    lit_dx: np.ndarray
    ring_dy: np.ndarray
    ring_dx: np.ndarray
    inner_dy: np.ndarray
    inner_dx: np.ndarray
    # The lit pixel at each end of a dash: a candidate's back end (towards the pivot) must lie
    # within the link distance of the previous dash's front end (candidate: its start pixel;
    # seed: its far end). Two lit pixels that close are sufficient for the link condition.
    back_dy: np.ndarray
    back_dx: np.ndarray
    front_dy: np.ndarray
    front_dx: np.ndarray
    seed_front_dy: np.ndarray
    seed_front_dx: np.ndarray


def candidate_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer offsets on a circle, sampled about once per pixel of arc (as get_coords_cmf)."""
    deg_per_pixel = 360.0 / (2 * radius * math.pi)
    angles = np.arange(0.0, 360.0, deg_per_pixel) * math.pi / 180.0
    oy = np.rint(radius * np.sin(angles)).astype(np.int32)
    ox = np.rint(radius * np.cos(angles)).astype(np.int32)
    key = np.unique((oy.astype(np.int64) << 20) + (ox + (1 << 19)))
    return (key >> 20).astype(np.int32), ((key & ((1 << 20) - 1)) - (1 << 19)).astype(np.int32)


def build_tables(length: int, thickness: float, margin: int, aa: int, clearance: int, inner: int) -> MarginTables:
    """Stamps for one margin; ``clearance`` and ``inner`` are the two ring radii (targets, distractors)."""
    seeds = tuple(
        make_stamp(*dash_subpixels(math.radians(d - 180), length, thickness, aa), aa, clearance, inner)
        for d in range(360)
    )
    cy, cx = candidate_offsets(length + margin)
    theta = np.arctan2(cy, cx)
    stamps = []
    for t in theta:
        flipped = t + math.pi if t < 0 else t - math.pi
        stamps.append(make_stamp(*dash_subpixels(float(flipped), length, thickness, aa), aa, clearance, inner))
    back, front, seed_front = [], [], []
    for t, st in zip(theta, stamps):
        flipped = t + math.pi if t < 0 else t - math.pi
        end = (length * math.sin(flipped), length * math.cos(flipped))
        back.append(_near(st, end))
        front.append(_near(st, (0.0, 0.0)))
    for d, st in enumerate(seeds):
        a = math.radians(d - 180)
        seed_front.append(_near(st, (length * math.sin(a), length * math.cos(a))))
    back_dy, back_dx = _pad([b[0] for b in back], [b[1] for b in back])
    front_dy, front_dx = _pad([f[0] for f in front], [f[1] for f in front])
    sf_dy, sf_dx = _pad([f[0] for f in seed_front], [f[1] for f in seed_front], front_dy.shape[1])
    front_dy, front_dx = _pad(list(front_dy), list(front_dx), sf_dy.shape[1])
    lit_dy, lit_dx = _pad([st.dy for st in stamps], [st.dx for st in stamps])
    ring_dy, ring_dx = _pad([st.ring_dy for st in stamps], [st.ring_dx for st in stamps])
    seed_lit = _pad([st.dy for st in seeds], [st.dx for st in seeds])
    seed_ring = _pad([st.ring_dy for st in seeds], [st.ring_dx for st in seeds])
    seed_inner = _pad([st.inner_dy for st in seeds], [st.inner_dx for st in seeds])
    inner_dy, inner_dx = _pad([st.inner_dy for st in stamps], [st.inner_dx for st in stamps])
    return MarginTables(
        margin=margin,
        seed_stamps=seeds,
        seed_lit_dy=seed_lit[0],
        seed_lit_dx=seed_lit[1],
        seed_ring_dy=seed_ring[0],
        seed_ring_dx=seed_ring[1],
        seed_inner_dy=seed_inner[0],
        seed_inner_dx=seed_inner[1],
        cand_dy=cy,
        cand_dx=cx,
        cand_theta=theta,
        cand_stamps=tuple(stamps),
        lit_dy=lit_dy,
        lit_dx=lit_dx,
        ring_dy=ring_dy,
        ring_dx=ring_dx,
        inner_dy=inner_dy,
        inner_dx=inner_dx,
        back_dy=back_dy,
        back_dx=back_dx,
        front_dy=front_dy,
        front_dx=front_dx,
        seed_front_dy=sf_dy,
        seed_front_dx=sf_dx,
    )


def _near(st: Stamp, point: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The lit pixel of ``st`` nearest to ``point`` (as 1-element arrays)."""
    d = np.hypot(st.dy - point[0], st.dx - point[1])
    k = int(np.argmin(d))
    return st.dy[k:k + 1], st.dx[k:k + 1]


def _pad(ys: list[np.ndarray], xs: list[np.ndarray], width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    width = max(width, max(len(y) for y in ys))
    out_y = np.empty((len(ys), width), dtype=np.int32)
    out_x = np.empty((len(xs), width), dtype=np.int32)
    for i, (y, x) in enumerate(zip(ys, xs)):
        out_y[i] = y[0]
        out_x[i] = x[0]
        out_y[i, : len(y)] = y
        out_x[i, : len(x)] = x
    return out_y, out_x
