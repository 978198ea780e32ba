"""Pathfinder / Path-X image sampler (a vectorised re-implementation of drewlinsley/pathfinder snakes2.py).

One image, as in the original (``snakes2.from_wrapper``):
1. label ~ coin, margin ~ uniform(paddle_margin_list);
2. two target snakes whose first dashes start ``seed_distance`` apart, grown alternately one
   dash at a time: the next head is drawn from the integer pixels on a circle of radius
   ``L + margin`` around a pivot placed in the gap after the previous dash, weighted by
   ``cos^2(min(|dtheta| * continuity, pi/2))`` and zero for dashes that would touch another
   snake (or their own older dashes); at a dead end the pair is discarded and redrawn;
3. ``num_distractor_snakes`` distractors of ``distractor_length`` dashes (skipped after
   ``max_distractor_contour_retrial`` failures, stopped when < 1% of the image is free);
4. a disc marker on the start of target snake ``o`` and one on the end of snake ``o`` (label 1)
   or of the other snake (label 0);
5. the float image (dashes times contrast, max with the discs) is min-max scaled to uint8, as
   the original's ``scipy.misc.imsave`` did.

Deliberate differences from the 2019 code, so that labels are exact on the rendered image:
- the occupancy test works on lit pixels with a Chebyshev clearance of ``config.clearance``
  (instead of the grey dilated masks and the ``< 1.8`` threshold), and it also covers the
  other target snake's newest dash, which the original's update order left out;
- markers reserve their discs: no other snake comes within the clearance of a marker;
- a dash must stay within ``config.link_distance`` of the previous dash of its snake.
- every candidate head is checked at once and one valid head is drawn, instead of the
  original's up to ``max_paddle_retrial + 1`` blind draws; positions are rounded to the nearest
  pixel rather than by ``ceil``/``floor`` (which made gaps depend on the direction).
With these, "connected when gaps up to ``link_distance`` are bridged" equals the label.

Speed: most target pairs hit a dead end (at 32 px, contour length 14, about 98% do; the
original pays for that with ~0.14 s per image). Pairs are therefore grown as a batch of
attempts at once, with the occupancy of all attempts in one (N, H, W) array, and the
survivors are queued per margin. Distractors are then grown for a batch of images at once
with the same vectorised step. Clearance is tested by looking up a candidate's few lit
pixels in rasters that hold other snakes' pixels already dilated by the clearance (the same
test as dilating the candidate, with far fewer look-ups). Rasters carry a border so that no
look-up needs a bounds check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lra.generators.contours import MarginTables, Stamp, build_tables, disc_subpixels, make_stamp
from lra.generators.pathfinder_config import PathfinderConfig


@dataclass
class Sample:
    """One generated image and what is known about it."""

    image: np.ndarray  # uint8 (H, W)
    label: int
    margin: int
    markers: tuple[tuple[int, int], tuple[int, int]]  # (origin, terminal) marker centres (y, x)


@dataclass
class SamplerStats:
    attempts: int = 0  # target-pair attempts grown
    pairs: int = 0  # of which survived
    distractors_wanted: int = 0
    distractors_placed: int = 0


@dataclass
class _Heads:
    """State of one growing snake in each of n attempts (indexed by attempt row)."""

    pivot_y: np.ndarray
    pivot_x: np.ndarray
    orient: np.ndarray  # radians
    front_y: np.ndarray  # (n, k) lit pixels at the front end of the newest dash
    front_x: np.ndarray
    prev_idx: np.ndarray  # stamp index and start pixel of the newest dash
    prev_y: np.ndarray
    prev_x: np.ndarray
    tail_y: np.ndarray
    tail_x: np.ndarray
    tip_y: np.ndarray
    tip_x: np.ndarray

    @classmethod
    def empty(cls, n: int, k: int) -> "_Heads":
        z = lambda: np.zeros(n, dtype=np.int64)  # noqa: E731
        return cls(z(), z(), np.zeros(n), np.zeros((n, k), np.int64), np.zeros((n, k), np.int64),
                   z(), z(), z(), z(), z(), z(), z())


@dataclass
class _Layers:
    """Rasters (n, Wp*Wp) that one snake reads and writes while it grows."""

    forbid: np.ndarray  # pixels of other snakes, dilated by the clearance
    old: np.ndarray  # this snake's dashes older than the previous one, dilated
    near: np.ndarray  # this snake's own pixels, dilated (read by the others later)
    lit: np.ndarray  # lit pixels (for the "free space" test of distractors)
    inner: bool = False  # write/keep the smaller distractor rings instead of the clearance rings


# A draw record: (is_seed, rows, stamp index, y, x, contrast), all arrays over ``rows``.
_Record = tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class _Pair:
    """A finished pair of target snakes (with the origin marker) waiting for its image."""

    near: np.ndarray  # (2, Wp*Wp) dilated pixels of each target snake
    lit: np.ndarray  # (Wp*Wp,) lit pixels
    draws: list[tuple[Stamp, int, int, float]]
    origin: int
    tails: tuple[tuple[int, int], tuple[int, int]]
    tips: tuple[tuple[int, int], tuple[int, int]]


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling to 0..255 with rounding (scipy's ``bytescale``)."""
    lo, hi = float(img.min()), float(img.max())
    if hi <= lo:
        return np.zeros(img.shape, dtype=np.uint8)
    return ((img - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def _move(y: np.ndarray, x: np.ndarray, theta: np.ndarray, dist: float) -> tuple[np.ndarray, np.ndarray]:
    # translate_coord (y uses sin, x uses cos), rounded to the nearest pixel.
    return np.rint(y + dist * np.sin(theta)).astype(np.int64), np.rint(x + dist * np.cos(theta)).astype(np.int64)


def _pad_rows(a: np.ndarray, width: int) -> np.ndarray:
    """Pad (n, k) offsets to (n, width) by repeating the first column."""
    if a.shape[1] == width:
        return a
    out = np.repeat(a[:, :1], width, axis=1)
    out[:, : a.shape[1]] = a
    return out


class PathfinderSampler:
    """Draws Pathfinder images for one config; stamp tables are built once per margin."""

    def __init__(self, config: PathfinderConfig, max_batch: int | None = None) -> None:
        self.cfg = config
        aa = config.antialias_scale
        self._marker = make_stamp(*disc_subpixels(config.marker_radius, aa), aa, config.clearance)
        self._tables = {m: build_tables(config.paddle_length, config.paddle_thickness, m, aa, config.clearance,
                                        min(config.distractor_clearance, config.clearance))
                        for m in sorted(set(config.paddle_margin_list))}
        reach = 0
        for t in self._tables.values():
            cand = int(max(np.abs(t.cand_dy).max(), np.abs(t.cand_dx).max()))
            ring = int(max(np.abs(a).max() for a in (t.ring_dy, t.ring_dx, t.seed_ring_dy, t.seed_ring_dx)))
            reach = max(reach, cand + ring + 2 * t.margin + 3)
        mring = int(max(np.abs(self._marker.ring_dy).max(), np.abs(self._marker.ring_dx).max()))
        # Border wide enough that no look-up (pivot drift + candidate + ring) leaves the array.
        self.border = max(reach, mring + 1)
        self.wp = config.window_size + 2 * self.border
        w = config.window_size
        self.max_batch = max_batch or int(min(1024, max(16, 2 ** 21 // (w * w))))
        self._pool: dict[int, list[_Pair]] = {}
        self._rate: dict[int, float] = {}
        self.stats = SamplerStats()
        interior = np.zeros((self.wp, self.wp), dtype=bool)
        lo, hi = self.border + config.padding, self.border + w - config.padding
        interior[lo:hi, lo:hi] = True
        self._interior = np.flatnonzero(interior.ravel())

    def tables(self, margin: int) -> MarginTables:
        return self._tables[margin]

    def reset(self) -> None:
        """Forget queued pairs and the survival-rate estimate (which sizes attempt batches), so
        that what follows depends only on the next rng (the writer calls this per chunk)."""
        self._pool.clear()
        self._rate.clear()

    # -- public -------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Sample:
        return self.sample_many(rng, 1)[0]

    def sample_many(self, rng: np.random.Generator, n: int) -> list[Sample]:
        """``n`` independent images (labels and margins drawn per image)."""
        c = self.cfg
        labels = rng.integers(0, 2, n)
        margins = np.asarray(c.paddle_margin_list)[rng.integers(0, len(c.paddle_margin_list), n)]
        out: list[Sample | None] = [None] * n
        for margin in np.unique(margins):
            idx = np.flatnonzero(margins == margin)
            t = self._tables[int(margin)]
            pairs = [self._next_pair(rng, t) for _ in idx]
            k = len(pairs)
            rows = np.arange(k)
            near = np.stack([p.near for p in pairs])  # (k, 2, Wp*Wp)
            lit = np.stack([p.lit for p in pairs])
            draws = [list(p.draws) for p in pairs]
            markers = []
            for r, (i, p) in enumerate(zip(idx, pairs)):
                terminal = p.origin if labels[i] == 1 else 1 - p.origin
                ty, tx = p.tips[terminal]
                # Both tips were checked to take a marker, so any label fits.
                self._stamp_into(near[:, terminal], lit, rows[r:r + 1], self._marker, np.array([ty]), np.array([tx]))
                draws[r].append((self._marker, ty, tx, 1.0))
                markers.append((p.tails[p.origin], (ty, tx)))
            self._distractors(rng, t, near[:, 0] | near[:, 1], lit, draws)
            for r, i in enumerate(idx):
                image = to_uint8(self._render(draws[r]))
                out[i] = Sample(image, int(labels[i]), int(margin), markers[r])
        return out  # type: ignore[return-value]

    # -- target pairs -------------------------------------------------------------------------
    def _next_pair(self, rng: np.random.Generator, t: MarginTables) -> _Pair:
        pool = self._pool.setdefault(t.margin, [])
        tries = 0
        while not pool:
            rate = self._rate.get(t.margin, 0.05)
            n = int(min(self.max_batch, max(16, math.ceil(3.0 / max(rate, 1e-4)))))
            found = self._grow_pairs(rng, t, n)
            self.stats.attempts += n
            self.stats.pairs += len(found)
            # Running estimate of the survival rate sizes the next batch.
            self._rate[t.margin] = 0.7 * rate + 0.3 * (len(found) / n)
            pool.extend(found)
            tries += n
            if not pool and tries > 400 * self.max_batch:
                c = self.cfg
                raise RuntimeError(
                    f"no target pair survived {tries} attempts (window {c.window_size}, contour_length "
                    f"{c.contour_length}, margin {t.margin}); the configuration is too crowded"
                )
        return pool.pop(0)

    def _grow_pairs(self, rng: np.random.Generator, t: MarginTables, n: int) -> list[_Pair]:
        c = self.cfg
        w = c.window_size
        area = self.wp * self.wp
        near = np.zeros((n, 2, area), dtype=bool)
        old = np.zeros((n, 2, area), dtype=bool)
        lit = np.zeros((n, area), dtype=bool)
        layers = [_Layers(near[:, 1], old[:, 0], near[:, 0], lit), _Layers(near[:, 0], old[:, 1], near[:, 1], lit)]
        k = t.front_dy.shape[1]
        heads = [_Heads.empty(n, k), _Heads.empty(n, k)]
        records: list[_Record] = []
        # Contrast centres: the original shuffles snake_contrast_list * 2 and keeps two.
        centres = np.asarray(list(c.snake_contrast_list) * 2, dtype=np.float64)
        mu = centres[np.argsort(rng.random((n, centres.size)), axis=1)[:, :2]]
        paddle = np.asarray(c.paddle_contrast_list, dtype=np.float64)

        # First snake: anywhere at least 2 * seed_distance from the border.
        band = min(2 * c.seed_distance, (w - 1) // 2)
        rows = np.arange(n)
        deg = rng.integers(-180, 180, n)
        ty, tx = rng.integers(band, w - band, n), rng.integers(band, w - band, n)
        rows = self._seed(t, layers[0], rows, deg, ty, tx, heads[0], mu[:, 0] * paddle[rng.integers(0, paddle.size, n)], records)
        # Second snake: its start exactly seed_distance away, at a uniform integer angle.
        deg = rng.integers(-180, 180, n)
        a = np.radians(rng.integers(0, 360, n))
        ty = np.rint(heads[0].tail_y + c.seed_distance * np.sin(a)).astype(np.int64)
        tx = np.rint(heads[0].tail_x + c.seed_distance * np.cos(a)).astype(np.int64)
        rows = self._seed(t, layers[1], rows, deg[rows], ty[rows], tx[rows], heads[1],
                          mu[:, 1] * paddle[rng.integers(0, paddle.size, n)], records)
        # Origin marker on one of the two starts, reserved before the snakes grow.
        origin = rng.integers(0, 2, n)
        oy = np.where(origin == 0, heads[0].tail_y, heads[1].tail_y)
        ox = np.where(origin == 0, heads[0].tail_x, heads[1].tail_x)
        for s in (0, 1):
            mine = rows[origin[rows] == s]
            clear = self._marker_clear(near[:, 1 - s], mine, oy[mine], ox[mine])
            self._stamp_into(near[:, s], lit, mine[clear], self._marker, oy[mine[clear]], ox[mine[clear]])
            rows = np.setdiff1d(rows, mine[~clear])
        for step in range(1, c.contour_length):
            pc = paddle[rng.integers(0, paddle.size, n)]
            for s in (0, 1):
                if rows.size == 0:
                    return []
                rows = self._extend(rng, t, layers[s], rows, step, heads[s], pc * mu[:, s], records)
        # Both ends must be able to take the terminal marker, so the label stays a fair coin.
        for s in (0, 1):
            rows = rows[self._marker_clear(near[:, 1 - s], rows, heads[s].tip_y[rows], heads[s].tip_x[rows])]
        pairs = []
        for r in rows:
            draws = self._collect(t, records, int(r))
            o = int(origin[r])
            draws.append((self._marker, int(heads[o].tail_y[r]), int(heads[o].tail_x[r]), 1.0))
            tails = tuple((int(h.tail_y[r]), int(h.tail_x[r])) for h in heads)
            tips = tuple((int(h.tip_y[r]), int(h.tip_x[r])) for h in heads)
            pairs.append(_Pair(near[r].copy(), lit[r].copy(), draws, o, tails, tips))  # type: ignore[arg-type]
        return pairs

    @staticmethod
    def _collect(t: MarginTables, records: list[_Record], r: int) -> list[tuple[Stamp, int, int, float]]:
        draws = []
        for is_seed, rec_rows, idx, ys, xs, contrast in records:
            j = int(np.searchsorted(rec_rows, r))
            if j < rec_rows.size and rec_rows[j] == r:
                stamp = t.seed_stamps[int(idx[j])] if is_seed else t.cand_stamps[int(idx[j])]
                draws.append((stamp, int(ys[j]), int(xs[j]), float(contrast[j])))
        return draws

    # -- vectorised pieces --------------------------------------------------------------------
    def _flat(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Index into a bordered Wp*Wp raster; y, x in image coordinates."""
        return (y + self.border) * self.wp + (x + self.border)

    def _stamp_into(self, near: np.ndarray, lit: np.ndarray, rows: np.ndarray, stamp: Stamp, y: np.ndarray, x: np.ndarray) -> None:
        r = rows[:, None]
        near[r, self._flat(stamp.ring_dy[None] + y[:, None], stamp.ring_dx[None] + x[:, None])] = True
        lit[r, self._flat(stamp.dy[None] + y[:, None], stamp.dx[None] + x[:, None])] = True

    def _marker_clear(self, forbid: np.ndarray, rows: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per row: is a marker disc at (y, x) clear of the (dilated) pixels in ``forbid``?"""
        flat = self._flat(self._marker.dy[None] + y[:, None], self._marker.dx[None] + x[:, None])
        return ~forbid[rows[:, None], flat].any(axis=1)

    def _seed(self, t, lay: _Layers, rows, deg, ty, tx, h: _Heads, contrast, records) -> np.ndarray:
        """First dash of a snake at tails (ty, tx) for each of ``rows``; returns the rows that fit.

        ``deg``, ``ty``, ``tx`` run over ``rows``; ``contrast`` and ``h`` over all attempt rows."""
        c = self.cfg
        size = c.window_size
        theta = np.radians(deg)
        hy, hx = _move(ty, tx, theta, c.paddle_length)
        py, px = _move(hy, hx, theta, -(c.paddle_length + t.margin))
        inb = lambda y, x: (y >= 0) & (y < size) & (x >= 0) & (x < size)  # noqa: E731
        ok = inb(hy, hx) & inb(py, px)
        i = deg + 180
        ly = t.seed_lit_dy[i] + ty[:, None]
        lx = t.seed_lit_dx[i] + tx[:, None]
        lo, hi = c.padding, size - c.padding
        ok &= ((ly >= lo) & (ly < hi) & (lx >= lo) & (lx < hi)).all(axis=1)
        flat = self._flat(np.where(ok[:, None], ly, 0), np.where(ok[:, None], lx, 0))
        ok &= ~lay.forbid[rows[:, None], flat].any(axis=1)
        sel = np.flatnonzero(ok)
        rows, i, ty, tx = rows[sel], i[sel], ty[sel], tx[sel]
        r = rows[:, None]
        sry, srx = (t.seed_inner_dy, t.seed_inner_dx) if lay.inner else (t.seed_ring_dy, t.seed_ring_dx)
        lay.near[r, self._flat(sry[i] + ty[:, None], srx[i] + tx[:, None])] = True
        lay.lit[r, flat[sel]] = True
        h.pivot_y[rows], h.pivot_x[rows], h.orient[rows] = py[sel], px[sel], theta[sel]
        h.front_y[rows] = _pad_rows(t.seed_front_dy[i] + ty[:, None], h.front_y.shape[1])
        h.front_x[rows] = _pad_rows(t.seed_front_dx[i] + tx[:, None], h.front_x.shape[1])
        h.prev_idx[rows], h.prev_y[rows], h.prev_x[rows] = i, ty, tx
        h.tail_y[rows], h.tail_x[rows] = ty, tx
        h.tip_y[rows], h.tip_x[rows] = hy[sel], hx[sel]
        records.append((True, rows, i, ty, tx, contrast[rows]))
        return rows

    def _extend(self, rng, t: MarginTables, lay: _Layers, rows, step: int, h: _Heads, contrast, records) -> np.ndarray:
        """Add dash ``step`` to a snake in each of ``rows``; returns the rows not at a dead end."""
        c = self.cfg
        size = c.window_size
        py, px = _move(h.pivot_y[rows], h.pivot_x[rows], h.orient[rows], c.paddle_length + 2 * t.margin)
        cy = py[:, None] + t.cand_dy[None, :]
        cx = px[:, None] + t.cand_dx[None, :]
        delta = np.abs(t.cand_theta[None, :] - h.orient[rows, None])
        delta = np.minimum(delta, 2 * np.pi - delta)
        weight = np.cos(np.minimum(delta * c.continuity, 0.5 * np.pi)) ** 2
        # Every lit pixel of the candidate dash inside the frame ...
        ly = cy[:, :, None] + t.lit_dy[None]
        lx = cx[:, :, None] + t.lit_dx[None]
        lo, hi = c.padding, size - c.padding
        valid = ((ly >= lo) & (ly < hi) & (lx >= lo) & (lx < hi)).all(axis=2)
        # ... and clear of other snakes and of this snake's older dashes.
        flat = self._flat(ly, lx)
        r = rows[:, None, None]
        valid &= ~(lay.forbid[r, flat] | lay.old[r, flat]).any(axis=2)
        # Link: back end of the candidate within link_distance of the previous front end.
        by = cy[:, :, None, None] + t.back_dy[None, :, :, None]
        bx = cx[:, :, None, None] + t.back_dx[None, :, :, None]
        fy = h.front_y[rows][:, None, None, :]
        fx = h.front_x[rows][:, None, None, :]
        valid &= np.maximum(np.abs(by - fy), np.abs(bx - fx)).min(axis=(2, 3)) <= c.link_distance
        weight = np.where(valid, weight, 0.0)
        total = weight.sum(axis=1)
        good = np.flatnonzero(total >= 1e-4)
        if good.size == 0:
            return rows[:0]
        wg = weight[good] / total[good, None]
        j = (np.cumsum(wg, axis=1) <= rng.random(good.size)[:, None]).sum(axis=1)
        last = wg.shape[1] - 1 - np.argmax(wg[:, ::-1] > 0, axis=1)  # guards against round-off
        j = np.minimum(j, last)
        kept = rows[good]
        hy, hx = cy[good, j], cx[good, j]
        rk = kept[:, None]
        # The previous dash now becomes "older" for this snake's next dash.
        sry, srx = (t.seed_inner_dy, t.seed_inner_dx) if lay.inner else (t.seed_ring_dy, t.seed_ring_dx)
        cry, crx = (t.inner_dy, t.inner_dx) if lay.inner else (t.ring_dy, t.ring_dx)
        pi = h.prev_idx[kept]
        prev_ring = (sry[pi], srx[pi]) if step == 1 else (cry[pi], crx[pi])
        lay.old[rk, self._flat(prev_ring[0] + h.prev_y[kept, None], prev_ring[1] + h.prev_x[kept, None])] = True
        lay.near[rk, self._flat(cry[j] + hy[:, None], crx[j] + hx[:, None])] = True
        lay.lit[rk, flat[good, j]] = True
        h.pivot_y[kept], h.pivot_x[kept] = py[good], px[good]
        h.orient[kept] = t.cand_theta[j]
        h.front_y[kept] = _pad_rows(t.front_dy[j] + hy[:, None], h.front_y.shape[1])
        h.front_x[kept] = _pad_rows(t.front_dx[j] + hx[:, None], h.front_x.shape[1])
        h.prev_idx[kept], h.prev_y[kept], h.prev_x[kept] = j, hy, hx
        h.tip_y[kept], h.tip_x[kept] = hy, hx
        records.append((False, kept, j, hy, hx, contrast[kept]))
        return kept

    # -- distractors --------------------------------------------------------------------------
    def _distractors(self, rng: np.random.Generator, t: MarginTables, taken: np.ndarray, lit: np.ndarray,
                     draws: list[list]) -> None:
        """Add distractor snakes to every image; ``taken`` holds the target snakes and markers
        dilated by the clearance. Counts wanted and placed distractors in ``self.stats``."""
        c = self.cfg
        n = taken.shape[0]
        others = np.zeros_like(taken)  # earlier distractors, dilated by the smaller clearance
        placed = np.zeros(n, dtype=np.int64)
        stopped = np.zeros(n, dtype=bool)
        contrasts = np.asarray(c.snake_contrast_list, dtype=np.float64)
        for _ in range(c.num_distractor_snakes):
            need = ~stopped
            for _ in range(c.max_distractor_contour_retrial + 1):
                rows = np.flatnonzero(need)
                if rows.size == 0:
                    break
                free = 1.0 - lit[rows][:, self._interior].mean(axis=1)
                full = free < c.stop_with_availability
                stopped[rows[full]] = True
                need[rows[full]] = False
                rows = rows[~full]
                if rows.size == 0:
                    break
                # A fresh snake: its own pixels go to scratch rasters until it is complete.
                mine = np.zeros_like(taken)
                mine_lit = np.zeros_like(lit)
                lay = _Layers(taken | others, np.zeros_like(taken), mine, mine_lit, inner=True)
                records: list[_Record] = []
                h = _Heads.empty(n, t.front_dy.shape[1])
                alive = self._seed_distractors(rng, t, lay, rows, h, contrasts, records)
                for step in range(1, c.distractor_length):
                    if alive.size == 0:
                        break
                    alive = self._extend(rng, t, lay, alive, step, h, contrasts[rng.integers(0, contrasts.size, n)], records)
                others[alive] |= mine[alive]
                lit[alive] |= mine_lit[alive]
                for r in alive:
                    draws[r].extend(self._collect(t, records, int(r)))
                placed[alive] += 1
                need[alive] = False
        self.stats.distractors_wanted += n * c.num_distractor_snakes
        self.stats.distractors_placed += int(placed.sum())

    def _seed_distractors(self, rng, t, lay: _Layers, rows, h: _Heads, contrasts, records) -> np.ndarray:
        """Start a distractor in each of ``rows``: a uniform draw among the pixels where its first
        dash fits (rejection sampling over interior pixels). Returns the rows that started."""
        c = self.cfg
        n = lay.forbid.shape[0]
        done = []
        pending = rows
        b, wp = self.border, self.wp
        lo, hi = c.padding, c.window_size - c.padding
        for _ in range(c.max_paddle_retrial + 1):
            if pending.size == 0:
                break
            m = pending.size
            deg = rng.integers(-180, 180, m)
            picks = self._interior[rng.integers(0, self._interior.size, (m, c.seed_attempts))]
            ty = picks // wp - b
            tx = picks % wp - b
            i = (deg + 180)[:, None]
            ly = t.seed_lit_dy[i] + ty[:, :, None]
            lx = t.seed_lit_dx[i] + tx[:, :, None]
            fits = ((ly >= lo) & (ly < hi) & (lx >= lo) & (lx < hi)).all(axis=2)
            fits &= ~lay.forbid[pending[:, None, None], self._flat(ly, lx)].any(axis=2)
            has = fits.any(axis=1)
            first = np.argmax(fits, axis=1)
            sel = np.flatnonzero(has)
            ar = np.arange(m)
            got = self._seed(t, lay, pending[sel], deg[sel], ty[ar, first][sel], tx[ar, first][sel], h,
                             contrasts[rng.integers(0, contrasts.size, n)], records)
            done.append(got)
            # Rows with no start pixel give up, as in the original; misplaced heads try again.
            pending = np.setdiff1d(pending[sel], got)
        return np.sort(np.concatenate(done)) if done else rows[:0]

    def _render(self, draws: list[tuple[Stamp, int, int, float]]) -> np.ndarray:
        size = self.cfg.window_size
        img = np.zeros((size, size), dtype=np.float32)
        for stamp, y, x, contrast in draws:
            ly, lx = stamp.dy + y, stamp.dx + x
            inside = (ly >= 0) & (ly < size) & (lx >= 0) & (lx < size)
            ly, lx = ly[inside], lx[inside]
            img[ly, lx] = np.maximum(img[ly, lx], stamp.value[inside] * np.float32(contrast))
        return img
