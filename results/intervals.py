"""95% intervals for accuracies: Wilson's binomial interval for one run, Student's t over seeds, and the
paired comparison of two configurations over the seeds both completed.

No scipy: the t quantile is found by bisection on the closed-form CDF of Student's t with an integer number
of degrees of freedom (Abramowitz and Stegun 26.7.3-4), which is all a t interval over seeds needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (fractions) for `successes` correct out of `n` rows."""
    _check_confidence(confidence)
    if n <= 0:
        raise ValueError(f"an interval needs n >= 1 rows, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df >= 1 (closed form)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, 1.0
        if df > 1:
            total = term = 1.0
            for k in range(3, df - 1, 2):  # terms 1, (2/3)c^2, (2*4)/(3*5)c^4, ... up to c^(df-3)
                term *= (k - 1) / k * c2
                total += term
            total *= math.sin(theta) * math.cos(theta)
        return 2 / math.pi * (theta + total)
    total = term = 1.0
    for k in range(2, df - 1, 2):  # terms 1, (1/2)c^2, (1*3)/(2*4)c^4, ... up to c^(df-2)
        term *= (k - 1) / k * c2
        total += term
    return math.sin(theta) * total


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| <= t) = confidence (e.g. 4.303 for 95% and df 2)."""
    _check_confidence(confidence)
    lo, hi = 0.0, 1.0
    while t_two_sided_mass(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_mass(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class MeanInterval:
    """Mean of n values with the sample std (ddof=1) and the t interval of the mean (NaN below n = 2)."""

    n: int
    mean: float
    std: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)


def t_interval(values: list[float] | np.ndarray, confidence: float = CONFIDENCE) -> MeanInterval:
    """Student's t interval for the mean of `values` (one per seed)."""
    v = np.asarray(values, dtype=float)
    n = int(v.size)
    if n == 0:
        raise ValueError("a t interval needs at least one value")
    mean = float(v.mean())
    if n < 2:
        return MeanInterval(n, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return MeanInterval(n, mean, std, mean - half, mean + half)


def paired_difference(
    values: dict[int, float], reference: dict[int, float], confidence: float = CONFIDENCE
) -> MeanInterval | None:
    """t interval of `values` minus `reference` over the seeds both have (seed -> value); None if none shared.

    Pairing by seed removes what the two configurations share per seed (data order, initial draws), so a
    difference can be beyond seed noise even when the two unpaired intervals overlap."""
    seeds = sorted(set(values) & set(reference))
    if not seeds:
        return None
    return t_interval([values[s] - reference[s] for s in seeds], confidence)
