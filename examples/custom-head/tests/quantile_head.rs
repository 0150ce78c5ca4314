//! The quantile head from outside: its pinball loss by hand and against tch's L1 loss
//! at the median, masking, the differentiable zero of an unlabelled batch, its metrics
//! by hand, typed errors naming the head, and training inside an `mtl` model.

use custom_head::{check_quantiles, pinball_loss, QuantileHead, QuantileMetrics};
use mtl::data::{MultiTaskDataset, TaskData};
use mtl::prelude::*;
use mtl_heads::{Metrics, TaskHead};
use ndarray::Array2;
use tch::{nn, Device, Kind, Reduction, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// Serialises the tests that draw from libtorch's process-wide generator, so the
/// seeded training test starts where its seed says whatever runs beside it.
use mtl::core::torch_rng_lock as torch_lock;

fn close(got: &Tensor, want: f64) -> bool {
    (got.double_value(&[]) - want).abs() < 1e-6
}

#[test]
fn pinball_by_hand_skips_unlabelled_rows() {
    // Levels 0.2 and 0.7; rows (target, q0.2, q0.7): (1, 0, 2) and (4, 5, 3); the third
    // row is unlabelled and its NaN target must not matter.
    let pred = Tensor::from_slice(&[0.0f32, 2.0, 5.0, 3.0, 9.0, 9.0]).view([3, 2]);
    let target = TaskTarget::masked(
        Tensor::from_slice(&[1.0f32, 4.0, f32::NAN]),
        Tensor::from_slice(&[true, true, false]),
    );
    // Residuals y − q: row 0: 1, −1; row 1: −1, 1.
    let want = (0.2 * 1.0 + 0.3 * 1.0 + 0.8 * 1.0 + 0.7 * 1.0) / 4.0;
    assert!(close(
        &pinball_loss(&pred, &target, &[0.2, 0.7]).unwrap(),
        want
    ));
}

#[test]
fn the_median_pinball_is_half_the_l1_loss() {
    let _torch = torch_lock();
    tch::manual_seed(0);
    let pred = Tensor::randn([8, 1], CPU);
    let truth = Tensor::randn([8], CPU);
    let got = pinball_loss(&pred, &TaskTarget::new(truth.copy()), &[0.5]).unwrap();
    let want = pred.view([8]).l1_loss(&truth, Reduction::Mean) * 0.5;
    assert!(close(&got, want.double_value(&[])));
}

#[test]
fn an_unlabelled_batch_gives_a_differentiable_zero() {
    let _torch = torch_lock();
    let pred = Tensor::randn([3, 2], CPU).set_requires_grad(true);
    let none = TaskTarget::masked(
        Tensor::full([3], f64::NAN, CPU),
        Tensor::zeros([3], (Kind::Bool, Device::Cpu)),
    );
    let loss = pinball_loss(&pred, &none, &[0.1, 0.9]).unwrap();
    assert_eq!(loss.double_value(&[]), 0.0);
    loss.backward();
    assert_eq!(pred.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
}

#[test]
fn metrics_by_hand_over_two_batches() {
    let mut m = QuantileMetrics::new(&[0.25, 0.75]);
    assert!(m.compute().is_empty());
    let pred = Tensor::from_slice(&[0.0f32, 2.0, 0.0, 2.0]).view([2, 2]);
    m.update(&pred, &TaskTarget::new(Tensor::from_slice(&[1.0f32, 3.0])))
        .unwrap();
    let masked = TaskTarget::masked(
        Tensor::from_slice(&[-1.0f32, 100.0]),
        Tensor::from_slice(&[true, false]),
    );
    m.update(&pred, &masked).unwrap();
    // Targets 1, 3, −1 against q0.25 = 0 and q0.75 = 2.
    // q0.25: residuals 1, 3, −1 → 0.25, 0.75, 0.75; covered: only −1.
    // q0.75: residuals −1, 1, −3 → 0.25, 0.75, 0.75; covered: 1 and −1.
    assert_eq!(m.coverage(), [(0.25, 1.0 / 3.0), (0.75, 2.0 / 3.0)]);
    let values = m.compute();
    assert_eq!(values[0].name, "pinball");
    assert!((values[0].value - 3.5 / 6.0).abs() < 1e-12);
    let calibration = ((1.0 / 3.0 - 0.25) + (0.75 - 2.0 / 3.0)) / 2.0;
    assert!((values[1].value - calibration).abs() < 1e-12);
    m.reset();
    assert!(m.compute().is_empty() && m.coverage().is_empty());
}

#[test]
fn bad_levels_and_shapes_are_typed_errors() {
    let _torch = torch_lock();
    for bad in [
        &[][..],
        &[0.0, 0.5],
        &[0.5, 1.0],
        &[0.6, 0.4],
        &[0.3, 0.3],
        &[f64::NAN],
    ] {
        assert!(
            matches!(check_quantiles("q", bad), Err(Error::Config(_))),
            "{bad:?}"
        );
    }
    let vs = nn::VarStore::new(Device::Cpu);
    assert!(QuantileHead::new(&vs.root(), "y", 4, &[0.9, 0.1]).is_err());
    assert!(QuantileHead::new(&vs.root(), "y", 0, &[0.5]).is_err());
    assert!(
        vs.variables().is_empty(),
        "a failed constructor creates no variable"
    );

    let head = QuantileHead::new(&vs.root(), "y", 4, &[0.1, 0.9]).unwrap();
    match head.forward_t(&Tensor::zeros([2, 5], CPU), false) {
        Err(Error::Shape { context, .. }) => assert_eq!(context, "head `y`"),
        other => panic!("{other:?}"),
    }
    let target = TaskTarget::new(Tensor::zeros([2], CPU));
    match head.loss(&Tensor::zeros([2, 3], CPU), &target) {
        Err(Error::Shape { context, .. }) => assert_eq!(context, "head `y` pinball_loss"),
        other => panic!("{other:?}"),
    }
    let nan = Tensor::full([2, 2], f64::NAN, CPU);
    assert!(matches!(
        head.loss(&nan, &target),
        Err(Error::NonFinite { .. })
    ));
    let err = head.metrics().update(&nan, &target).unwrap_err();
    assert!(err.to_string().contains("head `y` metrics"), "{err}");
}

#[test]
fn trains_in_a_multi_task_model_beside_a_built_in_head() {
    let _torch = torch_lock();
    seed_everything(5);
    // y = x0 + 0.5·noise for the quantile head; the sign of x1 for a classifier.
    let n = 400;
    let x = Tensor::randn([n, 2], CPU);
    let noise = Tensor::randn([n], CPU);
    let y = x.select(1, 0) + &noise * 0.5;
    let features = Array2::from_shape_vec(
        (n as usize, 2),
        Vec::<f32>::try_from(&x.reshape([-1])).unwrap(),
    )
    .unwrap();
    let y = Array2::from_shape_vec((n as usize, 1), Vec::<f32>::try_from(&y).unwrap()).unwrap();
    let sign = features.column(1).mapv(|v| i64::from(v > 0.0));
    let data = MultiTaskDataset::new(
        features,
        vec![
            TaskData::regression("y", y),
            TaskData::classes("sign", sign, 2),
        ],
    )
    .unwrap();

    let vs = nn::VarStore::new(Device::Cpu);
    let trunk = MlpConfig::new([2, 16])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let levels = [0.1, 0.5, 0.9];
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(
            QuantileHead::new(&(task_path(&vs.root(), 0) / "head"), "y", 16, &levels).unwrap(),
        ),
        Box::new(
            mtl_heads::ClassificationHead::new(&(task_path(&vs.root(), 1) / "head"), "sign", 16, 2)
                .unwrap(),
        ),
    ];
    let mut model = MultiTaskModel::new(vs, HardSharing::new(trunk, 2).unwrap(), heads).unwrap();
    let config = TrainerConfig::default()
        .epochs(40)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(1e-2))
        .seed(5);
    let report = Trainer::new(config)
        .unwrap()
        .fit(&mut model, &data, None)
        .unwrap();
    let first = report.epochs[0].train_losses[0];
    let last = report.epochs.last().unwrap().train_losses[0];
    assert!(last < 0.5 * first, "pinball {first} -> {last}");

    // The predicted 80% interval is about 2·1.28·0.5 wide and covers about 80%.
    let batch = data.batch(&(0..n as usize).collect::<Vec<_>>()).unwrap();
    let q = tch::no_grad(|| model.forward_t(&batch.x, false))
        .unwrap()
        .outputs[0]
        .shallow_clone();
    let width = (q.select(1, 2) - q.select(1, 0))
        .mean(Kind::Float)
        .double_value(&[]);
    assert!((width - 1.28).abs() < 0.4, "interval width {width}");
    let mut metrics = QuantileMetrics::new(&levels);
    metrics.update(&q, &batch.targets[0]).unwrap();
    let coverage = metrics.coverage();
    let inside = coverage[2].1 - coverage[0].1;
    assert!((inside - 0.8).abs() < 0.1, "coverage {coverage:?}");
}
