//! The task-routing architecture keeps the conventions the trainer relies on, and
//! trains with it.

use custom_arch::TaskRouting;
use mtl::core::{MlpBuilder, MlpConfig, ParamGroups};
use mtl::data::mmoe_synthetic;
use mtl::heads::{RegressionHead, RegressionLoss};
use mtl::prelude::*;
use tch::{nn, Device, Kind, Tensor};

/// Serialises the tests that draw from libtorch's process-wide generator, so the
/// seeded training test starts where its seed says whatever runs beside it.
use mtl::core::torch_rng_lock as torch_lock;

#[test]
fn towers_are_shared_routes_belong_to_their_task() {
    let _torch = torch_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let arch = TaskRouting::new(&(vs.root() / "r"), 4, 3, &MlpBuilder::new([5])).unwrap();
    let g = ParamGroups::from_var_store(&vs, 3).unwrap();
    assert!(g.shared.iter().all(|p| p.name.starts_with("r.tower_")));
    assert_eq!(g.shared.len(), 4);
    for (k, own) in g.task.iter().enumerate() {
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].name, format!("r.task{k}.route"));
    }
    let w = arch.routing_weights().unwrap();
    // Task 0 leans on tower A, task 1 on tower B, rows sum to one.
    assert!(w.double_value(&[0, 0]) > 0.8 && w.double_value(&[1, 1]) > 0.8);
    let ones = Tensor::ones([3], (Kind::Float, Device::Cpu));
    assert!(w
        .sum_dim_intlist(1, false, Kind::Float)
        .allclose(&ones, 1e-6, 1e-6, false));
}

#[test]
fn features_blend_the_towers_and_shapes_are_checked() {
    let _torch = torch_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let arch = TaskRouting::new(&vs.root(), 4, 2, &MlpBuilder::new([3])).unwrap();
    let x = Tensor::randn([6, 4], (Kind::Float, Device::Cpu));
    let f = arch.forward_t(&x, false).unwrap();
    let z = f.shared.unwrap();
    assert_eq!(z.size(), vec![6, 2, 3]);
    let w = arch.routing_weights().unwrap();
    let manual =
        z.select(1, 0) * w.double_value(&[1, 0]) + z.select(1, 1) * w.double_value(&[1, 1]);
    assert!(f.per_task[1].allclose(&manual, 1e-5, 1e-6, false));
    let err = arch
        .forward_t(&Tensor::zeros([2, 5], (Kind::Float, Device::Cpu)), false)
        .unwrap_err();
    assert!(err.to_string().contains("task routing input"), "{err}");
    // A fixed-width tower that does not read the input is refused when built.
    assert!(TaskRouting::new(&vs.root(), 4, 2, &MlpConfig::new([5, 3])).is_err());
}

#[test]
fn trains_with_a_weighting_and_an_aggregator() {
    let _torch = torch_lock();
    let data = mmoe_synthetic(512, 10, 0.5, 3).unwrap();
    for method in ["ew", "pcgrad"] {
        seed_everything(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let arch = TaskRouting::new(&vs.root(), 10, 2, &MlpBuilder::new([16])).unwrap();
        let heads: Vec<Box<dyn TaskHead>> = (0..2)
            .map(|k| {
                Box::new(
                    RegressionHead::new(
                        &(task_path(&vs.root(), k) / "head"),
                        format!("y{k}"),
                        16,
                        1,
                        RegressionLoss::Mse,
                    )
                    .unwrap(),
                ) as Box<dyn TaskHead>
            })
            .collect();
        let mut m = MultiTaskModel::new(vs, arch, heads).unwrap();
        let config = TrainerConfig::default()
            .epochs(10)
            .batch_size(32)
            .optimizer(OptimizerConfig::adam(5e-3))
            .method(method);
        let report = Trainer::new(config)
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap();
        let first = &report.epochs[0].train_losses;
        let last = &report.epochs.last().unwrap().train_losses;
        for k in 0..2 {
            assert!(
                last[k] < 0.5 * first[k],
                "{method} task {k}: {first:?} -> {last:?}"
            );
        }
    }
}
