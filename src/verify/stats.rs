//! Statistical tests for comparing two runs: is the current one worse?
//!
//! Two tests, each chosen to be exact (or exactly computed) on what a report
//! actually stores:
//!
//! - **Latency: Mann–Whitney U**, computed from the two HDR histograms'
//!   bucket counts. The test is rank-based, so it needs no assumption about
//!   the (skewed, multi-modal) shape of latency distributions, and ranks of a
//!   histogram are exact up to its bucket resolution: values in one bucket are
//!   ties, and ties are handled with average ranks and the tie-corrected
//!   variance. The p-value is the normal approximation with a continuity
//!   correction, which is accurate at the sample sizes we act on (at least
//!   [`DEFAULT_MIN_SAMPLES`] per side) — the formula of SciPy's
//!   `mannwhitneyu(method="asymptotic")`.
//! - **Error rate: Fisher's exact test** on the 2×2 table of errors and
//!   successes. It conditions on the total number of errors and sums exact
//!   hypergeometric probabilities, so it is valid at zero errors and at tiny
//!   counts, where the pooled z-test's normal approximation is poor and the
//!   unpooled (Wald) z-test breaks outright (a 0% side has zero variance).
//!   It is slightly conservative, which suits a CI gate: a false alarm on a
//!   nightly costs more than a marginal miss.
//!
//! A p-value alone does not make a verdict: [`verdict`] also asks for a
//! minimum effect (so a huge sample of a negligible change does not fail a
//! build) and a minimum sample count per side (below it: inconclusive).

use crate::metrics::LatencyHistogram;
use statrs::distribution::{ContinuousCDF, Normal};

/// Below this many samples on either side a comparison is inconclusive.
pub const DEFAULT_MIN_SAMPLES: u64 = 50;

/// Which way the current sample moved relative to the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// No significant difference (or one smaller than the minimum effect).
    Same,
    /// Current is slower / has more errors.
    Worse,
    /// Current is faster / has fewer errors.
    Better,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Same => "same",
            Direction::Worse => "worse",
            Direction::Better => "better",
        }
    }
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Too few samples on one side to say anything.
    Inconclusive,
    Decided(Direction),
}

impl Verdict {
    pub fn is_worse(self) -> bool {
        self == Verdict::Decided(Direction::Worse)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Inconclusive => "inconclusive",
            Verdict::Decided(d) => d.as_str(),
        }
    }
}

/// What a test says, reduced to what a verdict needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// Two-sided p-value.
    pub p_value: f64,
    /// The side the test statistic falls on (`Same` when exactly at the null).
    pub leaning: Direction,
    /// Signed effect size in the unit of [`Rule::min_effect`]; positive = worse.
    pub effect: f64,
    /// Samples on the current and the baseline side.
    pub samples: (u64, u64),
}

/// When a difference counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Significance level for the two-sided p-value.
    pub alpha: f64,
    /// The effect must exceed this (in [`Evidence::effect`]'s unit) to count.
    pub min_effect: f64,
    /// Below this many samples on either side: inconclusive.
    pub min_samples: u64,
}

impl Rule {
    /// Significance only: no minimum effect, [`DEFAULT_MIN_SAMPLES`].
    pub fn new(alpha: f64) -> Rule {
        Rule {
            alpha,
            min_effect: 0.0,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }

    pub fn with_min_effect(self, min_effect: f64) -> Rule {
        Rule { min_effect, ..self }
    }
}

/// Turns evidence into a verdict: `Worse` or `Better` only when the
/// two-sided p-value is below alpha, the statistic leans that way, *and* the
/// effect exceeds the minimum in that direction.
pub fn verdict(evidence: &Evidence, rule: &Rule) -> Verdict {
    let (current, baseline) = evidence.samples;
    if current.min(baseline) < rule.min_samples {
        return Verdict::Inconclusive;
    }
    let significant = evidence.p_value < rule.alpha;
    let direction = match evidence.leaning {
        Direction::Worse if significant && evidence.effect > rule.min_effect => Direction::Worse,
        Direction::Better if significant && -evidence.effect > rule.min_effect => Direction::Better,
        _ => Direction::Same,
    };
    Verdict::Decided(direction)
}

/// Mann–Whitney U of a current against a baseline latency histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    pub n_current: u64,
    pub n_baseline: u64,
    /// U of the current sample: pairs (current, baseline) where current is
    /// larger (slower), ties counting one half. `n_current * n_baseline / 2`
    /// under the null.
    pub u: f64,
    /// Continuity-corrected z with the tie-corrected variance; positive when
    /// the current sample is slower.
    pub z: f64,
    pub p_two_sided: f64,
    /// One-sided: the current sample is stochastically larger (slower).
    pub p_worse: f64,
    /// One-sided: the current sample is stochastically smaller (faster).
    pub p_better: f64,
    /// `2U/(n1·n2) − 1` in [−1, 1]: +1 when every current sample is slower
    /// than every baseline sample, 0 when neither side tends to be slower.
    pub rank_biserial: f64,
    pub p50_current_ms: f64,
    pub p50_baseline_ms: f64,
}

impl MannWhitney {
    /// Relative change of the median, e.g. `0.38` for +38%.
    pub fn p50_change(&self) -> f64 {
        (self.p50_current_ms - self.p50_baseline_ms) / self.p50_baseline_ms
    }

    /// Evidence whose effect is the change of the median in milliseconds.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            p_value: self.p_two_sided,
            leaning: leaning(self.z),
            effect: self.p50_current_ms - self.p50_baseline_ms,
            samples: (self.n_current, self.n_baseline),
        }
    }
}

/// Mann–Whitney U from bucket counts; `None` when either side is empty.
///
/// Both histograms are walked in value order at once; every value is a group
/// of ties (`a` current and `b` baseline samples), so
/// `U = Σ a · (baseline samples below + b/2)`, and the tie correction is
/// `Σ (t³ − t)` over the groups. Linear in the number of buckets, whatever
/// the number of samples.
pub fn mann_whitney(
    current: &LatencyHistogram,
    baseline: &LatencyHistogram,
) -> Option<MannWhitney> {
    let (n1, n2) = (current.len(), baseline.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut u = 0.0_f64;
    let mut ties = 0.0_f64;
    let mut baseline_below = 0u64;
    for (_, a, b) in merged_counts(current, baseline) {
        u += a as f64 * (baseline_below as f64 + b as f64 / 2.0);
        let t = (a + b) as f64;
        ties += t * t * t - t;
        baseline_below += b;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mean = n1f * n2f / 2.0;
    let variance = (n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).max(0.0);
    let diff = u - mean;
    let z = if variance > 0.0 {
        diff.signum() * (diff.abs() - 0.5).max(0.0) / variance.sqrt()
    } else {
        0.0
    };
    let (p_worse, p_better) = if variance > 0.0 {
        let sd = variance.sqrt();
        (
            standard_normal().sf((diff - 0.5) / sd),
            standard_normal().cdf((diff + 0.5) / sd),
        )
    } else {
        (1.0, 1.0)
    };
    Some(MannWhitney {
        n_current: n1,
        n_baseline: n2,
        u,
        z,
        p_two_sided: (2.0 * standard_normal().sf(z.abs())).min(1.0),
        p_worse: p_worse.min(1.0),
        p_better: p_better.min(1.0),
        rank_biserial: 2.0 * u / (n1f * n2f) - 1.0,
        p50_current_ms: current.quantile_ms(0.5),
        p50_baseline_ms: baseline.quantile_ms(0.5),
    })
}

/// `(value, current count, baseline count)` for every recorded value of
/// either histogram, in increasing order.
fn merged_counts(a: &LatencyHistogram, b: &LatencyHistogram) -> Vec<(u64, u64, u64)> {
    let recorded = |h: &LatencyHistogram| -> Vec<(u64, u64)> {
        h.raw()
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    };
    let (xs, ys) = (recorded(a), recorded(b));
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(xs.len() + ys.len());
    while i < xs.len() || j < ys.len() {
        match (xs.get(i), ys.get(j)) {
            (Some(&(x, cx)), Some(&(y, cy))) if x == y => {
                out.push((x, cx, cy));
                i += 1;
                j += 1;
            }
            (Some(&(x, cx)), Some(&(y, _))) if x < y => {
                out.push((x, cx, 0));
                i += 1;
            }
            (Some(&(x, cx)), None) => {
                out.push((x, cx, 0));
                i += 1;
            }
            (_, Some(&(y, cy))) => {
                out.push((y, 0, cy));
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn standard_normal() -> Normal {
    // Mean 0, standard deviation 1 are valid parameters.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("N(0, 1) is a valid distribution"))
}

fn leaning(statistic: f64) -> Direction {
    if statistic > 0.0 {
        Direction::Worse
    } else if statistic < 0.0 {
        Direction::Better
    } else {
        Direction::Same
    }
}

/// Fisher's exact test of two error rates (current against baseline).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportions {
    pub errors_current: u64,
    pub n_current: u64,
    pub errors_baseline: u64,
    pub n_baseline: u64,
    /// Pooled two-proportion z, for display only (0 when no side has errors
    /// or every request failed); the p-values are Fisher's exact ones.
    pub z: f64,
    /// Two-sided: the sum of the probabilities of every table no more likely
    /// than the observed one (R's `fisher.test` convention).
    pub p_two_sided: f64,
    /// One-sided: the current error rate is higher.
    pub p_worse: f64,
    /// One-sided: the current error rate is lower.
    pub p_better: f64,
}

impl TwoProportions {
    pub fn rate_current(&self) -> f64 {
        ratio(self.errors_current, self.n_current)
    }

    pub fn rate_baseline(&self) -> f64 {
        ratio(self.errors_baseline, self.n_baseline)
    }

    /// Current minus baseline error rate (a fraction: 0.03 = 3 percentage points).
    pub fn difference(&self) -> f64 {
        self.rate_current() - self.rate_baseline()
    }

    /// Evidence whose effect is [`Self::difference`].
    pub fn evidence(&self) -> Evidence {
        Evidence {
            p_value: self.p_two_sided,
            leaning: leaning(self.difference()),
            effect: self.difference(),
            samples: (self.n_current, self.n_baseline),
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Compares `errors_current / n_current` with `errors_baseline / n_baseline`.
/// Error counts above their totals are clamped to the totals.
pub fn two_proportions(
    errors_current: u64,
    n_current: u64,
    errors_baseline: u64,
    n_baseline: u64,
) -> TwoProportions {
    let e1 = errors_current.min(n_current);
    let e2 = errors_baseline.min(n_baseline);
    let (p_two_sided, p_worse, p_better) =
        fisher_exact(e1, n_current, e2 + e1, n_current + n_baseline);
    TwoProportions {
        errors_current: e1,
        n_current,
        errors_baseline: e2,
        n_baseline,
        z: pooled_z(e1, n_current, e2, n_baseline),
        p_two_sided,
        p_worse,
        p_better,
    }
}

fn pooled_z(e1: u64, n1: u64, e2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 0.0;
    }
    let pooled = (e1 + e2) as f64 / (n1 + n2) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se > 0.0 {
        (ratio(e1, n1) - ratio(e2, n2)) / se
    } else {
        0.0
    }
}

/// Fisher's exact test: `k` errors among the `n` current requests, with
/// `errors` errors among all `total` requests. Under the null, `k` follows
/// the hypergeometric distribution; returns (two-sided, P(X ≥ k), P(X ≤ k)).
///
/// Probabilities are computed relative to the mode by the ratio of
/// consecutive terms, walking outward until terms fall below 1e-300 of the
/// mode: no factorials, no overflow, and only the O(√variance) terms that
/// matter even for millions of requests. A p-value below ~1e-300 is 0.
fn fisher_exact(k: u64, n: u64, errors: u64, total: u64) -> (f64, f64, f64) {
    let lo = (n + errors).saturating_sub(total);
    let hi = n.min(errors);
    if lo >= hi {
        return (1.0, 1.0, 1.0); // a single possible table
    }
    let others = total - errors; // successes overall
                                 // Ratios of consecutive hypergeometric terms, as f64 (counts fit exactly).
    let up = |j: u64| {
        ((errors - j) as f64 * (n - j) as f64) / ((j + 1) as f64 * (others + j + 1 - n) as f64)
    };
    let mode =
        (((n + 1) as f64 * (errors + 1) as f64 / (total + 2) as f64).floor() as u64).clamp(lo, hi);
    const NEGLIGIBLE: f64 = 1e-300;
    // weights[i] is the term for value `first + i`, relative to the mode's.
    let mut below = Vec::new();
    let mut w = 1.0;
    let mut j = mode;
    while j > lo {
        w /= up(j - 1);
        if w < NEGLIGIBLE {
            break;
        }
        below.push(w);
        j -= 1;
    }
    let first = j;
    below.reverse();
    let mut weights = below;
    weights.push(1.0);
    let mut w = 1.0;
    let mut j = mode;
    while j < hi {
        w *= up(j);
        if w < NEGLIGIBLE {
            break;
        }
        weights.push(w);
        j += 1;
    }
    let last = j;
    let sum: f64 = weights.iter().sum();
    let weight = |x: u64| -> f64 {
        if x < first || x > last {
            0.0
        } else {
            weights[(x - first) as usize]
        }
    };
    let tail_sum =
        |range: std::ops::RangeInclusive<u64>| -> f64 { range.map(weight).sum::<f64>() / sum };
    let p_worse = if k <= first { 1.0 } else { tail_sum(k..=last) };
    let p_better = if k >= last { 1.0 } else { tail_sum(first..=k) };
    // As R does: tables within a relative 1e-7 of the observed one count as
    // "as extreme", so floating-point noise cannot drop an equal table.
    let observed = weight(k) * (1.0 + 1e-7);
    let p_two = weights.iter().filter(|&&w| w <= observed).sum::<f64>() / sum;
    (p_two.min(1.0), p_worse.min(1.0), p_better.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn histogram(micros: impl IntoIterator<Item = u64>) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for us in micros {
            h.record(Duration::from_micros(us));
        }
        h
    }

    fn close(actual: f64, expected: f64, tolerance: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: {actual} vs expected {expected} ± {tolerance}"
        );
    }

    /// Current [1, 2, 2, 3] against baseline [2, 3, 4, 5], by hand:
    /// pooled ranks 1 | 2 2 2 → 3 | 3 3 → 5.5 | 4 → 7 | 5 → 8, so the
    /// current rank sum is 1 + 3 + 3 + 5.5 = 12.5 and U = 12.5 − 4·5/2 = 2.5.
    /// Ties: one group of 3 and one of 2, Σ(t³ − t) = 24 + 6 = 30, so
    /// σ² = 4·4/12 · (9 − 30/(8·7)) = 11.2857. With the continuity
    /// correction z = −(5.5 − 0.5)/3.35942 = −1.48835, p = 2Φ(−1.48835) = 0.13666.
    #[test]
    fn a_small_example_matches_the_hand_computation() {
        let mw = mann_whitney(&histogram([1, 2, 2, 3]), &histogram([2, 3, 4, 5]))
            .expect("both sides have samples");
        close(mw.u, 2.5, 1e-12, "U");
        close(mw.z, -1.488_351, 1e-5, "z");
        close(mw.p_two_sided, 0.136_66, 1e-4, "two-sided p");
        close(mw.p_better, 0.068_33, 1e-4, "one-sided p (current faster)");
        close(
            mw.rank_biserial,
            2.0 * 2.5 / 16.0 - 1.0,
            1e-12,
            "rank-biserial",
        );
        assert_eq!(mw.evidence().leaning, Direction::Better);
        assert!(mw.p_worse > 0.9, "p_worse {}", mw.p_worse);
    }

    #[test]
    fn u_counts_pairs_and_the_statistic_is_antisymmetric() {
        let a = histogram((1..=30).map(|i| i * 37 % 200 + 100));
        let b = histogram((1..=40).map(|i| i * 53 % 250 + 90));
        let ab = mann_whitney(&a, &b).expect("samples");
        let ba = mann_whitney(&b, &a).expect("samples");
        close(ab.u + ba.u, 30.0 * 40.0, 1e-9, "U1 + U2 = n1·n2");
        close(ab.z, -ba.z, 1e-12, "z");
        close(ab.p_two_sided, ba.p_two_sided, 1e-12, "two-sided p");
        close(ab.p_worse, ba.p_better, 1e-12, "one-sided p");
    }

    #[test]
    fn identical_histograms_give_p_one() {
        let h = histogram((0..1000).map(|i| 10_000 + (i * 7919) % 5000));
        let mw = mann_whitney(&h, &h).expect("samples");
        close(mw.p_two_sided, 1.0, 1e-12, "p");
        close(mw.rank_biserial, 0.0, 1e-12, "rank-biserial");
        assert_eq!(
            verdict(&mw.evidence(), &Rule::new(0.01)),
            Verdict::Decided(Direction::Same)
        );
    }

    #[test]
    fn all_samples_tied_is_no_evidence_rather_than_a_division_by_zero() {
        let mw = mann_whitney(&histogram([500; 100]), &histogram([500; 80])).expect("samples");
        assert_eq!(mw.z, 0.0);
        assert_eq!(mw.p_two_sided, 1.0);
    }

    #[test]
    fn a_50ms_shift_on_1000_samples_is_significant_and_measured() {
        let base: Vec<u64> = (0..1000).map(|i| 10_000 + (i * 7919) % 100_000).collect();
        let mw = mann_whitney(
            &histogram(base.iter().map(|us| us + 50_000)),
            &histogram(base.iter().copied()),
        )
        .expect("samples");
        assert!(mw.p_two_sided < 0.001, "p {}", mw.p_two_sided);
        assert!(mw.p_worse < 0.001, "p_worse {}", mw.p_worse);
        assert!(mw.z > 0.0 && mw.rank_biserial > 0.3, "{mw:?}");
        close(
            mw.p50_current_ms - mw.p50_baseline_ms,
            50.0,
            0.1,
            "p50 shift",
        );
        let v = verdict(&mw.evidence(), &Rule::new(0.01).with_min_effect(1.0));
        assert_eq!(v, Verdict::Decided(Direction::Worse));
    }

    #[test]
    fn an_empty_side_has_no_test() {
        assert!(mann_whitney(&histogram([]), &histogram([1, 2])).is_none());
        assert!(mann_whitney(&histogram([1, 2]), &histogram([])).is_none());
    }

    /// Fisher's tea-tasting table [[3, 1], [1, 3]]: one-sided p = 17/70,
    /// two-sided p = 34/70 (every textbook, and R's `fisher.test`).
    #[test]
    fn fisher_matches_the_tea_tasting_example() {
        let t = two_proportions(3, 4, 1, 4);
        close(t.p_worse, 17.0 / 70.0, 1e-12, "one-sided");
        close(t.p_two_sided, 34.0 / 70.0, 1e-12, "two-sided");
        close(t.p_better, 69.0 / 70.0, 1e-12, "other side");
    }

    #[test]
    fn zero_to_three_percent_errors_is_significant() {
        let t = two_proportions(30, 1000, 0, 1000);
        // Exact: Σ of hypergeometric terms as unlikely as 30/0, by big-integer arithmetic.
        close(t.p_two_sided, 1.493_665_6e-9, 1e-15, "two-sided p");
        close(t.difference(), 0.03, 1e-12, "difference");
        assert!(t.z > 5.0, "z {}", t.z);
        let v = verdict(&t.evidence(), &Rule::new(0.01).with_min_effect(0.001));
        assert_eq!(v, Verdict::Decided(Direction::Worse));
        // The other way round it is an improvement.
        let back = two_proportions(0, 1000, 30, 1000);
        assert_eq!(
            verdict(&back.evidence(), &Rule::new(0.01)),
            Verdict::Decided(Direction::Better)
        );
    }

    #[test]
    fn ten_against_twelve_errors_in_a_thousand_is_not() {
        let t = two_proportions(12, 1000, 10, 1000);
        close(t.p_two_sided, 0.830_879_4, 1e-6, "two-sided p");
        assert_eq!(
            verdict(&t.evidence(), &Rule::new(0.01)),
            Verdict::Decided(Direction::Same)
        );
    }

    #[test]
    fn no_errors_on_either_side_is_p_one() {
        let t = two_proportions(0, 1000, 0, 1000);
        assert_eq!((t.p_two_sided, t.p_worse, t.p_better), (1.0, 1.0, 1.0));
        assert_eq!(t.z, 0.0);
        let all = two_proportions(1000, 1000, 500, 500);
        assert_eq!(all.p_two_sided, 1.0);
    }

    #[test]
    fn fisher_stays_finite_on_a_million_requests() {
        let t = two_proportions(5_500, 1_000_000, 5_000, 1_000_000);
        assert!(
            t.p_two_sided > 0.0 && t.p_two_sided < 1e-3,
            "p {}",
            t.p_two_sided
        );
        let huge = two_proportions(1_000_000, 1_000_000, 0, 1_000_000);
        assert_eq!(huge.p_worse, 0.0, "far beyond 1e-300");
        assert_eq!(huge.p_two_sided, 0.0);
    }

    #[test]
    fn fewer_than_the_minimum_samples_is_inconclusive() {
        let t = two_proportions(10, 20, 0, 20);
        assert_eq!(
            verdict(&t.evidence(), &Rule::new(0.5)),
            Verdict::Inconclusive
        );
    }

    #[test]
    fn a_significant_effect_below_the_minimum_is_the_same() {
        let evidence = Evidence {
            p_value: 1e-9,
            leaning: Direction::Worse,
            effect: 0.3,
            samples: (100_000, 100_000),
        };
        let rule = Rule::new(0.01).with_min_effect(1.0);
        assert_eq!(verdict(&evidence, &rule), Verdict::Decided(Direction::Same));
        let bigger = Evidence {
            effect: 1.5,
            ..evidence
        };
        assert!(verdict(&bigger, &rule).is_worse());
    }
}
