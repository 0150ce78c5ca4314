//! A second, solver-free check: at each model's answer on real data (ten London
//! schools, standardised) the optimality conditions of its stated objective hold,
//! computed here from the objective alone — the gradient of the data term, the
//! penalty's (sub)gradient, and for the models that learn a task matrix that matrix's
//! closed form and constraints.

use mtl_data::GroupedData;
use mtl_linear::{
    ClusteredMtl, Extra, FittedLinear, GraphLaplacian, Loss, MeanRegularized, Mtrl,
    MultiTaskLinear, Scaling, SingleTask, TraceNorm, L21,
};
use nalgebra::{DMatrix, SymmetricEigen};

fn schools(loss: Loss) -> GroupedData {
    let mut d = if loss == Loss::Squared {
        mtl_data::london_schools(mtl_data::data_root("mlmrev").unwrap()).unwrap()
    } else {
        mtl_data::contraception(mtl_data::data_root("mlmrev").unwrap()).unwrap()
    };
    // Ten tasks; for the logistic loss ten districts with both outcomes (a district of
    // one outcome has no finite intercept).
    if loss == Loss::Logistic {
        d.tasks
            .retain(|t| t.y.iter().any(|&v| v == 1.0) && t.y.iter().any(|&v| v == 0.0));
    }
    d.tasks.truncate(10);
    Scaling::fit(&d).unwrap().apply(&d).unwrap()
}

fn w_of(f: &FittedLinear) -> DMatrix<f64> {
    let (d, t) = f.weights.dim();
    DMatrix::from_fn(d, t, |i, j| f.weights[[i, j]])
}

/// `∇_W` and `∇_b` of `Σₜ Σᵢ ℓ(yₜᵢ, xₜᵢᵀwₜ + bₜ)`.
fn data_gradient(data: &GroupedData, f: &FittedLinear, loss: Loss) -> (DMatrix<f64>, Vec<f64>) {
    let mut gw = DMatrix::zeros(data.n_features(), data.n_tasks());
    let mut gb = vec![0.0; data.n_tasks()];
    for (t, task) in data.tasks.iter().enumerate() {
        for (i, row) in task.x.rows().into_iter().enumerate() {
            let eta = row.dot(&f.weights.column(t)) + f.intercepts[t];
            let r = match loss {
                Loss::Squared => 2.0 * (eta - task.y[i]),
                Loss::Logistic => 1.0 / (1.0 + (-eta).exp()) - task.y[i],
            };
            for j in 0..row.len() {
                gw[(j, t)] += r * row[j];
            }
            gb[t] += r;
        }
    }
    (gw, gb)
}

fn assert_small(what: &str, v: f64, tol: f64) {
    assert!(v.abs() <= tol, "{what}: {v:e} > {tol:e}");
}

fn check_smooth(
    name: &str,
    data: &GroupedData,
    f: &FittedLinear,
    loss: Loss,
    penalty_grad: DMatrix<f64>,
) {
    let (gw, gb) = data_gradient(data, f, loss);
    assert_small(&format!("{name}: ‖∇_W‖"), (gw + penalty_grad).amax(), 1e-7);
    assert_small(
        &format!("{name}: ‖∇_b‖"),
        gb.iter().fold(0.0_f64, |a, v| a.max(v.abs())),
        1e-7,
    );
}

#[test]
fn smooth_models_have_zero_gradient() {
    for loss in [Loss::Squared, Loss::Logistic] {
        let data = schools(loss);
        let t_n = data.n_tasks();

        let (lambda, gamma) = (3.0, 0.5);
        let f = MeanRegularized::new(lambda, gamma)
            .fit(&data, loss)
            .unwrap();
        let w = w_of(&f);
        let Some(Extra::SharedMean(w0)) = &f.extra else {
            panic!("no w₀")
        };
        let w0 = nalgebra::DVector::from_iterator(w0.len(), w0.iter().copied());
        let mut pg = DMatrix::zeros(w.nrows(), t_n);
        for t in 0..t_n {
            pg.set_column(t, &(2.0 * lambda * (w.column(t) - &w0)));
        }
        check_smooth("mean-regularized", &data, &f, loss, pg);
        // ∂/∂w₀: −2λ Σₜ (wₜ − w₀) + 2γ w₀ = 0.
        let mut g0 = 2.0 * gamma * &w0;
        for t in 0..t_n {
            g0 -= 2.0 * lambda * (w.column(t) - &w0);
        }
        assert_small("mean-regularized: ∂/∂w₀", g0.amax(), 1e-8);

        // λ = ∞: one shared w, so the data gradient summed over tasks balances 2γw.
        let f = MeanRegularized::new(f64::INFINITY, gamma)
            .fit(&data, loss)
            .unwrap();
        let w = w_of(&f);
        assert_small(
            "shared: one w",
            (&w - w.column(0) * nalgebra::RowDVector::from_element(t_n, 1.0)).amax(),
            0.0,
        );
        let (gw, gb) = data_gradient(&data, &f, loss);
        assert_small(
            "shared: ∂/∂w",
            (gw.column_sum() + 2.0 * gamma * w.column(0)).amax(),
            1e-7,
        );
        assert_small(
            "shared: ∂/∂b",
            gb.iter().fold(0.0_f64, |a, v| a.max(v.abs())),
            1e-7,
        );

        let f = SingleTask { lambda: 2.0 }.fit(&data, loss).unwrap();
        check_smooth("single-task", &data, &f, loss, 4.0 * w_of(&f));

        let adjacency = ndarray::Array2::from_shape_fn((t_n, t_n), |(s, t)| {
            if s != t && (s + t) % 3 == 0 {
                1.0
            } else {
                0.0
            }
        });
        let f = GraphLaplacian {
            adjacency: adjacency.clone(),
            lambda: 2.0,
            gamma: 0.1,
        }
        .fit(&data, loss)
        .unwrap();
        let w = w_of(&f);
        let mut pg = 0.2 * &w;
        for s in 0..t_n {
            for t in 0..t_n {
                // ∂/∂wₛ of λ Σ_{s<t} aₛₜ‖wₛ − wₜ‖² = 2λ Σₜ aₛₜ (wₛ − wₜ).
                let g = 2.0 * 2.0 * adjacency[[s, t]] * (w.column(s) - w.column(t));
                let mut col = pg.column_mut(s);
                col += g;
            }
        }
        check_smooth("graph-laplacian", &data, &f, loss, pg);
    }
}

#[test]
fn trace_norm_answer_is_a_proximal_gradient_fixed_point() {
    for loss in [Loss::Squared, Loss::Logistic] {
        let data = schools(loss);
        let lambda = if loss == Loss::Squared { 40.0 } else { 4.0 };
        let f = TraceNorm {
            tol: 1e-12,
            max_iter: 20_000,
            ..TraceNorm::new(lambda)
        }
        .fit(&data, loss)
        .unwrap();
        let w = w_of(&f);
        let (gw, gb) = data_gradient(&data, &f, loss);
        assert_small(
            "trace-norm: ‖∇_b‖",
            gb.iter().fold(0.0_f64, |a, v| a.max(v.abs())),
            1e-6,
        );
        // −∇f ∈ λ∂‖W‖_*: with W = U Σ Vᵀ (σ > 0 kept), −∇f = λ(UVᵀ + R), UᵀR = 0,
        // RV = 0, ‖R‖₂ ≤ 1.
        let svd = w.clone().svd(true, true);
        let (u, vt) = (svd.u.unwrap(), svd.v_t.unwrap());
        let keep: Vec<usize> = (0..svd.singular_values.len())
            .filter(|&k| svd.singular_values[k] > 1e-6)
            .collect();
        assert!(
            !keep.is_empty() && keep.len() < w.nrows().min(w.ncols()),
            "λ should leave a low but nonzero rank, got {keep:?}"
        );
        let u = u.select_columns(&keep);
        let v = vt.select_rows(&keep).transpose();
        let r = -&gw / lambda - &u * v.transpose();
        assert_small("trace-norm: Uᵀ R", (u.transpose() * &r).amax(), 1e-6);
        assert_small("trace-norm: R V", (&r * &v).amax(), 1e-6);
        let spectral = r.singular_values().max();
        assert!(spectral <= 1.0 + 1e-6, "trace-norm: ‖R‖₂ = {spectral}");
    }
}

#[test]
fn l21_answer_meets_the_group_conditions() {
    for loss in [Loss::Squared, Loss::Logistic] {
        let data = schools(loss);
        let lambda = if loss == Loss::Squared { 60.0 } else { 6.0 };
        let f = L21 {
            tol: 1e-12,
            max_iter: 20_000,
            ..L21::new(lambda)
        }
        .fit(&data, loss)
        .unwrap();
        let w = w_of(&f);
        let (gw, _) = data_gradient(&data, &f, loss);
        let mut zero_rows = 0;
        for j in 0..w.nrows() {
            let (row, g) = (w.row(j), gw.row(j));
            if row.norm() > 1e-9 {
                // −∇f_j = λ w_j / ‖w_j‖.
                assert_small(
                    "l21: active row",
                    (g + lambda * row / row.norm()).amax(),
                    1e-6,
                );
            } else {
                zero_rows += 1;
                assert!(
                    g.norm() <= lambda * (1.0 + 1e-8),
                    "l21: zero row {j} with ‖∇f_j‖ = {}",
                    g.norm()
                );
            }
        }
        assert!(
            zero_rows > 0 && zero_rows < w.nrows(),
            "λ should drop some features, dropped {zero_rows}"
        );
    }
}

#[test]
fn mtrl_and_clustered_answers_are_stationary_in_both_blocks() {
    for loss in [Loss::Squared, Loss::Logistic] {
        let data = schools(loss);
        let t_n = data.n_tasks();
        let (l1, l2, eps) = (0.5, 5.0, 0.01);
        let f = Mtrl {
            eps,
            tol: 1e-12,
            max_iter: 20_000,
            ..Mtrl::new(l1, l2)
        }
        .fit(&data, loss)
        .unwrap();
        let w = w_of(&f);
        let Some(Extra::TaskMatrix(om)) = &f.extra else {
            panic!("no Ω")
        };
        let omega = DMatrix::from_fn(t_n, t_n, |i, j| om[[i, j]]);
        // Ω = (WᵀW + εI)^{1/2} / tr(·), and ∇_W = ∇f + 2λ₁W + 2λ₂WΩ⁻¹ = 0.
        let eig = SymmetricEigen::new(w.transpose() * &w + DMatrix::identity(t_n, t_n) * eps);
        let root = &eig.eigenvectors
            * DMatrix::from_diagonal(&eig.eigenvalues.map(f64::sqrt))
            * eig.eigenvectors.transpose();
        assert_small("mtrl: Ω", (&omega - &root / root.trace()).amax(), 1e-9);
        assert_small("mtrl: tr Ω", omega.trace() - 1.0, 1e-12);
        let inv = omega.clone().try_inverse().unwrap();
        check_smooth("mtrl", &data, &f, loss, 2.0 * l1 * &w + 2.0 * l2 * &w * inv);

        let (r1, r2, k) = (2.0, 1.0, 3.0);
        let f = ClusteredMtl {
            tol: 1e-12,
            max_iter: 20_000,
            ..ClusteredMtl::new(r1, r2, 3)
        }
        .fit(&data, loss)
        .unwrap();
        let w = w_of(&f);
        let Some(Extra::TaskMatrix(mm)) = &f.extra else {
            panic!("no M")
        };
        let m = DMatrix::from_fn(t_n, t_n, |i, j| mm[[i, j]]);
        let eigs = SymmetricEigen::new(m.clone()).eigenvalues;
        assert!(
            eigs.iter().all(|&e| (-1e-9..=1.0 + 1e-9).contains(&e)),
            "clustered: M's eigenvalues {eigs}"
        );
        assert_small("clustered: tr M − k", m.trace() - k, 1e-9);
        let eta = r2 / r1;
        let inv = (DMatrix::identity(t_n, t_n) * eta + &m)
            .try_inverse()
            .unwrap();
        check_smooth(
            "clustered",
            &data,
            &f,
            loss,
            2.0 * r1 * eta * (1.0 + eta) * &w * inv,
        );
    }
}
