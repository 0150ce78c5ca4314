//! Small-sample statistics for comparing training runs over seeds: Student's t
//! distribution (its CDF through the regularised incomplete beta function, its quantile
//! by bisection on the CDF), the mean with a t confidence interval, and the paired
//! t-test (Student, "The probable error of a mean", Biometrika 1908).
//!
//! With a handful of seeds per method the normal approximation is far off (the 97.5 %
//! quantile is 4.30 at two degrees of freedom, not 1.96), hence the t distribution.
//! The numerical recipes are the classical ones: Lanczos' log-gamma (g = 7, nine
//! coefficients) and the continued fraction of I_x(a, b) evaluated by the modified Lentz
//! method.

use serde::{Deserialize, Serialize};

/// ln Γ(x) for x > 0 (Lanczos, g = 7; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1].
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    // The fraction converges fast on this side of the mean; the symmetry
    // I_x(a, b) = 1 − I_{1−x}(b, a) covers the other.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` > 0 degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2).
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The quantile t_{p, df}: the t with P(T ≤ t) = p, for p in (0, 1).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(p > 0.0 && p < 1.0 && df > 0.0) {
        return f64::NAN;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    // The CDF is increasing: bracket, then bisect to the last bit.
    let (mut lo, mut hi) = (0.0, 1.0);
    while t_cdf(hi, df) < p {
        lo = hi;
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The mean of some runs with its two-sided 95 % confidence interval from Student's t
/// over the runs (mean ± t_{0.975, n−1} · s / √n).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (n − 1 in the denominator; 0 for one value).
    pub std: f64,
    /// The interval's half-width; `None` for a single value, which has no spread.
    pub half_width: Option<f64>,
    /// The number of values.
    pub n: usize,
}

impl MeanCi {
    /// The mean and 95 % interval of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Some(MeanCi {
                mean,
                std: 0.0,
                half_width: None,
                n,
            });
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std = var.sqrt();
        let half = t_quantile(0.975, (n - 1) as f64) * std / (n as f64).sqrt();
        Some(MeanCi {
            mean,
            std,
            half_width: Some(half),
            n,
        })
    }
}

/// A paired t-test of `a` against `b` (the same seeds, in the same order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// The mean of the differences a − b.
    pub mean_difference: f64,
    /// The t statistic, mean(d) / (s_d / √n).
    pub t: f64,
    /// The degrees of freedom, n − 1.
    pub df: usize,
    /// The two-sided p-value, 2 · P(T > |t|).
    pub p_value: f64,
}

/// The two-sided paired t-test of H₀: mean(a − b) = 0. `None` with fewer than two
/// pairs or unequal lengths. When every difference is the same, s_d = 0: the p-value is
/// 1 for identical runs and 0 for a constant non-zero difference.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<PairedTest> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let ci = MeanCi::of(&d)?;
    let n = d.len();
    let df = n - 1;
    let se = ci.std / (n as f64).sqrt();
    let (t, p_value) = if se > 0.0 {
        let t = ci.mean / se;
        (t, (2.0 * (1.0 - t_cdf(t.abs(), df as f64))).clamp(0.0, 1.0))
    } else if ci.mean == 0.0 {
        (0.0, 1.0)
    } else {
        (ci.mean.signum() * f64::INFINITY, 0.0)
    };
    Some(PairedTest {
        mean_difference: ci.mean,
        t,
        df,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95 % critical values from standard tables.
        for (df, q) in [
            (1.0, 12.706_204_736),
            (2.0, 4.302_652_730),
            (4.0, 2.776_445_105),
            (9.0, 2.262_157_163),
            (30.0, 2.042_272_456),
        ] {
            let t = t_quantile(0.975, df);
            assert!((t - q).abs() < 1e-6, "df {df}: {t} vs {q}");
        }
        // The Cauchy case in closed form: t_{p,1} = tan(π(p − ½)).
        let p: f64 = 0.9;
        let exact = (std::f64::consts::PI * (p - 0.5)).tan();
        assert!((t_quantile(p, 1.0) - exact).abs() < 1e-9);
        assert!((t_quantile(0.025, 4.0) + 2.776_445_105).abs() < 1e-6);
        // Many degrees of freedom approach the normal 1.959964.
        assert!((t_quantile(0.975, 1e6) - 1.959_964).abs() < 1e-4);
    }

    #[test]
    fn t_cdf_in_closed_form() {
        // df = 2: F(t) = ½ + t / (2 √(2 + t²)).
        for t in [-3.0, -0.5, 0.0, 0.7, 2.5] {
            let exact = 0.5 + t / (2.0 * (2.0f64 + t * t).sqrt());
            assert!((t_cdf(t, 2.0) - exact).abs() < 1e-12, "t {t}");
        }
    }

    #[test]
    fn mean_and_interval_by_hand() {
        // 1, 2, 3, 4: mean 2.5, s = √(5/3), half-width t_{.975,3} · s / 2.
        let ci = MeanCi::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(ci.mean, 2.5);
        assert!((ci.std - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        let half = 3.182_446_305 * (5.0f64 / 3.0).sqrt() / 2.0;
        assert!((ci.half_width.unwrap() - half).abs() < 1e-6);
        let one = MeanCi::of(&[7.0]).unwrap();
        assert_eq!((one.mean, one.half_width), (7.0, None));
        assert!(MeanCi::of(&[]).is_none());
    }

    #[test]
    fn paired_test_by_hand() {
        // Differences 1, 2, 3: mean 2, s_d = 1, t = 2 / (1/√3) = 2√3 ≈ 3.4641 on 2 df.
        // With df = 2, P(T > t) = ½ − t / (2√(2 + t²)), so p = 1 − t/√(2 + t²) = 1 − √(12/14).
        let a = [11.0, 12.0, 13.0];
        let b = [10.0, 10.0, 10.0];
        let r = paired_t_test(&a, &b).unwrap();
        assert_eq!(r.df, 2);
        assert!((r.mean_difference - 2.0).abs() < 1e-12);
        assert!((r.t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        let p = 1.0 - (12.0f64 / 14.0).sqrt();
        assert!((r.p_value - p).abs() < 1e-10, "{} vs {p}", r.p_value);
        // Swapped: the same p, the opposite sign.
        let s = paired_t_test(&b, &a).unwrap();
        assert!((s.t + r.t).abs() < 1e-12 && (s.p_value - r.p_value).abs() < 1e-12);
        assert_eq!(paired_t_test(&a, &a).unwrap().p_value, 1.0);
        assert_eq!(
            paired_t_test(&[1.0, 2.0], &[0.0, 1.0]).unwrap().p_value,
            0.0
        );
        assert!(paired_t_test(&[1.0], &[0.0]).is_none());
        assert!(paired_t_test(&[1.0, 2.0], &[0.0]).is_none());
    }
}
