//! Every solver against an independent solution of the same objective: CVXPY with the
//! Clarabel interior-point solver, run by `reference/solve.py`, whose problems and
//! answers are committed in `reference/reference.json`. Weights, intercepts and the
//! objective must agree to 1e-6.

use mtl_data::{GroupedData, GroupedTask};
use mtl_linear::{
    ClusteredMtl, FittedLinear, GraphLaplacian, Loss, MeanRegularized, Mtrl, MultiTaskLinear,
    SingleTask, TraceNorm, L21,
};
use ndarray::{Array1, Array2};
use serde_json::Value;

struct Case {
    name: String,
    model: String,
    loss: Loss,
    params: Value,
    data: GroupedData,
    weights: Array2<f64>,
    intercepts: Array1<f64>,
    objective: f64,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn cases() -> Vec<Case> {
    let text = include_str!("reference/reference.json");
    let root: Value = serde_json::from_str(text).expect("reference.json parses");
    root["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let loss = if c["loss"] == "logistic" {
                Loss::Logistic
            } else {
                Loss::Squared
            };
            let tasks = c["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .enumerate()
                .map(|(k, t)| GroupedTask {
                    name: format!("t{k}"),
                    x: matrix(&t["x"]),
                    y: Array1::from(floats(&t["y"])),
                })
                .collect::<Vec<_>>();
            let d = tasks[0].x.ncols();
            Case {
                name: c["name"].as_str().expect("name").to_string(),
                model: c["model"].as_str().expect("model").to_string(),
                loss,
                params: c["params"].clone(),
                data: GroupedData {
                    feature_names: (0..d).map(|j| format!("x{j}")).collect(),
                    target_name: "y".into(),
                    binary: loss == Loss::Logistic,
                    tasks,
                },
                weights: matrix(&c["weights"]),
                intercepts: Array1::from(floats(&c["intercepts"])),
                objective: c["objective"].as_f64().expect("objective"),
            }
        })
        .collect()
}

fn fit(case: &Case) -> FittedLinear {
    let p = |k: &str| {
        case.params[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: no {k}", case.name))
    };
    let tight = 1e-12;
    let result = match case.model.as_str() {
        "trace_norm" => TraceNorm {
            tol: tight,
            max_iter: 200_000,
            ..TraceNorm::new(p("lambda"))
        }
        .fit(&case.data, case.loss),
        "l21" => L21 {
            tol: tight,
            max_iter: 200_000,
            ..L21::new(p("lambda"))
        }
        .fit(&case.data, case.loss),
        "mean_regularized" => {
            MeanRegularized::new(p("lambda"), p("gamma")).fit(&case.data, case.loss)
        }
        "single_task" => SingleTask {
            lambda: p("lambda"),
        }
        .fit(&case.data, case.loss),
        "graph_laplacian" => GraphLaplacian {
            adjacency: matrix(&case.params["adjacency"]),
            lambda: p("lambda"),
            gamma: p("gamma"),
        }
        .fit(&case.data, case.loss),
        "mtrl" => Mtrl {
            eps: p("eps"),
            tol: tight,
            max_iter: 100_000,
            ..Mtrl::new(p("lambda1"), p("lambda2"))
        }
        .fit(&case.data, case.loss),
        "clustered" => ClusteredMtl {
            clusters: p("clusters"),
            tol: tight,
            max_iter: 100_000,
            ..ClusteredMtl::new(p("rho1"), p("rho2"), 1)
        }
        .fit(&case.data, case.loss),
        other => panic!("unknown model {other}"),
    };
    result.unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

#[test]
fn every_solver_matches_the_convex_reference() {
    let cases = cases();
    assert_eq!(cases.len(), 14, "seven models, two losses");
    let mut failures = Vec::new();
    for case in &cases {
        let fitted = fit(case);
        let max_abs = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| {
            a.iter()
                .zip(b)
                .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
        };
        let dw = max_abs(
            fitted
                .weights
                .view()
                .into_shape_with_order(fitted.weights.len())
                .unwrap(),
            case.weights
                .view()
                .into_shape_with_order(case.weights.len())
                .unwrap(),
        );
        let db = max_abs(fitted.intercepts.view(), case.intercepts.view());
        let dobj = (fitted.objective - case.objective).abs();
        let line = format!(
            "{:>28}: |ΔW| {dw:.1e} |Δb| {db:.1e} |Δobj| {dobj:.1e} ({} iterations)",
            case.name, fitted.iterations
        );
        println!("{line}");
        if !(dw <= 1e-6 && db <= 1e-6 && dobj <= 1e-6) {
            failures.push(line);
        }
    }
    assert!(
        failures.is_empty(),
        "off the reference by more than 1e-6:\n{}",
        failures.join("\n")
    );
}
