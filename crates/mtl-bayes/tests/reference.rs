//! The empirical-Bayes EM against an independent implementation: statsmodels' `MixedLM`
//! maximum-likelihood fits (`reml=False`) of the same random-coefficient models on the
//! shipped radon and London schools data, run by `tests/reference/mixedlm.py` and
//! stored in `tests/reference/mixedlm.json`.

use mtl_bayes::{Covariance, EmConfig, HierarchicalLinear};
use mtl_data::{data_root, london_schools, radon, GroupedData};
use ndarray::Axis;
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/mixedlm.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Keeps only the feature `name` (the London schools' `standLRT`).
fn only_feature(mut d: GroupedData, name: &str) -> GroupedData {
    let j = d.feature_names.iter().position(|f| f == name).unwrap();
    for t in &mut d.tasks {
        t.x = t.x.select(Axis(1), &[j]);
    }
    d.feature_names = vec![name.into()];
    d
}

fn compare(data: &GroupedData, r: &Value, covariance: Covariance) {
    // Plain EM and SQUAREM must both reach statsmodels' optimum.
    for accelerate in [false, true] {
        compare_one(data, r, covariance, accelerate);
    }
}

fn compare_one(data: &GroupedData, r: &Value, covariance: Covariance, accelerate: bool) {
    let config = EmConfig {
        covariance,
        cov_floor: 0.0,
        max_iter: 100_000,
        tol: 1e-14,
        accelerate,
    };
    let fit = HierarchicalLinear::fit(data, &config).unwrap();
    let llf = r["llf"].as_f64().unwrap();
    let fe = floats(&r["fe_params"]);
    let cov: Vec<Vec<f64>> = r["cov_re"].as_array().unwrap().iter().map(floats).collect();
    let scale = r["scale"].as_f64().unwrap();
    assert!(fit.converged);
    // Both maximise the same likelihood; at EM's tolerance the two optima agree to about
    // 2e-10 in log-likelihood. The likelihood is flat near its maximum, so the
    // parameters agree less closely (about 1e-6); 1e-5 bounds that.
    assert!(
        (fit.log_marginal_likelihood - llf).abs() < 1e-6,
        "log-likelihood {} vs statsmodels {llf}",
        fit.log_marginal_likelihood
    );
    for j in 0..2 {
        assert!((fit.prior.mean[j] - fe[j]).abs() < 1e-5, "mu[{j}]");
        for (k, c) in cov[j].iter().enumerate() {
            assert!((fit.prior.cov[[j, k]] - c).abs() < 1e-5, "Sigma[{j},{k}]");
        }
    }
    assert!((fit.noise_variance - scale).abs() < 1e-5);
}

#[test]
fn radon_full_covariance_matches_statsmodels() {
    let d = radon(data_root("radon").unwrap()).unwrap();
    compare(&d, &reference()["radon_full"], Covariance::Full);
}

#[test]
fn radon_diagonal_covariance_matches_statsmodels() {
    let d = radon(data_root("radon").unwrap()).unwrap();
    compare(&d, &reference()["radon_diagonal"], Covariance::Diagonal);
}

#[test]
fn london_schools_matches_statsmodels() {
    let d = only_feature(
        london_schools(data_root("mlmrev").unwrap()).unwrap(),
        "standLRT",
    );
    compare(&d, &reference()["exam_full"], Covariance::Full);
}
