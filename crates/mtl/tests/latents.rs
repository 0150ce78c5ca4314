//! Latent associations find planted structure: a trunk whose dimensions are set by hand
//! to copy chosen inputs, so which dimension encodes which covariate is known.

mod common;

use common::synthetic;
use mtl::heads::{ClassificationHead, RegressionHead, RegressionLoss};
use mtl::prelude::*;
use mtl::{latent_associations, Covariate, LatentConfig, LatentSource};
use tch::{nn, Device, Tensor};

/// A 4→4 trunk: z0 = x3 + 2, z1 = x0 + 2, z2 = x2 + 2, z3 = 2 (a dead unit); the bias
/// keeps every value positive, so an activation changes nothing.
fn planted_model() -> MultiTaskModel {
    let _lock = mtl::core::torch_rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([4, 4])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(
            ClassificationHead::new(&(task_path(&vs.root(), 0) / "head"), "sign", 4, 2).unwrap(),
        ),
        Box::new(
            RegressionHead::new(
                &(task_path(&vs.root(), 1) / "head"),
                "linear",
                4,
                1,
                RegressionLoss::Mse,
            )
            .unwrap(),
        ),
    ];
    let model = MultiTaskModel::new(vs, HardSharing::new(trunk, 2).unwrap(), heads).unwrap();
    let w = Tensor::zeros([4, 4], (tch::Kind::Float, Device::Cpu));
    for (dim, input) in [(0i64, 3i64), (1, 0), (2, 2)] {
        let _ = w.get(dim).get(input).fill_(1.0);
    }
    let _guard = tch::no_grad_guard();
    let vars = model.var_store().variables();
    let mut set = 0;
    for (name, mut t) in vars {
        if name.starts_with("trunk") && name.ends_with("weight") {
            t.copy_(&w);
            set += 1;
        } else if name.starts_with("trunk") && name.ends_with("bias") {
            let _ = t.fill_(2.0);
        }
    }
    assert_eq!(set, 1, "one trunk layer");
    model
}

fn column(data: &mtl::data::MultiTaskDataset, j: usize) -> Vec<f64> {
    data.features()
        .column(j)
        .iter()
        .map(|&v| f64::from(v))
        .collect()
}

#[test]
fn the_dimension_that_copies_a_covariate_is_found() {
    let data = synthetic(400, 5);
    let model = planted_model();
    let age: Vec<f64> = column(&data, 0).iter().map(|v| 40.0 + 10.0 * v).collect();
    let site: Vec<String> = column(&data, 2)
        .iter()
        .map(|&v| if v > 0.0 { "A".into() } else { "B".into() })
        .collect();
    let noise: Vec<f64> = (0..400).map(|i| ((i * 7919) % 101) as f64).collect();
    let covariates = [
        Covariate::numeric("age", age),
        Covariate::categorical("site", site),
        Covariate::numeric("noise", noise),
    ];
    let report = latent_associations(&model, &data, &covariates, &LatentConfig::default()).unwrap();
    assert_eq!(report.dims, 4);
    assert_eq!(report.variables, ["sign", "linear", "age", "site", "noise"]);

    let age_top = report.top_for("age", 4);
    assert_eq!(age_top[0].dim, 1, "{age_top:?}");
    assert!(age_top[0].correlation > 0.999, "{age_top:?}");
    for other in &age_top[1..] {
        assert!(other.correlation.abs() < 0.2, "{other:?}");
        assert!(other.mutual_information < age_top[0].mutual_information / 5.0);
    }
    let site_top = report.top_for("site", 1)[0];
    assert_eq!(site_top.dim, 2);
    assert!(site_top.correlation > 0.8, "{site_top:?}");
    // linear = x2 − 2·x3: z0 (x3) correlates at about −2/√5.
    let v = report.variables.iter().position(|n| n == "linear").unwrap();
    assert!(report.correlation[0][v] < -0.8, "{:?}", report.correlation);
    // The dead unit carries nothing.
    assert!(report.correlation[3].iter().all(|&r| r == 0.0));
    assert!(report.mutual_information[3].iter().all(|&m| m == 0.0));
    // The ranked list leads with a planted pair.
    assert!([1, 2, 0].contains(&report.ranked[0].dim));
    assert!(report.ranked[0].variable != "noise");

    let png = std::env::temp_dir().join(format!("mtl-latents-{}.png", std::process::id()));
    report.write_heatmap(&png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let _ = std::fs::remove_file(&png);
    let table = report.ranked_table(3);
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.lines().nth(1).unwrap().trim_start().starts_with('z'),
        "{table}"
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains("\"ranked\""));
}

#[test]
fn unlabelled_rows_and_bad_covariates_are_handled() {
    let data = synthetic(50, 1);
    let model = planted_model();
    let short = Covariate::numeric("age", vec![1.0; 49]);
    let e = latent_associations(&model, &data, &[short], &LatentConfig::default()).unwrap_err();
    assert!(e.to_string().contains("covariate `age`"), "{e}");
    let inf = Covariate::numeric("dose", vec![f64::INFINITY; 50]);
    assert!(latent_associations(&model, &data, &[inf], &LatentConfig::default()).is_err());
    let bins = LatentConfig {
        bins: 1,
        ..LatentConfig::default()
    };
    assert!(latent_associations(&model, &data, &[], &bins).is_err());
    let task9 = LatentConfig {
        source: LatentSource::Task(9),
        ..LatentConfig::default()
    };
    assert!(latent_associations(&model, &data, &[], &task9).is_err());
    // A missing covariate value (NaN) drops that row only.
    let mut partial = column(&data, 0);
    partial[0] = f64::NAN;
    let r = latent_associations(
        &model,
        &data,
        &[Covariate::numeric("x0", partial)],
        &LatentConfig::default(),
    )
    .unwrap();
    assert_eq!(r.top_for("x0", 1)[0].rows, data.len() - 1);
    assert_eq!(r.top_for("x0", 1)[0].dim, 1);
    // A task's own features can be read too.
    let per_task = LatentConfig {
        source: LatentSource::Task(1),
        ..LatentConfig::default()
    };
    assert_eq!(
        latent_associations(&model, &data, &[], &per_task)
            .unwrap()
            .dims,
        4
    );
}
