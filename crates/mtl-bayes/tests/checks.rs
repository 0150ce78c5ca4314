//! Independent checks of the solvers: each result computed a second way (closed forms,
//! a dense n × n density, numerical integration), plus the typed errors for bad input.

use mtl_bayes::{
    bhattacharyya_coefficient, linear_posterior, logistic_posterior, Covariance, EmConfig,
    Gaussian, HierarchicalLinear, HierarchicalLogistic, PointModel,
};
use mtl_core::Error;
use mtl_data::{GroupedData, GroupedTask};
use ndarray::{array, Array1, Array2};

/// `log |a|` and `a⁻¹ b` by Gaussian elimination with partial pivoting: an algorithm
/// unrelated to the crate's Cholesky.
fn lu_logdet_solve(a: &Array2<f64>, b: &Array1<f64>) -> (f64, Array1<f64>) {
    let n = a.nrows();
    let mut m = a.clone();
    let mut x = b.clone();
    let mut logdet = 0.0;
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[[i, c]].abs().total_cmp(&m[[j, c]].abs()))
            .unwrap();
        if p != c {
            for k in 0..n {
                m.swap([c, k], [p, k]);
            }
            x.swap(c, p);
        }
        logdet += m[[c, c]].abs().ln();
        for r in c + 1..n {
            let f = m[[r, c]] / m[[c, c]];
            for k in c..n {
                m[[r, k]] -= f * m[[c, k]];
            }
            x[r] -= f * x[c];
        }
    }
    for r in (0..n).rev() {
        let mut s = x[r];
        for k in r + 1..n {
            s -= m[[r, k]] * x[k];
        }
        x[r] = s / m[[r, r]];
    }
    (logdet, x)
}

fn inverse_2x2(a: &Array2<f64>) -> Array2<f64> {
    let det = a[[0, 0]] * a[[1, 1]] - a[[0, 1]] * a[[1, 0]];
    array![[a[[1, 1]], -a[[0, 1]]], [-a[[1, 0]], a[[0, 0]]]] / det
}

fn small_problem() -> (Array2<f64>, Array1<f64>, Gaussian, f64) {
    let x = array![
        [1.0, -0.5],
        [1.0, 0.3],
        [1.0, 1.2],
        [1.0, 2.0],
        [1.0, -1.1],
        [1.0, 0.7]
    ];
    let y = array![0.2, 0.9, 1.7, 2.6, -0.4, 1.1];
    let prior = Gaussian::new(array![0.5, 0.8], array![[0.6, 0.15], [0.15, 0.3]]).unwrap();
    (x, y, prior, 0.25)
}

/// (a) The posterior in the precision form with explicit 2 × 2 inverses:
/// `V = (Σ⁻¹ + XᵀX/σ²)⁻¹`, `m = V(Σ⁻¹μ + Xᵀy/σ²)`; the crate uses the factor form
/// `L (I + LᵀXᵀXL/σ²)⁻¹ Lᵀ`.
#[test]
fn conjugate_posterior_matches_the_precision_form() {
    let (x, y, prior, s2) = small_problem();
    let (post, _) = linear_posterior(&x, &y, &prior, s2).unwrap();
    let prec = inverse_2x2(&prior.cov) + x.t().dot(&x) / s2;
    let v = inverse_2x2(&prec);
    let m = v.dot(&(inverse_2x2(&prior.cov).dot(&prior.mean) + x.t().dot(&y) / s2));
    for j in 0..2 {
        assert!((post.mean[j] - m[j]).abs() < 1e-10, "mean {j}");
        for k in 0..2 {
            assert!((post.cov[[j, k]] - v[[j, k]]).abs() < 1e-10, "cov {j},{k}");
        }
    }
}

/// (c) The log marginal likelihood against the dense density
/// `log N(y; Xμ, XΣXᵀ + σ²I)` with the 6 × 6 covariance factored by elimination.
#[test]
fn log_marginal_matches_the_dense_multivariate_normal() {
    let (x, y, prior, s2) = small_problem();
    let (_, log_ml) = linear_posterior(&x, &y, &prior, s2).unwrap();
    let n = y.len();
    let c = x.dot(&prior.cov).dot(&x.t()) + Array2::<f64>::eye(n) * s2;
    let r = &y - &x.dot(&prior.mean);
    let (logdet, sol) = lu_logdet_solve(&c, &r);
    let direct = -0.5 * (n as f64 * (2.0 * std::f64::consts::PI).ln() + logdet + r.dot(&sol));
    assert!((log_ml - direct).abs() < 1e-10, "{log_ml} vs {direct}");
}

/// (d) The Jaakkola–Jordan bound never exceeds `log ∫ N(β; μ, s²) Πᵢ p(yᵢ | β) dβ`,
/// integrated by the trapezoid rule on ±12 prior standard deviations, and comes within
/// a fraction of a nat of it.
#[test]
fn logistic_bound_is_below_the_integrated_marginal() {
    let x = array![[0.5], [-1.0], [1.5], [2.0], [-0.3], [0.8], [1.1]];
    let y = array![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0];
    for (mu, var) in [(0.0, 1.0), (0.7, 4.0), (-1.0, 0.25), (2.0, 9.0)] {
        let prior = Gaussian::new(array![mu], array![[var]]).unwrap();
        let (q, bound) = logistic_posterior(&x, &y, &prior, 1000).unwrap();
        let sd: f64 = f64::sqrt(var);
        let (lo, hi, k) = (mu - 12.0 * sd, mu + 12.0 * sd, 40_000);
        let h = (hi - lo) / k as f64;
        let log_f = |b: f64| {
            let mut s =
                -0.5 * ((b - mu) * (b - mu) / var + (2.0 * std::f64::consts::PI * var).ln());
            for (xi, yi) in x.column(0).iter().zip(&y) {
                let t = if *yi == 1.0 { xi * b } else { -xi * b };
                s -= (-t).exp().ln_1p();
            }
            s
        };
        let vals: Vec<f64> = (0..=k).map(|i| log_f(lo + i as f64 * h)).collect();
        let top = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = vals
            .iter()
            .enumerate()
            .map(|(i, v)| if i == 0 || i == k { 0.5 } else { 1.0 } * (v - top).exp())
            .sum();
        let exact = top + (sum * h).ln();
        assert!(
            bound <= exact + 1e-9,
            "bound {bound} above log p(y) {exact}"
        );
        assert!(
            exact - bound < 0.5,
            "bound {bound} far below log p(y) {exact}"
        );
        assert!(
            q.cov[[0, 0]] < var,
            "the posterior is narrower than the prior"
        );
    }
}

/// The Bhattacharyya coefficient of two 1-D Gaussians against its scalar formula.
#[test]
fn overlap_matches_the_scalar_formula() {
    let a = Gaussian::new(array![0.3], array![[0.5]]).unwrap();
    let b = Gaussian::new(array![1.1], array![[2.0]]).unwrap();
    let (v1, v2, d): (f64, f64, f64) = (0.5, 2.0, 0.8);
    let db = 0.25 * d * d / (v1 + v2) + 0.5 * ((v1 + v2) / (2.0 * (v1 * v2).sqrt())).ln();
    let bc = bhattacharyya_coefficient(&a, &b).unwrap();
    assert!((bc - (-db).exp()).abs() < 1e-12);
    assert!(bc < 1.0);
}

fn task(name: &str, x: Array2<f64>, y: Array1<f64>) -> GroupedTask {
    GroupedTask {
        name: name.into(),
        x,
        y,
    }
}

/// Tasks drawn from a known shared prior: intercepts around 1, slopes around 2, with a
/// few degenerate tasks (one row; a constant feature) that only the prior can resolve.
fn synthetic(binary: bool) -> GroupedData {
    let mut tasks = Vec::new();
    // A fixed pseudo-random sequence (no RNG crate needed): the golden-ratio sequence.
    let mut u = 0.1f64;
    let mut next = || {
        u = (u + 0.618_033_988_749_895) % 1.0;
        u
    };
    for t in 0..12 {
        let (a, b) = (1.0 + 0.6 * (next() - 0.5), 2.0 + 0.8 * (next() - 0.5));
        let n = if t == 0 { 1 } else { 30 };
        let mut x = Array2::zeros((n, 1));
        let mut y = Array1::zeros(n);
        for i in 0..n {
            x[[i, 0]] = if t == 1 { 0.5 } else { 2.0 * next() - 1.0 };
            let eta = a + b * x[[i, 0]];
            y[i] = if binary {
                f64::from(u8::from(next() < 1.0 / (1.0 + (-eta).exp())))
            } else {
                eta + 0.5 * (next() - 0.5)
            };
        }
        tasks.push(task(&format!("t{t}"), x, y));
    }
    GroupedData {
        feature_names: vec!["x".into()],
        target_name: "y".into(),
        binary,
        tasks,
    }
}

#[test]
fn em_never_lowers_the_marginal_likelihood_and_solves_degenerate_tasks() {
    let data = synthetic(false);
    for covariance in [Covariance::Full, Covariance::Diagonal] {
        let config = EmConfig {
            covariance,
            ..EmConfig::default()
        };
        let fit = HierarchicalLinear::fit(&data, &config).unwrap();
        assert!(fit.converged);
        for w in fit.trace.windows(2) {
            assert!(w[1] >= w[0] - 1e-9 * w[0].abs(), "EM went down: {w:?}");
        }
        assert!((fit.prior.mean[0] - 1.0).abs() < 0.3);
        assert!((fit.prior.mean[1] - 2.0).abs() < 0.4);
        // One row and a constant column: rank-deficient designs with finite posteriors
        // whose uncertainty stays above that of a full task.
        let full = fit.tasks[5].posterior.sd();
        for t in &fit.tasks[..2] {
            let sd = t.posterior.sd();
            assert!(sd.iter().all(|v| v.is_finite() && *v > 0.0));
            assert!(
                sd[1] > full[1],
                "task {} slope sd {} vs {}",
                t.name,
                sd[1],
                full[1]
            );
        }
    }
}

#[test]
fn a_new_task_starts_from_the_learned_prior() {
    let data = synthetic(false);
    let fit = HierarchicalLinear::fit(&data, &EmConfig::default()).unwrap();
    let none = fit
        .fit_new_task(&Array2::zeros((0, 1)), &Array1::zeros(0))
        .unwrap();
    assert_eq!(none, fit.prior);
    // Two rows of a task with intercept 1 and slope 2: the learned prior pulls the
    // slope toward 2 where a vague prior follows the two noisy rows.
    let x = array![[0.1], [0.2]];
    let y = array![1.0 + 0.2 + 0.3, 1.0 + 0.4 - 0.3];
    let learned = fit.fit_new_task(&x, &y).unwrap();
    let (vague, _) = linear_posterior(
        &array![[1.0, 0.1], [1.0, 0.2]],
        &y,
        &Gaussian::isotropic(2, 100.0),
        fit.noise_variance,
    )
    .unwrap();
    assert!((learned.mean[1] - 2.0).abs() < (vague.mean[1] - 2.0).abs());
}

#[test]
fn variational_em_raises_its_bound_and_finds_the_shared_mean() {
    let data = synthetic(true);
    // The shared variances here are small, where EM creeps; 300 iterations show the
    // monotone climb without waiting for it.
    let config = EmConfig {
        max_iter: 300,
        ..EmConfig::default()
    };
    let fit = HierarchicalLogistic::fit(&data, &config).unwrap();
    for w in fit.trace.windows(2) {
        assert!(w[1] >= w[0] - 1e-9 * w[0].abs(), "bound went down: {w:?}");
    }
    assert!(fit.prior.mean[1] > 0.5, "slope {}", fit.prior.mean[1]);
    let p = fit.predict_proba(3, &array![[-1.0], [1.0]]).unwrap();
    assert!(p[1] > p[0]);
}

#[test]
fn bad_input_is_a_typed_error_naming_the_task() {
    let mut data = synthetic(false);
    data.tasks[4].x[[2, 0]] = f64::NAN;
    match HierarchicalLinear::fit(&data, &EmConfig::default()) {
        Err(Error::NonFinite {
            task: Some(4),
            what,
            ..
        }) => assert!(what.contains("t4")),
        other => panic!("expected NonFinite for task 4, got {other:?}"),
    }

    let mut data = synthetic(false);
    data.tasks[3] = task("empty", Array2::zeros((0, 1)), Array1::zeros(0));
    let err = HierarchicalLinear::fit(&data, &EmConfig::default()).unwrap_err();
    assert!(err.to_string().contains("`empty`") && err.to_string().contains("no rows"));

    let data = synthetic(true);
    assert!(matches!(
        HierarchicalLinear::fit(&data, &EmConfig::default()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        HierarchicalLogistic::fit(&synthetic(false), &EmConfig::default()),
        Err(Error::Config(_))
    ));

    // Unpenalised least squares cannot fit a constant feature's slope: the error names
    // the task; any penalty makes it solvable.
    let data = synthetic(false);
    let err = PointModel::independent(&data, 0.0).unwrap_err();
    assert!(err.to_string().contains("task 0 (`t0`)"), "{err}");
    assert!(PointModel::independent(&data, 1.0).is_ok());

    let bad = EmConfig {
        cov_floor: -1.0,
        ..EmConfig::default()
    };
    assert!(matches!(
        HierarchicalLinear::fit(&synthetic(false), &bad),
        Err(Error::Config(_))
    ));
}

#[test]
fn the_report_round_trips_and_holds_what_it_says() {
    let data = synthetic(false);
    let fit = HierarchicalLinear::fit(&data, &EmConfig::default()).unwrap();
    let report = mtl_bayes::BayesReport::linear(&fit, &data, 100.0).unwrap();
    let back: mtl_bayes::BayesReport = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(back, report);
    // Pooling is the shared model with Σ = 0, so its maximised likelihood cannot beat
    // the shared one (up to the covariance floor).
    assert!(
        report.log_bf_vs_pooled > -1e-6,
        "{}",
        report.log_bf_vs_pooled
    );
    assert!(report.mean_overlap_shared > report.mean_overlap_independent);
    assert_eq!(report.tasks.len(), data.n_tasks());
    for t in &report.tasks {
        for j in 0..2 {
            assert!(t.lower[j] < t.mean[j] && t.mean[j] < t.upper[j]);
            // 95 %: mean ± 1.96 sd
            assert!((t.upper[j] - t.mean[j] - 1.959964 * t.sd[j]).abs() < 1e-5);
        }
    }
}

/// The leave-one-out choice of the ridge penalty against refitting without each row.
#[test]
fn leave_one_out_penalty_matches_refitting() {
    let data = synthetic(false);
    let grid = [0.01, 1.0, 100.0];
    let (_, chosen) = PointModel::independent_loo(&data, &grid).unwrap();
    let mut best = (f64::INFINITY, 0.0);
    for &lambda in &grid {
        let mut sse = 0.0;
        for t in data.tasks.iter().filter(|t| t.y.len() > 1) {
            for i in 0..t.y.len() {
                let keep: Vec<usize> = (0..t.y.len()).filter(|&r| r != i).collect();
                let one = GroupedData {
                    tasks: vec![t.select(&keep)],
                    ..data.clone()
                };
                let m = PointModel::independent(&one, lambda).unwrap();
                let p = m.predict(0, &t.select(&[i]).x).unwrap()[0];
                sse += (p - t.y[i]).powi(2);
            }
        }
        if sse < best.0 {
            best = (sse, lambda);
        }
    }
    assert_eq!(chosen, best.1);
    assert!(PointModel::independent_loo(&synthetic(true), &grid).is_err());
    assert!(PointModel::independent_loo(&data, &[]).is_err());
}
