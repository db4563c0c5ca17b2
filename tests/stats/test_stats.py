"""common.stats against independently computed values: scipy, statsmodels, and worked examples written out here."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from common import stats

RNG = np.random.default_rng(20240601)
A = 0.85 + 0.03 * RNG.standard_normal(10)
B = A - 0.01 + 0.02 * RNG.standard_normal(10)


def test_paired_t_equals_scipy_ttest_rel():
    res = stats.paired_t(A, B)
    ref = sps.ttest_rel(A, B)
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.df == len(A) - 1
    lo, hi = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), rel=1e-10)


def test_corrected_t_without_correction_is_ttest_rel():
    res = stats.corrected_resampled_t(A, B, n_train=900, n_test=100, correction=False)
    ref = sps.ttest_rel(A, B)
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-10)


def test_corrected_t_worked_example():
    # d = a - b = [.02, .01, .03, 0, .02]; mean .016; var(ddof=1) = 5.2e-4 / 4 = 1.3e-4
    # k = 5 folds, r = 1, n_test / n_train = 20 / 80: var of mean = 1.3e-4 * (1/5 + 1/4) = 5.85e-5
    # t = .016 / sqrt(5.85e-5) = 2.091905..., df = 4, p = 2 * t.sf(2.0919, 4) = 0.104605...
    a = np.array([0.90, 0.85, 0.88, 0.80, 0.92])
    b = a - np.array([0.02, 0.01, 0.03, 0.00, 0.02])
    res = stats.corrected_resampled_t(a, b, n_train=80, n_test=20)
    assert res.estimate == pytest.approx(0.016, abs=1e-12)
    assert res.t == pytest.approx(2.0919054414739633, rel=1e-9)
    assert res.df == 4
    assert res.p == pytest.approx(0.10460522928410199, rel=1e-8)
    # baycomp's CorrelatedTTest uses var * (1/n + 1/(nfolds - 1)); for k-fold, n_test/n_train = 1/(k-1): same value.
    assert res.se ** 2 == pytest.approx(1.3e-4 * (1 / 5 + 1 / (5 - 1)), rel=1e-9)
    # The correction makes the test more conservative than the plain paired t.
    assert res.p > stats.paired_t(a, b).p


def test_corrected_t_ci_brackets_estimate_and_widens():
    plain = stats.corrected_resampled_t(A, B, 900, 100, correction=False)
    corr = stats.corrected_resampled_t(A, B, 900, 100)
    assert corr.ci_low < corr.estimate < corr.ci_high
    assert (corr.ci_high - corr.ci_low) > (plain.ci_high - plain.ci_low)


def test_too_few_pairs_gives_reason():
    with pytest.raises(stats.TooFewError, match="n = 1: no test"):
        stats.paired_t([0.9], [0.8])


def test_cohen_dz_is_t_over_sqrt_n():
    t = sps.ttest_rel(A, B).statistic
    assert stats.cohen_dz(A, B) == pytest.approx(t / math.sqrt(len(A)), rel=1e-12)


def test_cohen_dav_worked_example():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([0.5, 1.0, 2.0, 2.5])
    # mean(d) = (0.5+1+1+1.5)/4 = 1; sd(a) = 1.290994, sd(b) = sqrt(2.5/3) = 0.912871; d_av = 1 / 1.1019325
    assert stats.cohen_dav(a, b) == pytest.approx(1.0 / ((np.std(a, ddof=1) + np.std(b, ddof=1)) / 2), rel=1e-12)
    assert stats.cohen_dav(a, b) == pytest.approx(0.907496, rel=1e-5)


def test_holm_hand_worked():
    # sorted: .005*4 = .02; .01*3 = .03; .03*2 = .06; .04*1 = .04 -> max(.06, .04) = .06 (monotone)
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_holm_leaves_missing_out_of_the_family():
    adj = stats.holm([0.01, float("nan"), 0.04])
    assert math.isnan(adj[1])
    np.testing.assert_allclose(adj[[0, 2]], [0.02, 0.04], rtol=1e-12)


def test_wilcoxon_worked_example():
    # d = [1, -2, 3, 4, 5]: W- = 2, W+ = 13; P(W <= 2) = #{{}, {1}, {2}} / 2^5 = 3/32; two-sided 6/32
    w, p = stats.wilcoxon_signed_rank([1, -2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert w == 2.0
    assert p == pytest.approx(6 / 32, rel=1e-12)
    # ties and zeros (typical of fold accuracies): exact sign-flip null = scipy's full permutation test
    rng = np.random.default_rng(0)
    for n in (5, 9, 12):
        d = np.round(rng.normal(0.02, 0.05, n), 2)
        d[0] = 0.0
        w, p = stats.wilcoxon_signed_rank(d, np.zeros(n))
        ref = sps.wilcoxon(d, method=sps.PermutationMethod(n_resamples=np.inf))
        assert (w, p) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-12)
    # beyond 16 pairs with ties: the tie-corrected normal approximation
    d = np.round(rng.normal(0.02, 0.05, 30), 2)
    assert stats.wilcoxon_signed_rank(d, np.zeros(30)) == pytest.approx(
        tuple(sps.wilcoxon(d, method="approx")), rel=1e-12)
    with pytest.raises(stats.TooFewError, match="all differences 0"):
        stats.wilcoxon_signed_rank([1, 2], [1, 2])


def test_friedman_matches_demsar_formula():
    # 4 datasets x 3 models, no ties: chi2_F = 12N/(k(k+1)) * (sum R_j^2 - k(k+1)^2/4)
    scores = np.array([[0.9, 0.8, 0.7], [0.85, 0.86, 0.7], [0.95, 0.9, 0.91], [0.8, 0.7, 0.6]])
    res = stats.friedman(scores)
    ranks = np.array([[1, 2, 3], [2, 1, 3], [1, 3, 2], [1, 2, 3]], dtype=float)
    np.testing.assert_allclose(res.mean_ranks, ranks.mean(axis=0))
    n, k = scores.shape
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks.mean(axis=0) ** 2) - k * (k + 1) ** 2 / 4)
    assert res.statistic == pytest.approx(chi2, rel=1e-12)
    assert res.p == pytest.approx(sps.chi2.sf(chi2, k - 1), rel=1e-12)


@pytest.mark.parametrize("k,q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (7, 2.949),
                                 (8, 3.031), (9, 3.102), (10, 3.164)])
def test_nemenyi_q_matches_demsar_table(k, q):
    assert stats.nemenyi_q(k) == pytest.approx(q, abs=1.5e-3)


def test_nemenyi_cd_worked_example():
    # k = 4, N = 4: CD = 2.569 * sqrt(4*5 / 24) = 2.345...
    assert stats.nemenyi_cd(4, 4) == pytest.approx(2.569 * math.sqrt(20 / 24), abs=2e-3)
    p = stats.nemenyi_pvalues([1.0, 1.0 + stats.nemenyi_cd(4, 4), 3.0, 4.0], 4)
    assert p[0, 1] == pytest.approx(0.05, abs=1e-6)  # a gap of exactly CD is significant at exactly alpha
    assert np.allclose(p, p.T)


def _mcnemar_data(n=200, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 7, n)
    a = np.where(rng.random(n) < 0.8, y, (y + 1) % 7)
    b = np.where(rng.random(n) < 0.7, y, (y + 2) % 7)
    return y, a, b


@pytest.mark.parametrize("exact", [True, False])
def test_mcnemar_matches_statsmodels(exact):
    y, a, b = _mcnemar_data()
    res = stats.mcnemar(y, a, b, exact=exact)
    a_ok, b_ok = a == y, b == y
    table = [[np.sum(a_ok & b_ok), np.sum(a_ok & ~b_ok)], [np.sum(~a_ok & b_ok), np.sum(~a_ok & ~b_ok)]]
    ref = sm_mcnemar(table, exact=exact, correction=True)
    assert (res.b, res.c) == (table[0][1], table[1][0])
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-9)


def test_mcnemar_small_counts_default_to_exact():
    y = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    a = np.array([0, 1, 1, 0, 1, 0, 1, 0])
    b = np.array([0, 0, 1, 1, 1, 0, 0, 1])
    res = stats.mcnemar(y, a, b)
    assert res.exact and (res.b, res.c) == (3, 1)
    assert res.p == pytest.approx(sm_mcnemar([[3, 3], [1, 1]], exact=True).pvalue, rel=1e-12)


def test_bootstrap_ci_agrees_with_scipy_percentile_bootstrap():
    y, a, _ = _mcnemar_data(n=300, seed=3)
    est, lo, hi = stats.bootstrap_ci(y, a, n_boot=4000, seed=0)
    correct = (a == y).astype(float)
    ref = sps.bootstrap((correct,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                        rng=np.random.default_rng(1))
    assert est == pytest.approx(correct.mean())
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.012)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.012)
    assert stats.bootstrap_ci(y, a, n_boot=500, seed=7) == stats.bootstrap_ci(y, a, n_boot=500, seed=7)


def test_paired_bootstrap_diff_brackets_difference():
    y, a, b = _mcnemar_data(n=300, seed=4)
    diff, lo, hi = stats.paired_bootstrap_diff(y, a, b, n_boot=2000, seed=0)
    assert diff == pytest.approx(np.mean(a == y) - np.mean(b == y))
    assert lo < diff < hi
    # Normal approximation of the paired difference's standard error, as an independent scale check.
    da = (a == y).astype(float) - (b == y).astype(float)
    se = da.std(ddof=1) / math.sqrt(len(da))
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.15)
