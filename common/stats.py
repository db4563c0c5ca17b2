"""Statistics for comparing methods: plain functions, each checked against scipy / statsmodels in tests/stats.

Conventions (Nadeau & Bengio, Machine Learning 52(3), 2003; Demšar, JMLR 7, 2006; Holm, Scand. J. Statist. 6(2),
1979; McNemar, Psychometrika 12(2), 1947):
- Cross-validation: the pairing unit is the fold (and seed); ``a`` and ``b`` are aligned per fold and differences are
  ``d = a - b``. The headline test is the Nadeau–Bengio corrected resampled t, two-sided.
- Effect size is d_z = mean(d) / sd(d) (= t / sqrt(n) for the plain paired t); d_av is offered and labelled.
- Multiplicity: Holm within each declared family (``statsmodels`` ``multipletests``).
- Across datasets: Friedman + Nemenyi (Demšar 2006), with the critical difference for a CD diagram.
- One test set (FER): McNemar's test on per-sample correctness and bootstrap confidence intervals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sps


class TooFewError(ValueError):
    """Not enough paired observations for a test; the message is the reason shown in a table cell."""


@dataclass(frozen=True)
class TTest:
    """A (possibly corrected) paired t-test on d = a - b: estimate = mean(d), its standard error, t(df), p, CI."""

    estimate: float
    se: float
    t: float
    df: int
    p: float
    ci_low: float
    ci_high: float
    n: int
    corrected: bool


def _paired(a: Sequence[float], b: Sequence[float], min_n: int = 2) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples must be 1-D and aligned, got shapes {a.shape} and {b.shape}")
    if len(a) < min_n:
        raise TooFewError(f"n = {len(a)}: no test")
    return a - b


def _t_from_var(d: np.ndarray, var_of_mean: float, df: int, corrected: bool, alpha: float) -> TTest:
    mean = float(d.mean())
    se = math.sqrt(var_of_mean)
    if se == 0.0:
        # Identical differences in every fold: t is undefined (0/0) or infinite; report it rather than guess.
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
        return TTest(mean, 0.0, t, df, p, mean, mean, len(d), corrected)
    t = mean / se
    p = float(2.0 * sps.t.sf(abs(t), df))
    half = float(sps.t.ppf(1.0 - alpha / 2.0, df)) * se
    return TTest(mean, se, float(t), df, p, mean - half, mean + half, len(d), corrected)


def paired_t(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> TTest:
    """Two-sided paired t-test: t = mean(d) / (sd(d)/sqrt(n)), df = n - 1 (equals ``scipy.stats.ttest_rel``)."""
    d = _paired(a, b)
    return _t_from_var(d, float(d.var(ddof=1)) / len(d), len(d) - 1, False, alpha)


def corrected_resampled_t(a: Sequence[float], b: Sequence[float], n_train: float, n_test: float,
                          correction: bool = True, alpha: float = 0.05) -> TTest:
    """Nadeau–Bengio corrected resampled t-test over k·r folds (two-sided).

    var(mean d) = var(d, ddof=1) · (1/(k·r) + n_test/n_train),  df = k·r - 1,  p = 2·t.sf(|t|, df).
    The extra term accounts for overlapping training sets across folds; ``correction=False`` drops it, which
    gives the plain paired t-test. With a single k-fold run (r = 1) the corrected test has low power.
    """
    d = _paired(a, b)
    kr = len(d)
    factor = 1.0 / kr + (float(n_test) / float(n_train) if correction else 0.0)
    return _t_from_var(d, float(d.var(ddof=1)) * factor, kr - 1, correction, alpha)


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test, zero differences dropped; returns (W = min(W+, W-), p).

    Up to 16 non-zero differences the p-value is exact: all 2^n sign flips of the (mid)ranks are enumerated, which
    stays exact with tied fold accuracies (= scipy's PermutationMethod, without its cost). Beyond that: scipy's exact
    distribution without ties, the tie-corrected normal approximation with ties.
    """
    d = _paired(a, b)
    if np.all(d == 0):
        raise TooFewError("all differences 0: no test")
    d = d[d != 0]
    n = len(d)
    ranks = sps.rankdata(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    statistic = min(w_plus, float(ranks.sum()) - w_plus)
    if n <= 16:
        signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(float)
        null = signs @ ranks
        centre = ranks.sum() / 2.0
        p = float(np.mean(np.abs(null - centre) >= abs(w_plus - centre) - 1e-9))
        return statistic, min(p, 1.0)
    ties = len(np.unique(np.abs(d))) < n
    res = sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided", method="approx" if ties else "exact")
    return float(res.statistic), float(res.pvalue)


def cohen_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """d_z = mean(d) / sd(d, ddof=1) for paired data (``pingouin`` eftype='cohen_dz')."""
    d = _paired(a, b)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if d.mean() == 0 else math.copysign(math.inf, float(d.mean()))
    return float(d.mean()) / sd


def cohen_dav(a: Sequence[float], b: Sequence[float]) -> float:
    """d_av = mean(d) / ((sd(a) + sd(b)) / 2): the paired effect size of ``pingouin.compute_effsize(paired=True)``."""
    d = _paired(a, b)
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    sd_av = (a.std(ddof=1) + b.std(ddof=1)) / 2.0
    if sd_av == 0.0:
        return 0.0 if d.mean() == 0 else math.copysign(math.inf, float(d.mean()))
    return float(d.mean() / sd_av)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values within one family; NaN entries (no test) stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


@dataclass(frozen=True)
class Friedman:
    """Friedman test over N blocks (datasets) × k treatments (models); ranks: 1 = best."""

    statistic: float
    p: float
    mean_ranks: np.ndarray
    n_blocks: int
    k: int


def rank_rows(scores: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Rank each row (dataset) of an N × k score matrix, 1 = best, ties share the average rank."""
    scores = np.asarray(scores, dtype=float)
    return np.vstack([sps.rankdata(-row if higher_is_better else row) for row in scores])


def friedman(scores: np.ndarray, higher_is_better: bool = True) -> Friedman:
    """Friedman chi-square test (``scipy.stats.friedmanchisquare``) plus the mean rank of each model."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError("scores must be a 2-D array: datasets × models")
    n, k = scores.shape
    if k < 3:
        raise TooFewError(f"k = {k} models: Friedman needs >= 3")
    if n < 2:
        raise TooFewError(f"N = {n} datasets: no test")
    if np.isnan(scores).any():
        raise TooFewError("missing cells: Friedman needs every model on every dataset")
    ranks = rank_rows(scores, higher_is_better)
    stat, p = sps.friedmanchisquare(*scores.T)
    return Friedman(float(stat), float(p), ranks.mean(axis=0), n, k)


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test: studentized range quantile (k, infinite df) / sqrt(2) (Demšar 2006, Table 5a)."""
    return float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Critical difference of mean ranks: CD = q_alpha · sqrt(k(k+1) / (6N))."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def nemenyi_pvalues(mean_ranks: Sequence[float], n_blocks: int) -> np.ndarray:
    """Pairwise Nemenyi p-values: z = |R_i - R_j| / sqrt(k(k+1)/(6N)), p = P(Q_{k,inf} > z·sqrt(2))."""
    r = np.asarray(mean_ranks, dtype=float)
    k = len(r)
    se = math.sqrt(k * (k + 1) / (6.0 * n_blocks))
    z = np.abs(r[:, None] - r[None, :]) / se
    p = sps.studentized_range.sf(z * math.sqrt(2.0), k, np.inf)
    np.fill_diagonal(p, 1.0)
    return np.clip(p, 0.0, 1.0)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired correctness: b = only A right, c = only B right."""

    b: int
    c: int
    statistic: float
    p: float
    exact: bool


def mcnemar(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], exact: bool | None = None) -> McNemar:
    """McNemar's test of two classifiers on one test set.

    exact: two-sided binomial test on min(b, c) of b + c discordant pairs with p = 1/2 (statistic = min(b, c));
    asymptotic: chi2 = (|b - c| - 1)^2 / (b + c) with continuity correction, 1 df.
    ``exact=None`` picks the exact test when b + c < 25 (the usual rule).
    """
    y = np.asarray(y_true)
    a_ok = np.asarray(pred_a) == y
    b_ok = np.asarray(pred_b) == y
    if not (len(y) == len(a_ok) == len(b_ok)):
        raise ValueError("y_true, pred_a and pred_b must have the same length")
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    if exact is None:
        exact = (b + c) < 25
    if b + c == 0:
        return McNemar(b, c, 0.0, 1.0, exact)
    if exact:
        p = float(sps.binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue)
        return McNemar(b, c, float(min(b, c)), min(p, 1.0), True)
    stat = (abs(b - c) - 1.0) ** 2 / (b + c)
    return McNemar(b, c, float(stat), float(sps.chi2.sf(stat, 1)), False)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _percentile_bootstrap(n: int, statistic: Callable[[np.ndarray], float], n_boot: int, alpha: float,
                          seed: int) -> tuple[float, float, float]:
    """(statistic on all items, low, high): ``statistic`` takes an index array into the n test items."""
    if n < 2:
        raise TooFewError(f"n = {n}: no interval")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = np.array([statistic(i) for i in idx])
    lo, hi = np.quantile(boots, [alpha / 2.0, 1.0 - alpha / 2.0])
    return statistic(np.arange(n)), float(lo), float(hi)


def bootstrap_ci(y_true: Sequence[int], y_pred: Sequence[int],
                 metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
                 n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap over test samples: (estimate, low, high). Seeded, so the interval is reproducible."""
    y, p = np.asarray(y_true), np.asarray(y_pred)
    return _percentile_bootstrap(len(y), lambda i: metric(y[i], p[i]), n_boot, alpha, seed)


def paired_bootstrap_diff(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int],
                          metric: Callable[[np.ndarray, np.ndarray], float] = accuracy,
                          n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap of metric(A) - metric(B), resampling the same test items for both: (diff, low, high)."""
    y, a, b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    return _percentile_bootstrap(len(y), lambda i: metric(y[i], a[i]) - metric(y[i], b[i]), n_boot, alpha, seed)
