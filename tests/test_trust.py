"""Coverage a user can trust: intervals, calibration, prediction-powered coverage, planning labels, agreement.

The statistical tests plant the truth: a judge whose expected score is monotone in a latent quality but shifted so that
it calls ~90% of rows supporting where a person would say 10-40%; a valid method must recover the truth with intervals
that cover it at close to the nominal rate, over many seeded draws of labels (and of scored rows).
"""

import math

import numpy as np
import pytest

from goalcover_hf.agreement import agreement, auc
from goalcover_hf.calibration import Calibrator, cross_fit, isotonic_fit, score_strata
from goalcover_hf.labels import pick_pairs
from goalcover_hf.ppi import (
    MIN_LABELS,
    calibrated_coverage,
    gap_decision,
    labels_needed,
    normal_quantile,
    ppi_mean,
    t_quantile,
    wilson_bounds,
    wilson_interval,
)


def judged_world(rows, truths, seed=0, noise=0.35, shift=3.5):
    """Per subgoal: the judge's expected scores (monotone in a latent quality, shifted high) and the true labels."""
    rng = np.random.default_rng(seed)
    expected, truth = {}, {}
    for j, share in enumerate(truths):
        quality = rng.normal(size=rows)
        seen = quality + noise * rng.normal(size=rows)  # what a person judges: the same quality, seen with noise
        truth[f"s{j}"] = (seen > np.quantile(seen, 1 - share)).astype(int)
        expected[f"s{j}"] = np.round(1 + 4 / (1 + np.exp(-(1.8 * quality + shift))), 3)
    return expected, truth


def as_lists(expected):
    return {sub: [float(x) for x in values] for sub, values in expected.items()}


# ---- intervals and decisions -------------------------------------------------------------------------------------
def test_wilson_interval_matches_the_formula_and_edge_cases():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)  # the textbook values
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2
    assert wilson_interval(20, 20)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_wilson_interval_with_a_finite_population():
    assert wilson_interval(30, 100, population=100) == (0.3, 0.3)  # every row seen: no sampling error
    plain = wilson_interval(30, 100)
    corrected = wilson_interval(30, 100, population=150)
    assert plain[0] < corrected[0] < 0.3 < corrected[1] < plain[1]
    assert wilson_interval(30, 100, population=10 ** 9) == pytest.approx(plain, abs=1e-6)


def test_judge_interval_on_a_sample_of_rows_covers_the_full_datasets_figure_at_the_nominal_rate():
    rng = np.random.default_rng(11)
    population = (rng.random(3000) < 0.27).astype(int)
    hits = 0
    for _ in range(400):
        sample = population[rng.choice(3000, 600, replace=False)]
        low, high = wilson_interval(int(sample.sum()), 600, population=3000)
        hits += low <= population.mean() <= high
    assert 0.92 <= hits / 400 <= 0.98


@pytest.mark.parametrize("low, high, n, expected", [
    (0.02, 0.15, 100, "gap"), (0.25, 0.40, 100, "covered"), (0.20, 0.40, 100, "covered"),
    (0.10, 0.30, 100, "uncertain"), (0.0, 1.0, 0, "no evidence"), (None, None, None, "no evidence"),
])
def test_gap_decision(low, high, n, expected):
    assert gap_decision(low, high, 0.2, n) == expected


# ---- the estimator against the published one ---------------------------------------------------------------------
Y = [1, 0, 1, 1, 0, 1, 0, 0]
YHAT = [0.3, 0.6, 0.9, 0.2, 0.5, 0.7, 0.4, 0.1]
YU = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 0.12, 0.22, 0.32, 0.42, 0.52, 0.62, 0.72, 0.82, 0.92,
      0.5]


@pytest.mark.parametrize("lam, expected", [
    # ppi_py 0.2.3: ppi_mean_pointestimate and ppi_mean_ci(Y, YHAT, YU, alpha=0.05, lam=lam) on these arrays
    (None, (0.514459914422184, 0.17544206519492556, 0.8534777636494424)),
    (1.0, (0.5465, 0.18088439321606498, 0.912115606783935)),
    (0.5, (0.52325, 0.18273563197443987, 0.8637643680255601)),
    (0.0, (0.5, 0.15352404391258057, 0.8464759560874194)),
])
def test_ppi_mean_reproduces_the_reference_implementation(lam, expected):
    r = ppi_mean(Y, YHAT, YU, lam=lam, ddof=0)
    assert (r.estimate, r.low, r.high) == pytest.approx(expected, abs=1e-12)


def test_cross_ppi_reproduces_the_reference_implementation():
    folds = np.column_stack([YU, np.array(YU)[::-1] * 0.9 + 0.05])
    r = ppi_mean(Y, YHAT, folds, lam=1.0, ddof=0)  # ppi_py 0.2.3: crossppi_mean_ci(..., alpha=0.05)
    assert (r.estimate, r.low, r.high) == pytest.approx((0.54605, 0.19811820383772893, 0.8939817961622709), abs=1e-12)


def test_ppi_mean_follows_the_papers_formulas():
    rng = np.random.default_rng(5)
    y = rng.normal(size=60)
    yhat = 0.8 * y + rng.normal(scale=0.5, size=60)
    yu = 0.8 * rng.normal(size=900) + rng.normal(scale=0.5, size=900)
    n, big_n = len(y), len(yu)
    both = np.concatenate([yhat, yu])
    lam = np.mean((y - y.mean()) * (yhat - yhat.mean())) / ((1 + n / big_n) * np.var(both, ddof=1))  # PPI++ (ADZ23)
    theta = lam * yu.mean() + np.mean(y - lam * yhat)
    se = math.sqrt(np.var(y - lam * yhat) / n + lam ** 2 * np.var(yu) / big_n)
    r = ppi_mean(y, yhat, yu, ddof=0)
    assert r.lam == pytest.approx(lam) and r.estimate == pytest.approx(theta) and r.se == pytest.approx(se)
    assert r.high - r.estimate == pytest.approx(normal_quantile(0.95) * se)


def test_ppi_mean_matches_ppi_py_on_random_data():
    ppi_py = pytest.importorskip("ppi_py", reason="ppi-python is not installed (optional cross-check)")
    rng = np.random.default_rng(9)
    for _ in range(10):
        n, big_n = int(rng.integers(10, 100)), int(rng.integers(50, 2000))
        y = (rng.random(n) < 0.3).astype(float)
        yhat, yu = np.clip(0.6 * y + 0.4 * rng.random(n), 0, 1), rng.random(big_n)
        low, high = ppi_py.ppi_mean_ci(y, yhat, yu, alpha=0.05)
        r = ppi_mean(y, yhat, yu, ddof=0)
        assert (r.low, r.high) == pytest.approx((float(np.ravel(low)[0]), float(np.ravel(high)[0])), abs=1e-12)


def test_stratified_finite_ppi():
    rng = np.random.default_rng(3)
    f_all = rng.random(400)
    strata_all = (f_all * 4).astype(int)
    y_all = (rng.random(400) < f_all).astype(float)
    # labelling every row: the estimate is the truth, with no error left
    r = ppi_mean(y_all, f_all, f_all, strata=strata_all, strata_all=strata_all, finite=True)
    assert r.estimate == pytest.approx(y_all.mean()) and r.se == pytest.approx(0.0, abs=1e-12)
    # one stratum is the unstratified estimator
    pick = rng.choice(400, 50, replace=False)
    one = ppi_mean(y_all[pick], f_all[pick], f_all, strata=[0] * 50, strata_all=[0] * 400, finite=True)
    assert one.estimate == ppi_mean(y_all[pick], f_all[pick], f_all, finite=True).estimate
    # strata weighted by their share of the rows, not of the labels
    top = np.flatnonzero(strata_all == 3)[:20]
    rest = np.flatnonzero(strata_all < 3)[:10]
    lab = np.concatenate([top, rest])
    r = ppi_mean(y_all[lab], f_all[lab], f_all, lam=1.0, strata=(strata_all[lab] == 3), strata_all=(strata_all == 3),
                 finite=True)
    w = np.mean(strata_all == 3)
    manual = f_all.mean() + w * np.mean(y_all[top] - f_all[top]) + (1 - w) * np.mean(y_all[rest] - f_all[rest])
    assert r.estimate == pytest.approx(manual)


def test_prior_labels_keep_a_stratum_whose_labels_agree_from_claiming_no_variance():
    f_all = np.full(500, 0.1)
    y = np.zeros(12)  # none of 12 drawn labels is positive, though one in ten rows is
    bare = ppi_mean(y, f_all[:12], f_all, lam=1.0, finite=True)
    prior = ppi_mean(y, f_all[:12], f_all, lam=1.0, finite=True, prior_labels=2, satterthwaite=True)
    assert bare.se == pytest.approx(0.0, abs=1e-12)
    # as if two more labels had shown the predictions' variance 0.1 * 0.9, with 11 + 2 degrees of freedom
    assert prior.se == pytest.approx(math.sqrt(2 * 0.09 / (11 + 2) / 12 * (1 - 12 / 500)))
    assert prior.quantile == pytest.approx(t_quantile(0.95, 13))
    with pytest.raises(ValueError, match="prior_labels"):
        ppi_mean(y, f_all[:12], f_all, prior_labels=-1)


def test_prior_labels_give_way_to_many_labels_and_let_a_single_label_stand():
    rng = np.random.default_rng(8)
    f_all = np.full(5000, 0.5)  # predictions that claim the most variance there is
    y = (rng.random(400) < 0.05).astype(float)  # labels that show far less
    bare = ppi_mean(y, f_all[:400], f_all, lam=0.0, finite=True)
    prior = ppi_mean(y, f_all[:400], f_all, lam=0.0, finite=True, prior_labels=2)
    assert bare.se < prior.se < bare.se * 1.1
    # a stratum with one label keeps it (with its prior) instead of borrowing a neighbour's correction
    strata_all = np.repeat([0, 1], [100, 400])
    f = np.where(strata_all == 0, 0.2, 0.6)
    lab = np.array([0, 100, 101, 102, 103])
    y = np.array([1.0, 1, 0, 1, 0])
    r = ppi_mean(y, f[lab], f, lam=0.0, strata=strata_all[lab], strata_all=strata_all, finite=True, prior_labels=2)
    assert r.estimate == pytest.approx(0.2 * 1 + 0.8 * 0.5)
    var0 = 2 * 0.2 * 0.8 / 2 * (1 - 1 / 100)  # the single label: its prior alone
    var1 = (1.0 + 2 * 0.24) / (3 + 2) / 4 * (1 - 4 / 400)
    assert r.rectifier_var == pytest.approx(0.2 ** 2 * var0 + 0.8 ** 2 * var1)
    merged = ppi_mean(y, f[lab], f, lam=0.0, strata=strata_all[lab], strata_all=strata_all, finite=True)
    assert merged.estimate == pytest.approx(3 / 5)  # without the prior, the lone label's level is merged


# ---- calibration -------------------------------------------------------------------------------------------------
def test_isotonic_fit_pools_adjacent_violators():
    xs, fitted = isotonic_fit(np.array([1, 2, 3, 4, 5, 5.0]), np.array([0, 1, 0, 1, 1, 0.0]))
    assert xs.tolist() == [1, 2, 3, 4, 5]
    assert fitted.tolist() == pytest.approx([0, 0.5, 0.5, 2 / 3, 2 / 3])


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_calibrator_is_monotone_and_learns_each_subgoals_shift(method):
    expected, truth = judged_world(3000, (0.15, 0.6), seed=2)
    s = np.concatenate([expected["s0"], expected["s1"]])
    y = np.concatenate([truth["s0"], truth["s1"]])
    subs = ["s0"] * 3000 + ["s1"] * 3000
    cal = Calibrator(method).fit(s, y, subs)
    grid = np.linspace(1, 5, 41)
    for sub in ("s0", "s1"):
        assert np.all(np.diff(cal.predict(grid, sub)) >= -1e-12)
    assert cal.shifts["s0"] < 0 < cal.shifts["s1"]  # the same score means less for the subgoal that is rarer
    for sub in ("s0", "s1"):  # calibrated: predictions average to the truth
        assert cal.predict(expected[sub], sub).mean() == pytest.approx(truth[sub].mean(), abs=0.03)


def test_calibrator_shrinks_a_subgoal_with_few_labels_and_stays_flat_for_a_backwards_judge():
    rng = np.random.default_rng(4)
    s = rng.uniform(1, 5, 400)
    y = (rng.random(400) < (s - 1) / 4).astype(int)
    few = Calibrator().fit(np.append(s, [3.0, 3.1]), np.append(y, [1, 1]), ["a"] * 400 + ["b"] * 2)
    many = Calibrator().fit(np.append(s, [3.0, 3.1] * 40), np.append(y, [1, 1] * 40), ["a"] * 400 + ["b"] * 80)
    assert 0 < few.shifts["b"] < many.shifts["b"]
    backwards = Calibrator().fit(s, 1 - y, ["a"] * 400)
    p = backwards.predict([1.0, 3.0, 5.0], "a")
    assert p[0] == pytest.approx(p[2]) and p.mean() == pytest.approx(1 - y.mean(), abs=0.02)
    with pytest.raises(ValueError, match="method must be one of"):
        Calibrator("spline")


def test_score_strata():
    assert score_strata([0.5, 1.49, 1.5, 2.5, 4.4999, 4.5, 5.2]).tolist() == [1, 1, 2, 3, 4, 5, 5]


def test_cross_fitted_prediction_of_a_pair_never_sees_its_own_label():
    expected, truth = judged_world(300, (0.3,), seed=1)
    pos = np.arange(0, 300, 5)
    base = cross_fit(expected, {"s0": (pos, truth["s0"][pos])}, folds=5, seed=0)
    flipped = truth["s0"][pos].copy()
    flipped[7] = 1 - flipped[7]
    again = cross_fit(expected, {"s0": (pos, flipped)}, folds=5, seed=0)
    assert again.out_of_fold["s0"][7] == base.out_of_fold["s0"][7]
    assert not np.allclose(again.out_of_fold["s0"], base.out_of_fold["s0"])  # the other folds' curves did move
    assert base.all_rows["s0"].shape == (300, 5)


# ---- calibrated coverage -----------------------------------------------------------------------------------------
def test_calibrated_coverage_recovers_the_truth_with_valid_and_narrower_intervals():
    expected, truth = judged_world(1200, (0.1, 0.35), seed=0)
    scores = as_lists(expected)
    draws = 300
    hits = {s: 0 for s in truth}
    width, wilson_width, estimates = ({s: [] for s in truth} for _ in range(3))
    for seed in range(draws):
        pairs = pick_pairs(scores, 40, seed=seed)
        labels = {(r, s): int(truth[s][r]) for r, s in pairs}
        for sub, est in calibrated_coverage(scores, labels, seed=seed).items():
            assert est.method == "calibrated" and est.labelled == 40
            hits[sub] += est.low <= truth[sub].mean() <= est.high
            width[sub].append(est.high - est.low)
            estimates[sub].append(est.estimate)
            low, high = wilson_interval(est.positives, est.labelled)
            wilson_width[sub].append(high - low)
    for sub in truth:
        assert np.mean(expected[sub] >= 4) > 0.85  # the judge's own figure is far off ...
        assert np.mean(estimates[sub]) == pytest.approx(truth[sub].mean(), abs=0.015)  # ... the calibrated one is not
        assert 0.90 <= hits[sub] / draws <= 0.99
        assert np.mean(width[sub]) < np.mean(wilson_width[sub])  # the judge's ranking is worth labels


def test_calibrated_coverage_on_a_sample_of_rows_includes_the_sampling():
    expected, truth = judged_world(3000, (0.3,), seed=7)
    rng = np.random.default_rng(0)
    draws, hits, widths, judge_widths = 200, 0, [], []
    for seed in range(draws):
        scored = np.sort(rng.choice(3000, 600, replace=False))
        scores = {"s0": [float(x) for x in expected["s0"][scored]]}
        pairs = pick_pairs(scores, 40, seed=seed, row_ids=scored)
        labels = {(r, s): int(truth[s][r]) for r, s in pairs}
        est = calibrated_coverage(scores, labels, row_ids=scored, rows=3000, seed=seed)["s0"]
        hits += est.low <= truth["s0"].mean() <= est.high
        assert est.rows == 3000 and est.scored == 600 and est.sampling_var > 0
        widths.append(est.high - est.low)
        judge_widths.append(est.judge_high - est.judge_low)
    assert 0.90 <= hits / draws <= 0.99
    assert np.mean(judge_widths) > 0.03  # the judge's figure on a sample has an interval of its own


def test_a_rare_subgoal_whose_labels_are_all_no_still_gets_an_honest_interval():
    expected, truth = judged_world(1200, (0.03,), seed=4)
    scores = as_lists(expected)
    hits, one_class = 0, []
    for seed in range(100):
        pairs = pick_pairs(scores, 30, seed=seed)
        est = calibrated_coverage(scores, {(r, s): int(truth[s][r]) for r, s in pairs}, seed=seed)["s0"]
        hits += est.low <= truth["s0"].mean() <= est.high
        if est.positives == 0:
            one_class.append(est)
    assert hits >= 93 and len(one_class) > 10
    assert min(e.high for e in one_class) > truth["s0"].mean()  # 30 agreeing labels do not prove coverage is 0
    assert max(e.high - e.low for e in one_class) < 0.2
    for e in one_class:  # no narrower than what the 30 labels alone would say
        assert e.high >= wilson_bounds(e.estimate, 30, population=1200)[1] - 1e-12
        assert any("every label gives the same answer" in note for note in e.notes)


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_calibrated_coverage_with_either_curve(method):
    expected, truth = judged_world(1500, (0.2, 0.5), seed=6)
    scores = as_lists(expected)
    pairs = pick_pairs(scores, 60, seed=0)
    est = calibrated_coverage(scores, {(r, s): int(truth[s][r]) for r, s in pairs}, method=method, target=0.3)
    for sub in truth:
        assert est[sub].estimate == pytest.approx(truth[sub].mean(), abs=0.1)
        assert est[sub].judge_coverage > 0.85 and 0 <= est[sub].lam <= 1
    assert est["s0"].decision == "gap" and est["s1"].decision == "covered"


def test_without_labels_the_interval_is_the_samplings_and_zero_rows_are_no_evidence():
    scores = {"a": [5.0, 4.0, 2.0, 1.0, 4.6, None], "b": [None] * 6}
    est = calibrated_coverage(scores, {}, target=0.2)
    a, b = est["a"], est["b"]
    assert a.method == "judge" and a.estimate == pytest.approx(3 / 5)
    assert (a.low, a.high) == wilson_interval(3, 5, population=6) == (a.judge_low, a.judge_high)
    assert a.decision == "covered" and a.labelled == 0 and a.high - a.low < 0.4  # 5 of 6 rows seen
    few = calibrated_coverage({"a": scores["a"]}, {}, rows=600, target=0.3)["a"]
    assert few.decision == "uncertain" and few.low < 0.3
    assert b.method == "none" and b.estimate is None and b.decision == "no evidence" and b.scored == 0
    full = calibrated_coverage({"a": [5.0, 4.0, 2.0, 1.0]}, {}, target=0.2)["a"]
    assert full.low == full.high == 0.5 and full.decision == "covered"


def test_too_few_labels_keep_the_judges_figure_and_say_so():
    expected, truth = judged_world(200, (0.3,), seed=3)
    labels = {(r, "s0"): int(truth["s0"][r]) for r in range(MIN_LABELS - 1)}
    labels[(500, "s0")] = 1  # a row the run does not have
    est = calibrated_coverage(as_lists(expected), labels)["s0"]
    assert est.method == "judge" and est.labelled == MIN_LABELS - 1
    assert any("calibrated coverage needs at least" in n for n in est.notes)
    assert any("1 label(s) fall on rows without a score" in n for n in est.notes)


def test_labels_needed_plans_the_interval_it_promises():
    expected, truth = judged_world(2000, (0.3,), seed=5)
    scores = as_lists(expected)
    pairs = pick_pairs(scores, 30, seed=0)
    est = calibrated_coverage(scores, {(r, s): int(truth[s][r]) for r, s in pairs})["s0"]
    current = (est.high - est.low) / 2
    more = labels_needed(est, current / 2)
    assert 2 * 30 <= more <= 6 * 30  # halving the width takes about four times the labels
    assert labels_needed(est, current * 1.01) == 0
    halves = []
    for seed in range(20):
        pairs = pick_pairs(scores, 30 + more, seed=seed)
        bigger = calibrated_coverage(scores, {(r, s): int(truth[s][r]) for r, s in pairs}, seed=seed)["s0"]
        halves.append((bigger.high - bigger.low) / 2)
    assert np.mean(halves) <= current / 2 * 1.2
    no_labels = calibrated_coverage(scores, {})["s0"]
    assert labels_needed(no_labels, 0.05) == math.ceil(1 / ((0.05 / 1.96) ** 2 / 0.25 + 1 / 2000))
    sampled = calibrated_coverage({"s0": scores["s0"][:100]}, {}, rows=100000)["s0"]
    assert labels_needed(sampled, 0.01) is None  # the row sample alone is wider than that: score more rows


# ---- agreement ---------------------------------------------------------------------------------------------------
def brute_auc(s, y):
    pos, neg = s[y == 1], s[y == 0]
    return np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])


def test_auc_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(1, 6, 80).astype(float)
    y = (rng.random(80) < s / 6).astype(int)
    assert auc(s, y) == pytest.approx(brute_auc(s, y))
    assert auc([1, 2], [1, 1]) is None
    assert auc([1.0, 2.0, 3.0], [1, 0, 0]) == 0.0


def test_agreement_figures_and_verdicts():
    expected, truth = judged_world(600, (0.3,), seed=8)
    rng = np.random.default_rng(1)
    rows = rng.choice(600, 80, replace=False)
    scores = {"biased": list(expected["s0"]), "chance": list(rng.uniform(1, 5, 600)),
              "one_class": list(expected["s0"]), "few": list(expected["s0"])}
    labels = {(int(r), "biased"): int(truth["s0"][r]) for r in rows}
    labels |= {(int(r), "chance"): int(truth["s0"][r]) for r in rows}
    labels |= {(int(r), "one_class"): 1 for r in rows[:15]}
    mixed = [*rows[truth["s0"][rows] == 1][:3], *rows[truth["s0"][rows] == 0][:3]]
    labels |= {(int(r), "few"): int(truth["s0"][r]) for r in mixed}
    report = agreement(scores, labels, threshold=4, seed=0)
    again = agreement(scores, labels, threshold=4, seed=0)
    assert report.to_dict() == again.to_dict()
    biased = report.subgoals["biased"]
    y = truth["s0"][rows]
    pred = (expected["s0"][rows] >= 4).astype(int)
    tp, fp = int(np.sum(pred & y)), int(np.sum(pred & (1 - y)))
    fn, tn = int(np.sum((1 - pred) & y)), int(np.sum((1 - pred) & (1 - y)))
    assert (biased.labelled, biased.positives, biased.negatives) == (80, int(y.sum()), 80 - int(y.sum()))
    assert biased.auc.value == pytest.approx(brute_auc(expected["s0"][rows], y))
    assert biased.accuracy.value == pytest.approx((tp + tn) / 80)
    assert biased.precision.value == pytest.approx(tp / (tp + fp))
    assert biased.recall.value == pytest.approx(tp / (tp + fn))
    po, pe = (tp + tn) / 80, ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / 80 ** 2
    assert biased.kappa.value == pytest.approx((po - pe) / (1 - pe))
    assert biased.auc.low < biased.auc.value < biased.auc.high
    assert biased.verdict == "ranks well, threshold biased (too lenient): use calibrated coverage"
    assert report.subgoals["chance"].verdict == "no better than chance on these labels"
    assert report.subgoals["one_class"].verdict == "too few labels (need both classes)"
    assert report.subgoals["one_class"].auc.value is None
    assert report.subgoals["few"].verdict.startswith("too few labels (6;")
    assert report.overall.labelled == 80 + 80 + 15 + 6
    assert "biased" in report.table() and "overall" in report.table()


def test_agreement_when_the_threshold_is_right():
    rng = np.random.default_rng(2)
    s = rng.uniform(1, 5, 300)
    y = (s + rng.normal(scale=0.4, size=300) >= 4).astype(int)
    report = agreement({"a": list(s)}, {(i, "a"): int(y[i]) for i in range(300)}, seed=1)
    assert report.subgoals["a"].verdict == "ranks well, threshold agrees with the labels"
    assert report.subgoals["a"].bias.low < 0 < report.subgoals["a"].bias.high
