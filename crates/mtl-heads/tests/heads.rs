//! The heads and losses seen from outside: masking against tch's own losses on the
//! labelled subset, gradients of empty batches, typed errors naming the head, and heads
//! of every kind behind one trait object.

use mtl_core::{task_path, Error, ParamGroups, TaskTarget};
use mtl_heads::{
    bce_with_logits, cross_entropy, l1, mse, BinaryHead, ClassificationHead, RegressionHead,
    RegressionLoss, TaskHead,
};
use tch::{nn, Device, Kind, Reduction, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn mask() -> Tensor {
    Tensor::from_slice(&[true, false, true, true, false, true])
}

fn labelled_rows() -> Tensor {
    Tensor::from_slice(&[0i64, 2, 3, 5])
}

fn assert_close(a: &Tensor, b: &Tensor) {
    let (a, b) = (a.double_value(&[]), b.double_value(&[]));
    assert!((a - b).abs() < 1e-6, "{a} != {b}");
}

#[test]
fn masked_losses_equal_the_loss_of_the_labelled_subset() {
    tch::manual_seed(0);
    let rows = labelled_rows();

    let logits = Tensor::randn([6, 4], CPU);
    let classes = Tensor::from_slice(&[1i64, -1, 3, 0, 17, 2]);
    let got = cross_entropy(
        &logits,
        &TaskTarget::masked(classes.shallow_clone(), mask()),
    )
    .unwrap();
    let want = logits
        .index_select(0, &rows)
        .cross_entropy_for_logits(&classes.index_select(0, &rows));
    assert_close(&got, &want);

    let scores = Tensor::randn([6], CPU);
    let labels = Tensor::from_slice(&[1.0f32, f32::NAN, 0.0, 1.0, 5.0, 0.0]);
    let got =
        bce_with_logits(&scores, &TaskTarget::masked(labels.shallow_clone(), mask())).unwrap();
    let want = scores
        .index_select(0, &rows)
        .binary_cross_entropy_with_logits::<Tensor>(
            &labels.index_select(0, &rows),
            None,
            None,
            Reduction::Mean,
        );
    assert_close(&got, &want);

    let pred = Tensor::randn([6, 3], CPU);
    let truth = Tensor::randn([6, 3], CPU);
    let target = TaskTarget::masked(truth.shallow_clone(), mask());
    let (p, t) = (pred.index_select(0, &rows), truth.index_select(0, &rows));
    assert_close(
        &mse(&pred, &target).unwrap(),
        &p.mse_loss(&t, Reduction::Mean),
    );
    assert_close(
        &l1(&pred, &target).unwrap(),
        &p.l1_loss(&t, Reduction::Mean),
    );

    // A mask of all true is the same as no mask.
    let all = TaskTarget::masked(
        truth.shallow_clone(),
        Tensor::ones([6], (Kind::Bool, Device::Cpu)),
    );
    assert_close(
        &mse(&pred, &all).unwrap(),
        &pred.mse_loss(&truth, Reduction::Mean),
    );
}

type LossFn = fn(&Tensor, &TaskTarget) -> mtl_core::Result<Tensor>;

#[test]
fn a_batch_without_labels_has_zero_loss_and_zero_gradient() {
    let none = Tensor::zeros([3], (Kind::Bool, Device::Cpu));
    let cases: Vec<(Tensor, TaskTarget, LossFn)> = vec![
        (
            Tensor::randn([3, 4], CPU),
            TaskTarget::masked(Tensor::from_slice(&[9i64, -1, 2]), none.shallow_clone()),
            cross_entropy,
        ),
        (
            Tensor::randn([3], CPU),
            TaskTarget::masked(Tensor::full([3], f64::NAN, CPU), none.shallow_clone()),
            bce_with_logits,
        ),
        (
            Tensor::randn([3, 2], CPU),
            TaskTarget::masked(Tensor::full([3, 2], f64::NAN, CPU), none.shallow_clone()),
            mse,
        ),
        (
            Tensor::randn([3, 2], CPU),
            TaskTarget::masked(Tensor::zeros([3, 2], CPU), none.shallow_clone()),
            l1,
        ),
    ];
    for (output, target, loss_fn) in cases {
        let output = output.set_requires_grad(true);
        let loss = loss_fn(&output, &target).unwrap();
        assert_eq!(loss.size(), Vec::<i64>::new());
        assert_eq!(loss.double_value(&[]), 0.0);
        loss.backward();
        let grad = output.grad();
        assert!(grad.defined());
        assert_eq!(grad.abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
}

fn heads(root: &nn::Path, in_dim: i64) -> Vec<Box<dyn TaskHead>> {
    vec![
        Box::new(
            ClassificationHead::new(&(task_path(root, 0) / "head"), "region", in_dim, 3).unwrap(),
        ),
        Box::new(BinaryHead::new(&(task_path(root, 1) / "head"), "churn", in_dim).unwrap()),
        Box::new(
            RegressionHead::new(
                &(task_path(root, 2) / "head"),
                "spend",
                in_dim,
                2,
                RegressionLoss::Mse,
            )
            .unwrap(),
        ),
    ]
}

#[test]
fn heads_of_every_kind_train_behind_one_trait_object() {
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let heads = heads(&vs.root(), 5);
    let groups = ParamGroups::from_var_store(&vs, 3).unwrap();
    assert!(groups.shared.is_empty());
    for (k, params) in groups.task.iter().enumerate() {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [format!("task{k}.head.bias"), format!("task{k}.head.weight")]
        );
    }

    let features = Tensor::randn([4, 5], CPU);
    let targets = [
        TaskTarget::new(Tensor::from_slice(&[0i64, 1, 2, 1])),
        TaskTarget::masked(
            Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]),
            Tensor::from_slice(&[true, true, true, false]),
        ),
        TaskTarget::new(Tensor::randn([4, 2], CPU)),
    ];
    let expected_metrics = [
        ["accuracy", "macro_f1"],
        ["accuracy", "roc_auc"],
        ["mse", "mae"],
    ];
    let mut losses = Vec::new();
    for ((head, target), names) in heads.iter().zip(&targets).zip(expected_metrics) {
        assert_eq!(head.in_dim(), 5);
        let output = head.forward_t(&features, true).unwrap();
        losses.push(head.loss(&output, target).unwrap());
        let mut metrics = head.metrics();
        metrics.update(&output, target).unwrap();
        let values = metrics.compute();
        let got: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(got, names, "head `{}`", head.name());
        assert!(values.iter().all(|v| v.value.is_finite()));
    }
    Tensor::stack(&losses, 0).sum(Kind::Float).backward();
    for p in groups.all_tensors() {
        assert!(p.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
}

#[test]
fn a_wrong_feature_width_names_the_head() {
    let vs = nn::VarStore::new(Device::Cpu);
    for head in heads(&vs.root(), 5) {
        for bad in [Tensor::zeros([4, 6], CPU), Tensor::zeros([5], CPU)] {
            match head.forward_t(&bad, false) {
                Err(Error::Shape { context, .. }) => {
                    assert_eq!(context, format!("head `{}`", head.name()))
                }
                other => panic!("head `{}`: {other:?}", head.name()),
            }
        }
    }
}

fn shape_context(result: mtl_core::Result<Tensor>) -> String {
    match result {
        Err(Error::Shape { context, .. }) => context,
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn outputs_and_targets_that_do_not_fit_name_the_head() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let region = ClassificationHead::new(&(&root / "a"), "region", 5, 3).unwrap();
    let logits = Tensor::zeros([2, 3], CPU);
    let floats = TaskTarget::new(Tensor::zeros([2], CPU));
    assert!(shape_context(region.loss(&logits, &floats)).contains("head `region`"));
    let labels = TaskTarget::new(Tensor::from_slice(&[0i64, 1]));
    assert!(shape_context(region.loss(&Tensor::zeros([2, 4], CPU), &labels)).contains("region"));
    let mut metrics = region.metrics();
    let err = metrics.update(&logits, &floats).unwrap_err();
    assert!(err.to_string().contains("head `region`"), "{err}");

    let spend = RegressionHead::new(&(&root / "b"), "spend", 5, 1, RegressionLoss::Mse).unwrap();
    let pred = Tensor::zeros([2, 1], CPU);
    let two_columns = TaskTarget::new(Tensor::zeros([2, 2], CPU));
    assert!(shape_context(spend.loss(&pred, &two_columns)).contains("head `spend`"));
    // One output accepts [B] and [B, 1] targets.
    assert!(spend
        .loss(&pred, &TaskTarget::new(Tensor::zeros([2], CPU)))
        .is_ok());
    assert!(spend
        .loss(&pred, &TaskTarget::new(Tensor::zeros([2, 1], CPU)))
        .is_ok());

    let churn = BinaryHead::new(&(&root / "c"), "churn", 5).unwrap();
    let three_rows = TaskTarget::new(Tensor::zeros([3], CPU));
    assert!(shape_context(churn.loss(&Tensor::zeros([2], CPU), &three_rows)).contains("churn"));
}

#[test]
fn head_losses_report_bad_labels_and_non_finite_outputs() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let region = ClassificationHead::new(&(&root / "a"), "region", 5, 3).unwrap();
    let err = region
        .loss(
            &Tensor::zeros([2, 3], CPU),
            &TaskTarget::new(Tensor::from_slice(&[0i64, 3])),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::LabelOutOfRange {
            row: 1,
            label: 3,
            classes: 3,
            ..
        }
    ));

    let spend = RegressionHead::new(&(&root / "b"), "spend", 5, 2, RegressionLoss::L1).unwrap();
    let features = Tensor::from_slice(&[1.0f32, f32::INFINITY, 0.0, 0.0, 0.0]).view([1, 5]);
    let pred = spend.forward_t(&features, false).unwrap();
    match spend.loss(&pred, &TaskTarget::new(Tensor::zeros([1, 2], CPU))) {
        Err(Error::NonFinite { what, .. }) => assert_eq!(what, "head `spend` l1 input"),
        other => panic!("expected a non-finite error, got {other:?}"),
    }
}

#[test]
fn constructors_reject_impossible_sizes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    assert!(matches!(
        ClassificationHead::new(&root, "a", 4, 1),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        ClassificationHead::new(&root, "a", 0, 3),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        BinaryHead::new(&root, "b", -2),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        RegressionHead::new(&root, "c", 4, 0, RegressionLoss::Mse),
        Err(Error::Config(_))
    ));
    assert!(
        vs.variables().is_empty(),
        "a failed constructor creates no variable"
    );
}
