//! Same model, same numbers as PyTorch: the bench workloads W1 (HPS MLP 128→256→256,
//! heads 2×CE + MSE) and W3 (MMoE, 8 experts 100→64, towers 64→32→1, BCE + MSE), built
//! with `mtl`'s own layers and heads, loaded with initial weights exported from PyTorch,
//! trained 20 steps with `mtl`'s engine and Adam on the same fixed batches, must follow
//! the plain PyTorch loop step by step: every task loss within 1e-5, for EW and for
//! MGDA.
//!
//! The PyTorch side is `tests/data/parity/make_parity.py` (run once, its outputs are
//! committed; no Python at test time).

use mtl::core::arch::{MlpBuilder, MmoeConfig, TaskTowers};
use mtl::core::{task_path, HardSharing, MlpConfig, OptimizerConfig, Result, TaskTarget};
use mtl::heads::{BinaryHead, ClassificationHead, RegressionHead, RegressionLoss, TaskHead};
use mtl::losses::by_name;
use mtl::{backward_step, GradMode, MultiTaskModel};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tch::{nn, Device, Kind, Tensor};

/// A loss of step t may differ from PyTorch's by this much (absolute).
const LOSS_TOL: f64 = 1e-5;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/parity")
}

/// W1 as `mtl` builds it: the trunk under `trunk`, head k under `task<k>/head`.
fn w1() -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let head = |k| task_path(&root, k) / "head";
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(ClassificationHead::new(&head(0), "cls_a", 256, 10)?),
        Box::new(ClassificationHead::new(&head(1), "cls_b", 256, 10)?),
        Box::new(RegressionHead::new(
            &head(2),
            "reg",
            256,
            1,
            RegressionLoss::Mse,
        )?),
    ];
    let trunk = MlpConfig::new([128, 256, 256]).build(&(&root / "trunk"))?;
    MultiTaskModel::new(vs, HardSharing::new(trunk, 3)?, heads)
}

/// W3 as `mtl` builds it: experts and gates under `mmoe`, towers and heads per task.
fn w3() -> Result<MultiTaskModel> {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let head = |k| task_path(&root, k) / "head";
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(BinaryHead::new(&head(0), "ctr", 32)?),
        Box::new(RegressionHead::new(
            &head(1),
            "val",
            32,
            1,
            RegressionLoss::Mse,
        )?),
    ];
    let mmoe = MmoeConfig::new(100, 8, 2).build(&(&root / "mmoe"), &MlpBuilder::new([64]))?;
    let arch = TaskTowers::build(mmoe, &root, &MlpBuilder::new([32]))?;
    MultiTaskModel::new(vs, arch, heads)
}

struct Batch {
    x: Tensor,
    targets: Vec<TaskTarget>,
}

/// Builds the workload, copies PyTorch's initial weights into it (every variable must
/// be given, by its var-store name) and returns it with the fixed batches.
fn load(workload: &str) -> (MultiTaskModel, Vec<Batch>) {
    let mut model = match workload {
        "mlp" => w1(),
        _ => w3(),
    }
    .unwrap();
    let file = data_dir().join(format!("{workload}_init.safetensors"));
    let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&file)
        .unwrap()
        .into_iter()
        .collect();
    let vars = model.var_store().variables();
    let weights: Vec<(String, Tensor)> = tensors
        .iter()
        .filter(|(n, _)| !n.starts_with("data."))
        .map(|(n, t)| (n.clone(), t.to_kind(Kind::Float)))
        .collect();
    let mut given: Vec<&str> = weights.iter().map(|(n, _)| n.as_str()).collect();
    let mut have: Vec<&str> = vars.keys().map(String::as_str).collect();
    given.sort_unstable();
    have.sort_unstable();
    assert_eq!(
        given, have,
        "{workload}: PyTorch's parameters vs mtl's var store"
    );
    model.restore(&weights).unwrap();
    let x = &tensors["data.x"];
    let k = model.num_tasks();
    let batches = (0..x.size()[0])
        .map(|b| Batch {
            x: x.get(b).to_kind(Kind::Float),
            targets: (0..k)
                .map(|t| TaskTarget::new(tensors[&format!("data.y{t}")].get(b)))
                .collect(),
        })
        .collect();
    (model, batches)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Trains 20 steps with `method` and compares with the PyTorch record.
fn check(workload: &str, method: &str) {
    let (model, batches) = load(workload);
    let text =
        std::fs::read_to_string(data_dir().join(format!("{workload}_{method}.json"))).unwrap();
    let expect: Value = serde_json::from_str(&text).unwrap();
    let k = model.num_tasks();
    let groups = model.param_groups().unwrap();
    let mut opt = OptimizerConfig::adam(1e-3)
        .build(model.var_store().trainable_variables())
        .unwrap();
    let mut m = by_name(method, k, 0).unwrap();
    let steps = expect["losses"].as_array().unwrap();
    let mut worst = 0.0f64;
    for (step, (want_losses, want_w)) in steps
        .iter()
        .zip(expect["weights"].as_array().unwrap())
        .enumerate()
    {
        let b = &batches[step % batches.len()];
        opt.zero_grad();
        let out = backward_step(
            &model,
            &groups,
            &mut m,
            GradMode::Parameters,
            &b.x,
            &b.targets,
            step as u64,
            0,
        )
        .unwrap();
        opt.step().unwrap();
        for (t, (got, want)) in out.losses.iter().zip(floats(want_losses)).enumerate() {
            let diff = (got - want).abs();
            worst = worst.max(diff);
            assert!(
                diff <= LOSS_TOL,
                "{workload}/{method} step {step} task {t}: mtl {got} vs PyTorch {want}"
            );
        }
        for (t, (got, want)) in out.weights.iter().zip(floats(want_w)).enumerate() {
            assert!(
                (got - want).abs() <= 1e-4,
                "{workload}/{method} step {step} weight {t}: mtl {got} vs PyTorch {want}"
            );
        }
    }
    // The final parameters: sum and sum of squares of each.
    let vars = model.var_store().variables();
    for (name, stats) in expect["final"].as_object().unwrap() {
        let t = vars[name].to_kind(Kind::Double);
        let [sum, sum_sq] = floats(stats)[..] else {
            panic!("{name}: two moments")
        };
        let got_sum = t.sum(Kind::Double).double_value(&[]);
        let got_sq = t.square().sum(Kind::Double).double_value(&[]);
        let n = t.numel() as f64;
        // Each entry may differ by rounding (1e-6 of a step of lr = 1e-3 per step): the
        // sum over n entries by about √n times that.
        let tol = 1e-6 * n.sqrt() + 1e-6 * sum.abs();
        assert!(
            (got_sum - sum).abs() <= tol,
            "{workload}/{method} final {name}: sum {got_sum} vs {sum}"
        );
        assert!(
            (got_sq - sum_sq).abs() <= 1e-6 * n.sqrt() + 1e-5 * sum_sq,
            "{workload}/{method} final {name}: sum of squares {got_sq} vs {sum_sq}"
        );
    }
    eprintln!("{workload}/{method}: largest loss difference {worst:.2e}");
}

#[test]
fn w1_ew_follows_pytorch() {
    check("mlp", "ew");
}

#[test]
fn w1_mgda_follows_pytorch() {
    check("mlp", "mgda");
}

#[test]
fn w3_ew_follows_pytorch() {
    check("mmoe", "ew");
}

#[test]
fn w3_mgda_follows_pytorch() {
    check("mmoe", "mgda");
}
