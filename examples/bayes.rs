//! Hierarchical Bayesian multi-task regression on real grouped data: Minnesota radon
//! (each county a task), the London schools exams (each school a task) and the
//! Bangladesh contraception survey (each district a logistic task), each against
//! single-task (independent) and pooled baselines.
//!
//!     cargo xtask demo bayes            # or: cargo run --release --example bayes
//!     cargo xtask demo bayes --out target/bayes --seed 0
//!
//! For every data set it holds out 20 % of each task's rows, fits the models on the rest
//! and prints held-out error, the log Bayes factors of the shared prior, the posterior
//! overlap between tasks with and without sharing, and a few tasks' posteriors. On radon
//! it also shows posterior-to-prior transfer: counties left out of the fit, predicted
//! from a few of their homes under the learned prior or a vague one. Each model's report
//! is written as JSON under `--out`.

use anyhow::{bail, Context, Result};
use mtl::data::{contraception, data_root, london_schools, radon, GroupedData, GroupedTask};
use mtl_bayes::{
    bhattacharyya_coefficient, independent_linear_posteriors, linear_posterior, score, BayesReport,
    Covariance, EmConfig, Gaussian, HierarchicalLinear, HierarchicalLogistic, PointModel, Score,
};
use std::path::PathBuf;
use std::time::Instant;

/// The ridge / logistic penalty of the baselines: on these features (0/1 indicators and
/// standardised scores) λ = 1 is a prior standard deviation of one unit of the target
/// per unit of feature, mild against tasks of tens of rows.
const LAMBDA: f64 = 1.0;
/// The penalties leave-one-out chooses from for the second independent baseline.
const LOO_GRID: [f64; 9] = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];
/// The variance of the independent models' vague prior (standard deviation 10).
const VAGUE: f64 = 100.0;

struct Args {
    out: PathBuf,
    seed: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        out: PathBuf::from("target/bayes"),
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => a.out = PathBuf::from(value()?),
            "--seed" => a.seed = value()?.parse()?,
            other => bail!("unknown option `{other}` (known: --out DIR, --seed N)"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = args()?;
    std::fs::create_dir_all(&a.out)?;
    let started = Instant::now();

    let radon_data = radon(data_root("radon")?)?;
    regression(
        "radon (85 counties, log radon ~ floor)",
        &radon_data,
        &a,
        "radon",
    )?;
    transfer(&radon_data, a.seed)?;

    let exam = london_schools(data_root("mlmrev")?)?;
    regression(
        "London schools (65 schools, normexam ~ standLRT + sex + vr + intake)",
        &exam,
        &a,
        "schools",
    )?;

    let contra = contraception(data_root("mlmrev")?)?;
    logistic(
        "contraception (60 districts, use ~ age + livch + urban)",
        &contra,
        &a,
    )?;
    println!("\ndone in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn row(name: &str, s: &Score) {
    match (s.accuracy_rows, s.accuracy_tasks) {
        (Some(ar), Some(at)) => println!(
            "  {name:<26} {:>10.4} {:>10.4} {:>9.4} {:>9.4}",
            s.loss_rows, s.loss_tasks, ar, at
        ),
        _ => println!("  {name:<26} {:>10.4} {:>10.4}", s.loss_rows, s.loss_tasks),
    }
}

fn summary(report: &BayesReport) {
    let e = &report.evidence;
    println!(
        "  log marginal likelihood: shared {:.2}{}, pooled {:.2}, independent {:.2} (prior N(0, {}·I))",
        e.shared,
        if report.model == "logistic" { " (JJ bound)" } else { "" },
        e.pooled,
        e.independent,
        e.vague_variance
    );
    println!(
        "  log Bayes factor: shared vs pooled {:+.2}, shared vs independent {:+.2}",
        report.log_bf_vs_pooled, report.log_bf_vs_independent
    );
    println!(
        "  mean pairwise posterior overlap (Bhattacharyya): shared {:.3}, independent {:.3}",
        report.mean_overlap_shared, report.mean_overlap_independent
    );
    let names = &report.coefficient_names;
    print!("  prior mean μ:");
    for (n, m) in names.iter().zip(&report.prior_mean) {
        print!(" {n} {m:+.3}");
    }
    print!("\n  prior sd √diag Σ:");
    for (j, n) in names.iter().enumerate() {
        print!(" {n} {:.3}", report.prior_cov[j][j].sqrt());
    }
    println!(
        "\n  EM: {} iterations, converged {}",
        report.iterations, report.converged
    );
}

fn regression(title: &str, data: &GroupedData, a: &Args, file: &str) -> Result<()> {
    println!("\n== {title}");
    let (train, test) = data.split(0.2, a.seed)?;
    let t0 = Instant::now();
    let full = HierarchicalLinear::fit(&train, &EmConfig::default())?;
    let diag = HierarchicalLinear::fit(
        &train,
        &EmConfig {
            covariance: Covariance::Diagonal,
            ..EmConfig::default()
        },
    )?;
    let fit_s = t0.elapsed().as_secs_f64();
    let indep = PointModel::independent(&train, LAMBDA)?;
    let (indep_loo, lambda_loo) = PointModel::independent_loo(&train, &LOO_GRID)?;
    let pooled = PointModel::pooled(&train, LAMBDA)?;
    println!(
        "  held-out MSE ({} rows in {} tasks; 20 % of each task's rows)",
        test.n_rows(),
        test.tasks.iter().filter(|t| !t.y.is_empty()).count()
    );
    println!("  {:<26} {:>10} {:>10}", "model", "per row", "per task");
    row(
        &format!("independent ridge λ={LAMBDA}"),
        &score(&test, |k, x| indep.predict(k, x))?,
    );
    row(
        &format!("independent ridge LOO λ={lambda_loo}"),
        &score(&test, |k, x| indep_loo.predict(k, x))?,
    );
    row(
        &format!("pooled ridge λ={LAMBDA}"),
        &score(&test, |k, x| pooled.predict(k, x))?,
    );
    row(
        "hierarchical, full Σ",
        &score(&test, |k, x| full.predict(k, x))?,
    );
    row(
        "hierarchical, diagonal Σ",
        &score(&test, |k, x| diag.predict(k, x))?,
    );
    println!("  (both hierarchical fits: {fit_s:.2} s)");
    let report = BayesReport::linear(&full, &train, VAGUE)?;
    summary(&report);
    shrinkage(&train, &full, &indep)?;
    std::fs::write(a.out.join(format!("{file}.json")), report.to_json()?)?;
    Ok(())
}

/// The partial-pooling picture: the tasks with the fewest rows move furthest from their
/// own estimate toward μ and keep the widest intervals; large tasks barely move.
fn shrinkage(train: &GroupedData, fit: &HierarchicalLinear, indep: &PointModel) -> Result<()> {
    let mut order: Vec<usize> = (0..train.n_tasks()).collect();
    order.sort_by_key(|&k| (train.tasks[k].y.len(), k));
    let picks: Vec<usize> = order[..3]
        .iter()
        .chain(&order[order.len() - 2..])
        .copied()
        .collect();
    println!(
        "  intercepts, fewest and most rows: task, rows, independent, posterior mean ± sd [95 % interval]"
    );
    for k in picks {
        let t = &fit.tasks[k];
        let (lo, hi) = t.posterior.interval(0.95);
        println!(
            "    {:<14} {:>4} {:>+8.3}   {:>+7.3} ± {:.3} [{:+.3}, {:+.3}]",
            t.name,
            t.rows,
            indep.coefficients[k][0],
            t.posterior.mean[0],
            t.posterior.sd()[0],
            lo[0],
            hi[0]
        );
    }
    let indep_post = independent_linear_posteriors(train, VAGUE)?;
    let (s, l) = (order[0], order[order.len() - 1]);
    let (s2, l2) = (order[1], order[order.len() - 2]);
    for (i, j) in [(s, s2), (s, l), (l, l2)] {
        println!(
            "    overlap {} ({} rows) – {} ({} rows): shared {:.3}, independent {:.3}",
            train.tasks[i].name,
            train.tasks[i].y.len(),
            train.tasks[j].name,
            train.tasks[j].y.len(),
            bhattacharyya_coefficient(&fit.tasks[i].posterior, &fit.tasks[j].posterior)?,
            bhattacharyya_coefficient(&indep_post[i], &indep_post[j])?
        );
    }
    Ok(())
}

/// Posterior-to-prior transfer on radon: the 10 counties with the most homes are left
/// out of the fit; each is then fitted from `k` of its homes (a seeded draw) under the
/// learned prior N(μ, Σ), under the vague prior N(0, 100 I) (both with the learned σ²),
/// or not at all (the pooled fit of the other counties), and scored on its other homes.
fn transfer(data: &GroupedData, seed: u64) -> Result<()> {
    let mut order: Vec<usize> = (0..data.n_tasks()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse((data.tasks[k].y.len(), usize::MAX - k)));
    let held: Vec<usize> = order[..10].to_vec();
    let rest = GroupedData {
        tasks: (0..data.n_tasks())
            .filter(|k| !held.contains(k))
            .map(|k| data.tasks[k].clone())
            .collect(),
        ..data.clone()
    };
    let fit = HierarchicalLinear::fit(&rest, &EmConfig::default())?;
    let pooled = PointModel::pooled(&rest, LAMBDA)?;
    println!(
        "\n  transfer to 10 radon counties left out of the fit ({} homes): held-out MSE of the other homes",
        held.iter().map(|&k| data.tasks[k].y.len()).sum::<usize>()
    );
    println!(
        "  {:>12} {:>14} {:>14} {:>14}",
        "homes used", "learned prior", "vague prior", "pooled"
    );
    for k_rows in [1usize, 2, 3, 5, 10] {
        let (mut se_l, mut se_v, mut se_p, mut n) = (0.0, 0.0, 0.0, 0usize);
        for &t in &held {
            let task = &data.tasks[t];
            // A seeded choice of the k rows: split off all but k as the "test" side.
            let one = GroupedData {
                tasks: vec![task.clone()],
                ..data.clone()
            };
            let frac = 1.0 - k_rows as f64 / task.y.len() as f64;
            let (few, others) = one.split(frac, seed)?;
            let (few, others): (&GroupedTask, &GroupedTask) = (&few.tasks[0], &others.tasks[0]);
            let learned = fit.fit_new_task(&few.x, &few.y)?;
            let xd = with_ones(&few.x);
            let (vague, _) = linear_posterior(
                &xd,
                &few.y,
                &Gaussian::isotropic(xd.ncols(), VAGUE),
                fit.noise_variance,
            )?;
            let xo = with_ones(&others.x);
            let p_l = xo.dot(&learned.mean);
            let p_v = xo.dot(&vague.mean);
            let p_p = pooled.predict(0, &others.x)?;
            for i in 0..others.y.len() {
                let y = others.y[i];
                se_l += (p_l[i] - y).powi(2);
                se_v += (p_v[i] - y).powi(2);
                se_p += (p_p[i] - y).powi(2);
            }
            n += others.y.len();
        }
        let n = n as f64;
        println!(
            "  {:>12} {:>14.4} {:>14.4} {:>14.4}",
            k_rows,
            se_l / n,
            se_v / n,
            se_p / n
        );
    }
    Ok(())
}

fn with_ones(x: &ndarray::Array2<f64>) -> ndarray::Array2<f64> {
    let mut xd = ndarray::Array2::ones((x.nrows(), x.ncols() + 1));
    xd.slice_mut(ndarray::s![.., 1..]).assign(x);
    xd
}

fn logistic(title: &str, data: &GroupedData, a: &Args) -> Result<()> {
    println!("\n== {title}");
    let (train, test) = data.split(0.2, a.seed)?;
    let t0 = Instant::now();
    let fit = HierarchicalLogistic::fit(&train, &EmConfig::default())?;
    let diag = HierarchicalLogistic::fit(
        &train,
        &EmConfig {
            covariance: Covariance::Diagonal,
            ..EmConfig::default()
        },
    )?;
    let fit_s = t0.elapsed().as_secs_f64();
    let indep = PointModel::independent(&train, LAMBDA)?;
    let pooled = PointModel::pooled(&train, LAMBDA)?;
    println!(
        "  held-out log-loss and accuracy ({} rows in {} tasks)",
        test.n_rows(),
        test.tasks.iter().filter(|t| !t.y.is_empty()).count()
    );
    println!(
        "  {:<26} {:>10} {:>10} {:>9} {:>9}",
        "model", "loss/row", "loss/task", "acc/row", "acc/task"
    );
    row(
        &format!("independent logistic λ={LAMBDA}"),
        &score(&test, |k, x| indep.predict(k, x))?,
    );
    row(
        &format!("pooled logistic λ={LAMBDA}"),
        &score(&test, |k, x| pooled.predict(k, x))?,
    );
    row(
        "hierarchical, full Σ",
        &score(&test, |k, x| fit.predict_proba(k, x))?,
    );
    row(
        "hierarchical, diagonal Σ",
        &score(&test, |k, x| diag.predict_proba(k, x))?,
    );
    // The posterior mean alone (no averaging over the posterior), to separate what the
    // estimates do from what the predictive averaging does.
    let plug_in = |k: usize, x: &ndarray::Array2<f64>| {
        let eta = with_ones(x).dot(&fit.tasks[k].posterior.mean);
        Ok(eta.mapv(|e| 1.0 / (1.0 + (-e).exp())))
    };
    row("hierarchical, full, plug-in", &score(&test, plug_in)?);
    println!("  (both hierarchical fits: {fit_s:.2} s)");
    let report = BayesReport::logistic(&fit, &train, VAGUE)?;
    summary(&report);
    let mut order: Vec<usize> = (0..train.n_tasks()).collect();
    order.sort_by_key(|&k| (train.tasks[k].y.len(), k));
    println!("  intercepts (log-odds), fewest and most rows: task, rows, independent, posterior mean ± sd");
    for &k in order[..2].iter().chain(&order[order.len() - 2..]) {
        let t = &fit.tasks[k];
        println!(
            "    {:<6} {:>4} {:>+8.3}   {:>+7.3} ± {:.3}",
            t.name,
            t.rows,
            indep.coefficients[k][0],
            t.posterior.mean[0],
            t.posterior.sd()[0]
        );
    }
    std::fs::write(a.out.join("contraception.json"), report.to_json()?)?;
    Ok(())
}
