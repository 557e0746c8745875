"""Statistics over repeated seeds: means with t confidence intervals and paired comparisons.

Each seed is one independent run, so an arm's runs are a small sample (typically 3-10): the
interval is Student's t, not a normal approximation, and a comparison between two arms pairs
the runs that share a seed (same splits, same student initialisation), which removes the
seed-to-seed variance both arms share.
"""

from __future__ import annotations

import math

from pydantic import BaseModel
from scipy import stats


class Estimate(BaseModel):
    """A mean over runs with its two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    """Runs behind the estimate; with one run the interval is the point itself."""

    def covers(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval."""
        return self.low <= value <= self.high


class PairedDifference(BaseModel):
    """``arm - baseline``, seed by seed: the mean difference, its interval and a p-value."""

    difference: Estimate
    p_value: float | None
    """Two-sided paired t-test; None with fewer than two pairs."""

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` when the interval excludes 0, else ``no difference shown``."""
        d = self.difference
        if d.n < 2 or d.covers(0.0):
            return "no difference shown"
        return "better" if d.mean > 0 else "worse"


def mean_ci(values: list[float], confidence: float = 0.95) -> Estimate:
    """Mean and Student-t interval of ``values`` (at least one)."""
    if not values:
        raise ValueError("mean_ci needs at least one value")
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Estimate(mean=mean, low=mean, high=mean, n=n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * sd / math.sqrt(n)
    return Estimate(mean=mean, low=mean - half, high=mean + half, n=n)


def paired(arm: list[float], baseline: list[float], confidence: float = 0.95) -> PairedDifference:
    """Compare two arms over the same seeds (``arm[i]`` and ``baseline[i]`` share seed i)."""
    if len(arm) != len(baseline):
        raise ValueError("paired comparison needs one value per seed in each arm")
    differences = [a - b for a, b in zip(arm, baseline, strict=True)]
    estimate = mean_ci(differences, confidence)
    p_value: float | None = None
    if len(differences) >= 2:
        if all(d == differences[0] for d in differences):
            # No spread: the t statistic is undefined; p is 1 for a zero difference, else 0.
            p_value = 1.0 if differences[0] == 0 else 0.0
        else:
            p_value = float(stats.ttest_rel(arm, baseline).pvalue)
    return PairedDifference(difference=estimate, p_value=p_value)


def paired_power(n: int, sd: float, effect: float, alpha: float = 0.05) -> float:
    """Power of a two-sided paired t-test at level ``alpha`` over ``n`` seeds to find a true
    mean difference ``effect`` when the per-seed differences have standard deviation ``sd``
    (the noncentral t distribution, not a normal approximation)."""
    if n < 2:
        return 0.0
    df = n - 1
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    shift = effect / sd * math.sqrt(n)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def seeds_needed(
    sd: float, effect: float, alpha: float = 0.05, power: float = 0.8, most: int = 10_000
) -> int:
    """The fewest seeds with which a two-sided paired t-test reaches ``power`` for a true
    difference ``effect`` given a paired standard deviation ``sd`` (e.g. from a pilot)."""
    if sd <= 0 or effect <= 0:
        raise ValueError("sd and effect must be positive")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie between 0 and 1")
    for n in range(2, most + 1):
        if paired_power(n, sd, effect, alpha) >= power:
            return n
    raise ValueError(f"more than {most} seeds needed")


def paired_sd(arm: list[float], baseline: list[float]) -> float:
    """Sample standard deviation of the per-seed differences ``arm[i] - baseline[i]``."""
    if len(arm) != len(baseline) or len(arm) < 2:
        raise ValueError("paired_sd needs two or more seeds with a value in each arm")
    differences = [a - b for a, b in zip(arm, baseline, strict=True)]
    mean = sum(differences) / len(differences)
    return math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
