//! Bad input gets a typed error that names the task at fault; regularisation keeps
//! rank-deficient designs solvable; and the single-task ridge matches its closed form.

use mtl_core::Error;
use mtl_data::{GroupedData, GroupedTask};
use mtl_linear::{
    ClusteredMtl, CrossValidation, GraphLaplacian, Loss, MeanRegularized, MultiTaskLinear, Pooled,
    SingleTask, TraceNorm, L21,
};
use nalgebra::{DMatrix, DVector};
use ndarray::{array, Array1, Array2};

/// Two small tasks, `a` and `b`, over two features.
fn data() -> GroupedData {
    let a = GroupedTask {
        name: "a".into(),
        x: array![[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [3.0, 0.0], [1.5, 2.0]],
        y: array![1.0, 2.5, 2.0, 4.0, 3.0],
    };
    let b = GroupedTask {
        name: "b".into(),
        x: array![[1.0, 1.0], [-1.0, 2.0], [0.5, 0.0], [2.0, 1.0], [0.0, -1.0]],
        y: array![0.0, -2.0, 1.5, 1.0, 0.5],
    };
    GroupedData {
        feature_names: vec!["x1".into(), "x2".into()],
        target_name: "y".into(),
        binary: false,
        tasks: vec![a, b],
    }
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn an_empty_task_is_named() {
    let mut d = data();
    d.tasks[1].x = Array2::zeros((0, 2));
    d.tasks[1].y = Array1::zeros(0);
    let e = MeanRegularized::new(1.0, 1.0)
        .fit(&d, Loss::Squared)
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)) && message(e).contains("task `b`"));
}

#[test]
fn no_tasks_is_a_task_count_error() {
    let mut d = data();
    d.tasks.clear();
    let e = TraceNorm::new(1.0).fit(&d, Loss::Squared).unwrap_err();
    assert!(matches!(e, Error::TaskCount { .. }), "{e}");
}

#[test]
fn non_finite_values_are_named_with_task_and_row() {
    let mut d = data();
    d.tasks[1].x[[3, 1]] = f64::NAN;
    let e = L21::new(1.0).fit(&d, Loss::Squared).unwrap_err();
    match &e {
        Error::NonFinite {
            task: Some(1),
            what,
            ..
        } => {
            assert!(
                what.contains("task `b`") && what.contains("row 3") && what.contains("x2"),
                "{e}"
            )
        }
        other => panic!("expected NonFinite for task 1, got {other}"),
    }
    let mut d = data();
    d.tasks[0].y[2] = f64::INFINITY;
    let e = SingleTask { lambda: 1.0 }
        .fit(&d, Loss::Squared)
        .unwrap_err();
    assert!(matches!(e, Error::NonFinite { task: Some(0), .. }), "{e}");
}

#[test]
fn a_task_with_fewer_rows_than_folds_is_named() {
    let e = CrossValidation::new(6, 1)
        .select(&[SingleTask { lambda: 1.0 }], &data(), Loss::Squared)
        .unwrap_err();
    assert!(message(e).contains("task `a`"));
    // With as many folds as rows it runs, and picks the better of two λ.
    let r = CrossValidation::new(5, 1)
        .select(
            &[SingleTask { lambda: 1e6 }, SingleTask { lambda: 0.1 }],
            &data(),
            Loss::Squared,
        )
        .unwrap();
    assert_eq!(r.best.lambda, 0.1, "{:?}", r.scores);
}

#[test]
fn a_rank_deficient_design_is_solvable_with_a_penalty_and_named_without() {
    // Task `b`'s second column is twice its first: [1, X] is rank-deficient.
    let mut d = data();
    let first = d.tasks[1].x.column(0).to_owned();
    d.tasks[1].x.column_mut(1).assign(&(&first * 2.0));
    let e = SingleTask { lambda: 0.0 }
        .fit(&d, Loss::Squared)
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(message(e).contains("task `b`"));
    // Any positive penalty, or coupling to task `a` with a full-rank design, solves it.
    for fit in [
        SingleTask { lambda: 0.5 }.fit(&d, Loss::Squared),
        MeanRegularized::new(0.5, 0.0).fit(&d, Loss::Squared),
        GraphLaplacian {
            adjacency: array![[0.0, 1.0], [1.0, 0.0]],
            lambda: 1.0,
            gamma: 0.0,
        }
        .fit(&d, Loss::Squared),
    ] {
        let f = fit.unwrap();
        assert!(f.weights.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn logistic_targets_must_be_binary_and_of_both_classes() {
    let e = SingleTask { lambda: 1.0 }
        .fit(&data(), Loss::Logistic)
        .unwrap_err();
    assert!(message(e).contains("0/1"));
    let mut d = data();
    for t in &mut d.tasks {
        t.y = t.y.mapv(|v| f64::from(u8::from(v > 1.0)));
    }
    d.tasks[1].y.fill(0.0);
    let e = Pooled { lambda: 1.0 }.fit(&d, Loss::Logistic).unwrap_err();
    assert!(message(e).contains("task `b`"), "single-class task named");
}

#[test]
fn bad_hyper_parameters_are_refused() {
    let d = data();
    assert!(TraceNorm::new(-1.0).fit(&d, Loss::Squared).is_err());
    assert!(MeanRegularized::new(f64::NAN, 1.0)
        .fit(&d, Loss::Squared)
        .is_err());
    assert!(
        ClusteredMtl::new(1.0, 1.0, 3)
            .fit(&d, Loss::Squared)
            .is_err(),
        "3 clusters of 2 tasks"
    );
    let asym = GraphLaplacian {
        adjacency: array![[0.0, 1.0], [0.0, 0.0]],
        lambda: 1.0,
        gamma: 1.0,
    };
    assert!(message(asym.fit(&d, Loss::Squared).unwrap_err()).contains("symmetric"));
    let weights = MeanRegularized {
        lambda: 1.0,
        gamma: 1.0,
        task_weights: Some(vec![1.0]),
    };
    assert!(matches!(
        weights.fit(&d, Loss::Squared).unwrap_err(),
        Error::TaskCount { .. }
    ));
}

#[test]
fn single_task_ridge_matches_its_closed_form() {
    // Each task alone: (ZᵀZ + λ diag(1, 1, 0)) θ = Zᵀy with Z = [X 1].
    let d = data();
    let lambda = 0.8;
    let fit = SingleTask { lambda }.fit(&d, Loss::Squared).unwrap();
    for (k, t) in d.tasks.iter().enumerate() {
        let n = t.y.len();
        let z = DMatrix::from_fn(n, 3, |i, j| if j < 2 { t.x[[i, j]] } else { 1.0 });
        let y = DVector::from_iterator(n, t.y.iter().copied());
        let mut h = z.transpose() * &z;
        h[(0, 0)] += lambda;
        h[(1, 1)] += lambda;
        let theta = h.lu().solve(&(z.transpose() * y)).unwrap();
        for j in 0..2 {
            assert!((fit.weights[[j, k]] - theta[j]).abs() < 1e-10);
        }
        assert!((fit.intercepts[k] - theta[2]).abs() < 1e-10);
    }
}

#[test]
fn mean_regularized_interpolates_between_single_task_and_shared() {
    // λ → 0 is each task alone (with γ irrelevant), λ → ∞ one shared w.
    let d = data();
    let alone = SingleTask { lambda: 1e-9 }.fit(&d, Loss::Squared).unwrap();
    let small = MeanRegularized::new(1e-9, 1.0)
        .fit(&d, Loss::Squared)
        .unwrap();
    assert!((&alone.weights - &small.weights)
        .iter()
        .all(|v| v.abs() < 1e-6));
    let shared = MeanRegularized::new(f64::INFINITY, 1.0)
        .fit(&d, Loss::Squared)
        .unwrap();
    let huge = MeanRegularized::new(1e9, 1.0)
        .fit(&d, Loss::Squared)
        .unwrap();
    assert!((&shared.weights - &huge.weights)
        .iter()
        .all(|v| v.abs() < 1e-6));
    assert!((shared.weights[[0, 0]] - shared.weights[[0, 1]]).abs() < 1e-12);
}
