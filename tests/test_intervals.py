"""results/intervals.py against values worked out by hand (and Student's t against printed tables)."""
from __future__ import annotations

import math

import pytest

from results.intervals import paired_difference, t_interval, t_quantile, wilson_interval

Z95 = 1.959964  # the normal 97.5% quantile


def test_wilson_half_and_zero_successes_by_hand():
    # k = 50 of n = 100: p = 0.5, so the centre is 0.5 and the half width is
    # z * sqrt(p(1-p)/n + z^2/(4 n^2)) / (1 + z^2/n) = 1.959964 * 0.0509513 / 1.0384146 = 0.0961684
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.5 - 0.0961684, abs=1e-6) and hi == pytest.approx(0.5 + 0.0961684, abs=1e-6)
    # k = 0: the lower end is 0 and the upper end is z^2 / (n + z^2)
    lo, hi = wilson_interval(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(Z95**2 / (10 + Z95**2), abs=1e-6)


def test_wilson_for_a_demo_sized_test_set():
    # 900 of 2,000 rows (45%): p(1-p)/n = 1.2375e-4, z^2/(4n^2) = 2.4010e-7, 1 + z^2/n = 1.00192073
    # centre = (0.45 + 9.6036e-4) / 1.00192073 = 0.4500947; half = 1.959964 * 0.0111349 / 1.00192073 = 0.0217820
    lo, hi = wilson_interval(900, 2000)
    assert lo == pytest.approx(0.4500947 - 0.0217820, abs=2e-6)
    assert hi == pytest.approx(0.4500947 + 0.0217820, abs=2e-6)
    assert hi - lo < 0.045  # the standard-error target (<= 1.1 points) at 2,000 rows


@pytest.mark.parametrize("df,printed", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)])
def test_t_quantile_matches_printed_tables(df, printed):
    assert t_quantile(0.95, df) == pytest.approx(printed, abs=1e-3)


def test_t_interval_by_hand():
    # values 40, 42, 47: mean 43, deviations -3, -1, 4 -> sum of squares 26, std sqrt(13) = 3.605551
    # half = 4.302653 * 3.605551 / sqrt(3) = 8.956691
    ti = t_interval([40.0, 42.0, 47.0])
    assert ti.n == 3 and ti.mean == pytest.approx(43.0) and ti.std == pytest.approx(math.sqrt(13))
    assert ti.low == pytest.approx(43 - 8.956691, abs=1e-5) and ti.high == pytest.approx(43 + 8.956691, abs=1e-5)
    one = t_interval([41.0])
    assert one.mean == 41.0 and math.isnan(one.low) and not one.excludes_zero


def test_paired_difference_uses_shared_seeds_only():
    reference = {0: 40.0, 1: 42.0, 2: 44.0}
    # seed 3 has no partner and is ignored; differences -2, -1, -4: mean -7/3, std sqrt(7/3) = 1.527525,
    # half = 4.302653 * 1.527525 / sqrt(3) = 3.794588 -> [-6.128, 1.461] contains 0: within seed noise
    d = paired_difference({0: 38.0, 1: 41.0, 2: 40.0, 3: 90.0}, reference)
    assert d.n == 3 and d.mean == pytest.approx(-7 / 3)
    assert d.low == pytest.approx(-7 / 3 - 3.794588, abs=1e-5) and d.high == pytest.approx(-7 / 3 + 3.794588, abs=1e-5)
    assert not d.excludes_zero
    # consistent differences -2, -2.5, -1.5: std 0.5, half = 4.302653 * 0.5 / sqrt(3) = 1.242068 -> excludes 0
    d = paired_difference({0: 38.0, 1: 39.5, 2: 42.5}, reference)
    assert d.low == pytest.approx(-2 - 1.242068, abs=1e-5) and d.high == pytest.approx(-2 + 1.242068, abs=1e-5)
    assert d.excludes_zero
    assert paired_difference({7: 1.0}, reference) is None


@pytest.mark.parametrize("call,match", [
    (lambda: wilson_interval(3, 0), "n >= 1"),
    (lambda: wilson_interval(11, 10), r"successes must lie in \[0, n=10\]"),
    (lambda: wilson_interval(1, 10, confidence=95), "confidence"),
    (lambda: t_interval([]), "at least one value"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
