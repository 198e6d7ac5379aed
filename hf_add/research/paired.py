"""Paired comparisons over seeds: row − baseline on the same seed (same data order, same initial head),
with a Student-t 95 % interval of the mean difference and the count of seeds that favour the row.

The t quantile is computed here (no SciPy dependency) by integrating the density and bisecting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def t_quantile(probability: float, degrees_of_freedom: int) -> float:
    """The ``probability`` quantile (> 0.5) of Student's t distribution, to about 1e-6."""
    if not 0.5 < probability < 1 or degrees_of_freedom < 1:
        raise ValueError(
            f"need 0.5 < probability < 1 and degrees_of_freedom ≥ 1, got {probability}, {degrees_of_freedom}"
        )
    nu = degrees_of_freedom
    log_norm = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)

    def cdf(x: float) -> float:  # 0.5 + ∫_0^x density, Simpson's rule
        grid = np.linspace(0.0, x, 4001)
        density = np.exp(log_norm - (nu + 1) / 2 * np.log1p(grid**2 / nu))
        weights = np.ones_like(grid)
        weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
        return 0.5 + float(density @ weights) * (grid[1] - grid[0]) / 3

    low, high = 0.0, 1.0
    while cdf(high) < probability:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < probability else (low, middle)
    return (low + high) / 2


def sign_test_p(favouring: int, against: int) -> float:
    """Two-sided exact sign test: the probability, with each non-tied seed a fair coin, of a split at least
    as uneven as ``favouring`` : ``against`` (ties are dropped before calling)."""
    n = favouring + against
    if n == 0:
        return 1.0
    extreme = min(favouring, against)
    tail = sum(math.comb(n, k) for k in range(extreme + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedDifference:
    """Row − baseline over n paired seeds: mean, 95 % interval (None for one seed), seeds with row > baseline,
    the standard deviation of the differences and the two-sided exact sign test."""

    n: int
    mean: float
    low: float | None
    high: float | None
    favouring: int
    against: int = 0
    std: float | None = None

    @classmethod
    def of(cls, row: np.ndarray, baseline: np.ndarray) -> PairedDifference:
        differences = np.asarray(row, dtype=float) - np.asarray(baseline, dtype=float)
        n, mean = len(differences), float(differences.mean())
        favouring, against = int((differences > 0).sum()), int((differences < 0).sum())
        if n < 2:
            return cls(n, mean, None, None, favouring, against)
        std = float(differences.std(ddof=1))
        half_width = t_quantile(0.975, n - 1) * std / math.sqrt(n)
        return cls(n, mean, mean - half_width, mean + half_width, favouring, against, std)

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2

    @property
    def sign_test_p(self) -> float:
        return sign_test_p(self.favouring, self.against)

    def seeds_for_half_width(self, half_width: float) -> int | None:
        """Seeds needed for a 95 % interval of ``half_width`` at this standard deviation (normal quantile)."""
        return None if self.std is None else math.ceil((1.959964 * self.std / half_width) ** 2)
