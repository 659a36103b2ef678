"""The sample-size approximation: the binary special case, the power it promises and its table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from palette_core.simulate import sample_size as ss

PMF = np.array([0.25, 0.05, 0.1, 0.2, 0.4])


def test_a_zero_shift_leaves_the_distribution_and_a_positive_one_moves_it_up():
    np.testing.assert_allclose(ss.shifted_pmf(PMF, 0.0), PMF, atol=1e-12)
    up = ss.shifted_pmf(PMF, math.log(1.5))
    assert up.sum() == pytest.approx(1.0)
    assert up[0] < PMF[0] and up[-1] > PMF[-1]
    # the cumulative odds fall by the odds ratio in every category
    c0, c1 = np.cumsum(PMF)[:-1], np.cumsum(up)[:-1]
    np.testing.assert_allclose((c0 / (1 - c0)) / (c1 / (1 - c1)), 1.5, rtol=1e-9)


def test_two_categories_give_the_binary_log_odds_ratio_variance():
    p = np.array([0.3, 0.7])
    f = ss.variance_factor(p, 0.0)
    # 3 / (1 - p^3 - q^3) = 1 / (p q)
    assert f == pytest.approx(1 / (0.3 * 0.7))


def test_the_patients_needed_give_the_power_asked_for():
    n = ss.patients_per_arm(1.5, PMF, 0.95, 0.8)
    assert ss.analytic_power(n, n, 1.5, PMF, 0.95) == pytest.approx(0.8, abs=1e-9)
    assert ss.patients_per_arm(1.5, PMF, 0.99, 0.8) > n  # a stricter rule needs more
    assert ss.analytic_power(n / 2, n / 2, 1.5, PMF, 0.95) < 0.8
    assert ss.analytic_power(0, 10, 1.5, PMF, 0.95) == 0.0
    # no effect: power is the false positive rate 1 - c of the one-sided rule
    assert ss.analytic_power(100, 100, 1.0 + 1e-12, PMF, 0.95) == pytest.approx(0.05, abs=1e-6)
    z = norm.ppf(0.95) + norm.ppf(0.8)
    assert n == pytest.approx(
        ss.variance_factor(PMF, math.log(1.5)) * 2 * z**2 / math.log(1.5) ** 2
    )
