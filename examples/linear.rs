//! Regularized multi-task linear models on real grouped data, each beside its
//! single-task and pooled baselines: the 65 London schools (exam scores, regression),
//! the 85 Minnesota radon counties (log radon, regression) and the 60 Bangladesh
//! contraception districts (logistic). Every model's hyper-parameters are chosen by
//! 5-fold cross-validation within each task on the training rows; a seeded 30 % of each
//! task's rows is held out for the table. Run with `cargo xtask demo linear`.

use mtl_data::GroupedData;
use mtl_linear::{
    ClusteredMtl, CrossValidation, FittedLinear, GraphLaplacian, Loss, MeanRegularized, Mtrl,
    MultiTaskLinear, Pooled, Scaling, SingleTask, SmallTasks, TraceNorm, L21,
};
use ndarray::Array2;
use std::time::Instant;

const SEED: u64 = 42;
const FOLDS: usize = 5;

/// A k-nearest-neighbour task graph over one number per task (symmetrised).
fn knn_graph(values: &[f64], k: usize) -> Array2<f64> {
    let t = values.len();
    let mut a = Array2::zeros((t, t));
    for s in 0..t {
        let mut order: Vec<usize> = (0..t).filter(|&u| u != s).collect();
        order.sort_by(|&i, &j| {
            (values[i] - values[s])
                .abs()
                .total_cmp(&(values[j] - values[s]).abs())
        });
        for &u in order.iter().take(k) {
            a[[s, u]] = 1.0;
            a[[u, s]] = 1.0;
        }
    }
    a
}

fn grid(values: &[f64]) -> Vec<f64> {
    values.to_vec()
}

struct Row {
    name: &'static str,
    chosen: String,
    eval: mtl_linear::Evaluation,
    seconds: f64,
}

fn select<M: MultiTaskLinear + Clone>(
    name: &'static str,
    cv: &CrossValidation,
    candidates: Vec<M>,
    train: &GroupedData,
    test: &GroupedData,
    loss: Loss,
) -> anyhow::Result<(Row, FittedLinear)> {
    let start = Instant::now();
    let r = cv.select(&candidates, train, loss)?;
    let eval = r.fitted.evaluate(test)?;
    eprintln!(
        "  {name}: {} chosen in {:.1} s",
        r.best.name(),
        start.elapsed().as_secs_f64()
    );
    Ok((
        Row {
            name,
            chosen: r.best.name(),
            eval,
            seconds: start.elapsed().as_secs_f64(),
        },
        r.fitted,
    ))
}

fn run(
    title: &str,
    data: GroupedData,
    graph_values: Option<Vec<f64>>,
    small: SmallTasks,
) -> anyhow::Result<()> {
    let (train, test) = data.split(0.3, SEED)?;
    run_split(title, train, test, graph_values, small)
}

fn run_split(
    title: &str,
    train: GroupedData,
    test: GroupedData,
    graph_values: Option<Vec<f64>>,
    small: SmallTasks,
) -> anyhow::Result<()> {
    let loss = Loss::for_data(&train);
    let scaling = Scaling::fit(&train)?;
    let (train, test) = (scaling.apply(&train)?, scaling.apply(&test)?);
    let cv = CrossValidation {
        folds: FOLDS,
        seed: SEED,
        small_tasks: small,
    };
    let t_n = train.n_tasks();
    let rows_per_task = train.n_rows() as f64 / t_n as f64;
    // Penalties multiply a sum over rows, so the grids scale with a task's rows.
    let scale = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x * rows_per_task).collect() };
    let lambdas = scale(&[0.01, 0.1, 1.0, 10.0, 100.0]);
    println!(
        "\n{title}: {} tasks, {} features, {} training and {} test rows ({} loss, {FOLDS}-fold CV, seed {SEED})",
        t_n,
        train.n_features(),
        train.n_rows(),
        test.n_rows(),
        loss.name()
    );
    let loose = 1e-6;
    let mut rows = Vec::new();
    rows.push(
        select(
            "single-task",
            &cv,
            grid(&lambdas)
                .into_iter()
                .map(|l| SingleTask { lambda: l })
                .collect(),
            &train,
            &test,
            loss,
        )?
        .0,
    );
    rows.push(
        select(
            "pooled",
            &cv,
            grid(&lambdas)
                .into_iter()
                .map(|l| Pooled { lambda: l })
                .collect(),
            &train,
            &test,
            loss,
        )?
        .0,
    );
    let mut mr = Vec::new();
    for &l in &lambdas {
        for &g in &scale(&[0.01, 1.0]) {
            mr.push(MeanRegularized::new(l, g));
        }
    }
    rows.push(select("mean-regularized", &cv, mr, &train, &test, loss)?.0);
    let norms = scale(&[0.1, 0.3, 1.0, 3.0, 10.0]);
    rows.push(
        select(
            "trace-norm",
            &cv,
            norms
                .iter()
                .map(|&l| TraceNorm {
                    tol: loose,
                    ..TraceNorm::new(l)
                })
                .collect(),
            &train,
            &test,
            loss,
        )?
        .0,
    );
    rows.push(
        select(
            "l21",
            &cv,
            norms
                .iter()
                .map(|&l| L21 {
                    tol: loose,
                    ..L21::new(l)
                })
                .collect(),
            &train,
            &test,
            loss,
        )?
        .0,
    );
    if let Some(values) = &graph_values {
        let adjacency = knn_graph(values, 5);
        let mut gl = Vec::new();
        for &l in &scale(&[0.01, 0.1, 1.0, 10.0]) {
            for &g in &scale(&[0.01, 1.0]) {
                gl.push(GraphLaplacian {
                    adjacency: adjacency.clone(),
                    lambda: l,
                    gamma: g,
                });
            }
        }
        rows.push(select("graph-laplacian (5-nn)", &cv, gl, &train, &test, loss)?.0);
    }
    let mut mtrl = Vec::new();
    for &l2 in &scale(&[0.1, 1.0, 10.0]) {
        mtrl.push(Mtrl {
            tol: loose,
            max_iter: 500,
            eps: 0.01,
            ..Mtrl::new(0.01 * rows_per_task, l2)
        });
    }
    rows.push(select("mtrl (learned graph)", &cv, mtrl, &train, &test, loss)?.0);
    let mut cl = Vec::new();
    for &r1 in &scale(&[0.1, 1.0, 10.0]) {
        cl.push(ClusteredMtl {
            tol: loose,
            max_iter: 500,
            ..ClusteredMtl::new(r1, r1, 3)
        });
    }
    rows.push(select("clustered (k=3)", &cv, cl, &train, &test, loss)?.0);

    let (single, pooled) = (rows[0].eval.row_mean, rows[1].eval.row_mean);
    let metric = if loss == Loss::Squared {
        "MSE"
    } else {
        "log-loss"
    };
    print!("| model | chosen by CV | test {metric} (rows) | test {metric} (task mean) | vs single-task | vs pooled |");
    if loss == Loss::Logistic {
        print!(" accuracy | AUC |");
    }
    println!(" seconds |");
    print!("|---|---|---:|---:|---:|---:|");
    if loss == Loss::Logistic {
        print!("---:|---:|");
    }
    println!("---:|");
    for r in &rows {
        print!(
            "| {} | {} | {:.4} | {:.4} | {:+.1} % | {:+.1} % |",
            r.name,
            r.chosen,
            r.eval.row_mean,
            r.eval.task_mean,
            100.0 * (r.eval.row_mean / single - 1.0),
            100.0 * (r.eval.row_mean / pooled - 1.0)
        );
        if loss == Loss::Logistic {
            print!(
                " {:.3} | {:.3} |",
                r.eval.accuracy.unwrap_or(f64::NAN),
                r.eval.auc.unwrap_or(f64::NAN)
            );
        }
        println!(" {:.1} |", r.seconds);
    }
    Ok(())
}

/// A task's mean of one feature column over its rows.
fn task_means(data: &GroupedData, feature: &str) -> anyhow::Result<Vec<f64>> {
    let j = data
        .feature_names
        .iter()
        .position(|f| f == feature)
        .ok_or_else(|| anyhow::anyhow!("no feature `{feature}`"))?;
    Ok(data
        .tasks
        .iter()
        .map(|t| t.x.column(j).mean().unwrap_or(0.0))
        .collect())
}

fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let mlmrev = mtl_data::data_root("mlmrev")?;
    let schools = mtl_data::london_schools(&mlmrev)?;
    let intake = task_means(&schools, "standLRT")?;
    run(
        "London schools (each school a task; schools with fewer than 5 training pupils train in every fold, validate in none; task graph: 5 nearest schools by mean intake score standLRT)",
        schools,
        Some(intake),
        SmallTasks::TrainOnly,
    )?;

    let radon_dir = mtl_data::data_root("radon")?;
    let radon = mtl_data::radon(&radon_dir)?;
    let uranium = mtl_data::radon_uranium(&radon_dir)?;
    run(
        "Minnesota radon (each county a task; counties with fewer than 5 training homes train in every fold, validate in none; task graph: 5 nearest counties by soil uranium)",
        radon,
        Some(uranium),
        SmallTasks::TrainOnly,
    )?;

    let contraception = mtl_data::contraception(&mlmrev)?;
    let (mut train, mut test) = contraception.split(0.3, SEED)?;
    // A district whose training rows hold one outcome (or an outcome in one row, which
    // a CV fold could leave out) has no finite unpenalised intercept: keep the others.
    let keep: Vec<bool> = train
        .tasks
        .iter()
        .map(|t| {
            let pos = t.y.iter().filter(|&&v| v == 1.0).count();
            pos >= 2 && t.y.len() - pos >= 2 && t.y.len() >= FOLDS
        })
        .collect();
    let dropped = keep.iter().filter(|k| !**k).count();
    for side in [&mut train, &mut test] {
        let mut k = keep.iter();
        side.tasks.retain(|_| *k.next().unwrap_or(&false));
    }
    let urban = task_means(&train, "urban=Y")?;
    run_split(
        &format!("Bangladesh contraception (each district a task; {dropped} districts with fewer than 2 training rows of an outcome or {FOLDS} rows left out; task graph: 5 nearest districts by urban share)"),
        train,
        test,
        Some(urban),
        SmallTasks::Refuse,
    )?;
    println!("\ntotal {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}
