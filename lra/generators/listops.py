"""ListOps sampler (the rule of google-research/long-range-arena lra_benchmarks/data/listops.py), vectorised.

Rule: each node draws ``r = U(0,1)`` (``r = 1`` at ``max_depth``);
``r > value_p`` (0.25) gives a leaf digit 0-9, otherwise an operator from MIN, MAX, MED, SM
with ``randint(2, max_args)`` children (inclusive), so 75% of nodes are leaves.
A tree is kept when ``min_length < length < max_length`` (length counts operator tokens, ``]``
and digits) and is new. MED is ``int(np.median)``, SM is the sum mod 10. The source string is the
left-nested binary tuple form, e.g. ``( ( ( ( [MAX 1 ) 7 ) 2 ) ] )``.

Instead of one recursive tree at a time, many trees are drawn together one depth level at a
time (the nodes of a level are independent draws, so the distribution is the same); trees that
can no longer be short enough are dropped early. Values and strings are then built from arrays.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.datasets import SPLITS
from lra.generators.parallel import run_chunks

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
_CLOSE_BRACKET = 14  # token codes: 0-9 digits, 10-13 operators, 14 "]", 15 "(", 16 ")"
_OPEN, _CLOSE = 15, 16
_TOKENS = [str(d) for d in range(10)] + list(OPERATORS) + ["]", "(", ")"]


@dataclass(frozen=True)
class ListOpsConfig:
    """Official defaults; shrink ``min_length``/``max_length``/``max_depth`` for demos."""

    max_depth: int = 10
    max_args: int = 10
    min_length: int = 500  # exclusive
    max_length: int = 2000  # exclusive
    value_p: float = 0.25

    def __post_init__(self) -> None:
        if self.max_depth < 1 or self.max_args < 2:
            raise ValueError("max_depth must be >= 1 and max_args >= 2")
        if not 0 <= self.min_length < self.max_length - 1:
            raise ValueError(f"need 0 <= min_length < max_length - 1, got {self.min_length}, {self.max_length}")


@dataclass
class _Level:
    tree: np.ndarray  # which draw each node belongs to
    parent: np.ndarray  # index into the previous level
    is_op: np.ndarray
    op: np.ndarray
    digit: np.ndarray
    nchild: np.ndarray


def sample_rows(rng: np.random.Generator, n_draws: int, cfg: ListOpsConfig = ListOpsConfig()) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Draw ``n_draws`` trees; return the kept ones as (source strings, labels, lengths)."""
    levels: list[_Level] = []
    tokens = np.zeros(n_draws, dtype=np.int64)  # op + "]" + digits so far
    alive = np.ones(n_draws, dtype=bool)
    tree = np.arange(n_draws)
    parent = np.full(n_draws, -1)
    depth = 1
    while tree.size:
        m = tree.size
        r = rng.random(m) if depth < cfg.max_depth else np.ones(m)
        is_op = r <= cfg.value_p
        nchild = np.where(is_op, rng.integers(2, cfg.max_args + 1, m), 0)
        level = _Level(tree, parent, is_op, rng.integers(0, len(OPERATORS), m).astype(np.int8),
                       rng.integers(0, 10, m).astype(np.int8), nchild)
        levels.append(level)
        tokens += np.bincount(tree, weights=np.where(is_op, 2, 1), minlength=n_draws).astype(np.int64)
        # Every pending child adds at least one token: drop trees that are already too long.
        pending = np.bincount(tree, weights=nchild, minlength=n_draws).astype(np.int64)
        alive &= tokens + pending < cfg.max_length
        grow = np.flatnonzero(is_op & alive[tree])
        parent = np.repeat(grow, nchild[grow])
        tree = tree[parent]
        depth += 1
    keep = alive & (tokens > cfg.min_length) & (tokens < cfg.max_length)
    if not keep.any():
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    levels = _restrict(levels, keep)
    values, width = _evaluate(levels)
    sources = _render(levels, width)
    return sources, values.astype(np.int64), tokens[keep]


def _restrict(levels: list[_Level], keep: np.ndarray) -> list[_Level]:
    """Only the nodes of kept trees, with parent indices renumbered (order is preserved)."""
    out = []
    new_index = None
    for lv in levels:
        mask = keep[lv.tree]
        if not mask.any():
            break
        parent = lv.parent[mask]
        if new_index is not None:
            parent = new_index[parent]
        out.append(_Level(lv.tree[mask], parent, lv.is_op[mask], lv.op[mask], lv.digit[mask], lv.nchild[mask]))
        new_index = np.cumsum(mask) - 1
    return out


def _evaluate(levels: list[_Level]) -> tuple[np.ndarray, np.ndarray]:
    """Value (0-9) and full string width in tokens (parentheses included) of every root."""
    child_val = child_width = None
    for lv in reversed(levels):
        val = lv.digit.astype(np.int64)
        width = np.ones(lv.tree.size, dtype=np.int64)
        ops = np.flatnonzero(lv.is_op)
        if ops.size:
            n = lv.nchild[ops]
            starts = np.concatenate(([0], np.cumsum(n)[:-1]))
            # Children of consecutive operators are consecutive on the next level.
            v = child_val
            mn = np.minimum.reduceat(v, starts)
            mx = np.maximum.reduceat(v, starts)
            sm = np.add.reduceat(v, starts) % 10
            group = np.repeat(np.arange(ops.size), n)
            sv = v[np.lexsort((v, group))]  # values sorted within each operator's children
            lo = sv[starts + (n - 1) // 2]
            hi = sv[starts + n // 2]
            med = (lo + hi) // 2  # int(np.median): mean of the middle two, truncated
            val[ops] = np.choose(lv.op[ops], [mn, mx, med, sm])
            # "(" * (n+1), op, each child followed by ")", then "]" and ")".
            width[ops] = 2 * n + 4 + np.add.reduceat(child_width, starts)
        child_val, child_width = val, width
    return child_val, child_width


def _render(levels: list[_Level], root_width: np.ndarray) -> list[str]:
    """Source strings of all roots, built as one token-code buffer."""
    offsets = np.concatenate(([0], np.cumsum(root_width)))
    buf = np.full(int(offsets[-1]), _CLOSE, dtype=np.int8)
    start = offsets[:-1].copy()  # absolute start position of each node of the current level
    widths = _widths(levels)
    for d, lv in enumerate(levels):
        leaves = ~lv.is_op
        buf[start[leaves]] = lv.digit[leaves]
        ops = np.flatnonzero(lv.is_op)
        if ops.size == 0:
            break
        n = lv.nchild[ops]
        s = start[ops]
        # n + 1 opening parentheses at s .. s + n.
        k = n + 1
        first = np.repeat(np.cumsum(k) - k, k)
        buf[np.repeat(s, k) + np.arange(int(k.sum())) - first] = _OPEN
        buf[s + n + 1] = 10 + lv.op[ops]
        buf[s + widths[d][ops] - 2] = _CLOSE_BRACKET
        # Child k starts after the operator, behind the earlier children and their ")".
        cw = widths[d + 1] + 1
        excl = np.cumsum(cw) - cw
        group_first = excl[np.cumsum(n) - n]
        start = np.repeat(s + n + 2, n) + excl - np.repeat(group_first, n)
    return _to_strings(buf, offsets)


def _widths(levels: list[_Level]) -> list[np.ndarray]:
    out: list[np.ndarray] = [None] * len(levels)  # type: ignore[list-item]
    child = None
    for d in range(len(levels) - 1, -1, -1):
        lv = levels[d]
        w = np.ones(lv.tree.size, dtype=np.int64)
        ops = np.flatnonzero(lv.is_op)
        if ops.size:
            n = lv.nchild[ops]
            w[ops] = 2 * n + 4 + np.add.reduceat(child, np.cumsum(n) - n)
        out[d] = w
        child = w
    return out


# Bytes of every token followed by a space, as a (17, 5) table with lengths.
_TOK_BYTES = [t.encode() + b" " for t in _TOKENS]
_TOK_LEN = np.array([len(b) for b in _TOK_BYTES])
_TOK_TABLE = np.zeros((len(_TOKENS), int(_TOK_LEN.max())), dtype=np.uint8)
for _i, _b in enumerate(_TOK_BYTES):
    _TOK_TABLE[_i, : len(_b)] = np.frombuffer(_b, dtype=np.uint8)


def _to_strings(buf: np.ndarray, offsets: np.ndarray) -> list[str]:
    lens = _TOK_LEN[buf]
    char_end = np.cumsum(lens)
    char_start = char_end - lens
    chars = np.empty(int(char_end[-1]), dtype=np.uint8)
    for j in range(_TOK_TABLE.shape[1]):
        has = lens > j
        chars[char_start[has] + j] = _TOK_TABLE[buf[has], j]
    text = chars.tobytes()
    bounds = np.concatenate(([0], char_end))[offsets]
    # Drop the trailing space of each row.
    return [text[a:b - 1].decode("ascii") for a, b in zip(bounds[:-1], bounds[1:])]


# -- dataset writer ---------------------------------------------------------------------------

def _chunk(args: tuple[int, int, int, ListOpsConfig]) -> tuple[list[str], list[int], int]:
    seed, index, draws, cfg = args
    rng = np.random.default_rng([seed, index])
    src, labels, _ = sample_rows(rng, draws, cfg)
    return src, labels.tolist(), draws


def split_sizes(size: int, fractions: tuple[float, float, float] = (0.96, 0.02, 0.02)) -> tuple[int, int, int]:
    """Rows per split; 100k gives the official 96k / 2k / 2k."""
    val = int(round(size * fractions[1]))
    test = int(round(size * fractions[2]))
    return size - val - test, val, test


def _acceptance_guess(cfg: ListOpsConfig) -> float:
    # About 8% with the official rule; unknown for custom ones, so measure a small sample.
    rng = np.random.default_rng(12345)
    src, _, _ = sample_rows(rng, 4000, cfg)
    return max(len(src) / 4000, 1e-3)


def generate_listops(
    root: str | os.PathLike,
    size: int = 100_000,
    *,
    config: ListOpsConfig = ListOpsConfig(),
    seed: int = 0,
    workers: int | None = None,
    fractions: tuple[float, float, float] = (0.96, 0.02, 0.02),
    progress: bool = True,
    overwrite: bool = False,
    folder: str = "listops-1000",
    draws_per_chunk: int | None = None,
) -> dict:
    """Write ``<root>/listops-1000/basic_{train,val,test}.tsv`` (header ``Source\\tTarget``).

    Rows are drawn in seeded chunks of ``draws_per_chunk`` trees (default: enough for a few
    hundred kept rows), so the files depend on ``seed`` but not on ``workers``.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    out = Path(root) / folder
    paths = {split: out / f"basic_{split}.tsv" for split in SPLITS}
    if any(p.exists() for p in paths.values()) and not overwrite:
        raise FileExistsError(f"{out} already holds ListOps files; pass overwrite=True (--force) to regenerate")
    out.mkdir(parents=True, exist_ok=True)
    sizes = dict(zip(SPLITS, split_sizes(size, fractions)))
    rate = _acceptance_guess(config)
    draws = draws_per_chunk or int(min(20_000, max(500, 400 / rate)))
    handles = {split: open(p.with_suffix(".tmp"), "w", encoding="ascii", newline="") for split, p in paths.items()}
    seen: set[bytes] = set()
    written = {split: 0 for split in SPLITS}
    duplicates = 0
    labels = np.zeros(10, dtype=np.int64)
    order = [s for s in SPLITS for _ in range(sizes[s])]
    t0 = time.perf_counter()
    next_chunk = 0
    try:
        for f in handles.values():
            f.write("Source\tTarget\n")
        total = 0
        while total < size:
            # A wave of chunks expected to fill what is left, plus 10%.
            need = size - total
            n_chunks = max(1, int(np.ceil(need * 1.1 / (draws * rate))))
            tasks = [(seed, next_chunk + i, draws, config) for i in range(n_chunks)]
            next_chunk += n_chunks
            for src, labs, _ in run_chunks(_chunk, tasks, workers=workers, total=None, count=lambda r: len(r[0]),
                                           desc="listops", unit="row", progress=progress):
                for s, y in zip(src, labs):
                    if total >= size:
                        break
                    key = hashlib.blake2b(s.encode("ascii"), digest_size=16).digest()
                    if key in seen:
                        duplicates += 1
                        continue
                    seen.add(key)
                    split = order[total]
                    handles[split].write(f"{s}\t{y}\n")
                    written[split] += 1
                    labels[y] += 1
                    total += 1
    finally:
        for f in handles.values():
            f.close()
    for split, p in paths.items():
        os.replace(p.with_suffix(".tmp"), p)
    return {
        "dir": str(out),
        "rows": written,
        "duplicates_dropped": duplicates,
        "label_fraction": (labels / max(1, labels.sum())).round(4).tolist(),
        "seconds": time.perf_counter() - t0,
        "config": asdict(config),
    }
