//! The multi-label, segmentation, depth, normal, sequence and variance-regression heads
//! seen from outside: output shapes, metric names, gradients reaching every weight,
//! errors that name the head, and constructors that refuse impossible sizes.

use mtl_core::{task_path, Error, ParamGroups, TaskTarget};
use mtl_heads::{
    cross_entropy, multilabel_bce_with_logits, pixel_cross_entropy, token_cross_entropy,
    ClassificationHead, DepthHead, MultiLabelHead, NormalHead, RegressionHead, RegressionLoss,
    SegmentationHead, SequenceHead, TaskHead,
};
use tch::{nn, Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// A head, a batch of features it reads, a target for its output, and the metric names
/// it reports, the primary first.
struct Case {
    head: Box<dyn TaskHead>,
    features: Tensor,
    output: Vec<i64>,
    target: TaskTarget,
    metrics: Vec<&'static str>,
}

fn cases(root: &nn::Path) -> Vec<Case> {
    let path = |k| task_path(root, k) / "head";
    let labels = Tensor::randint(4, [2, 3, 5], (Kind::Int64, Device::Cpu));
    vec![
        Case {
            head: Box::new(MultiLabelHead::new(&path(0), "binding", 6, 3).unwrap()),
            features: Tensor::randn([4, 6], CPU),
            output: vec![4, 3],
            target: TaskTarget::new(
                Tensor::from_slice(&[
                    1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0,
                ])
                .view([4, 3]),
            ),
            metrics: vec![
                "micro_f1", "macro_f1", "mean_auc", "mean_ap", "auc_0", "auc_1", "auc_2",
            ],
        },
        Case {
            head: Box::new(
                SegmentationHead::new(&path(1), "segment", 6, 4)
                    .unwrap()
                    .with_ignore_index(255),
            ),
            features: Tensor::randn([2, 6, 3, 5], CPU),
            output: vec![2, 4, 3, 5],
            target: TaskTarget::new(
                labels.where_self(&Tensor::rand([2, 3, 5], CPU).lt(0.8), &Tensor::from(255i64)),
            ),
            metrics: vec!["miou", "pixel_accuracy"],
        },
        Case {
            head: Box::new(DepthHead::new(&path(2), "depth", 6).unwrap()),
            features: Tensor::randn([2, 6, 3, 5], CPU),
            output: vec![2, 1, 3, 5],
            target: TaskTarget::new(Tensor::rand([2, 3, 5], CPU) + 0.5),
            metrics: vec!["abs_err", "rel_err"],
        },
        Case {
            head: Box::new(NormalHead::new(&path(3), "normal", 6).unwrap()),
            features: Tensor::randn([2, 6, 3, 5], CPU),
            output: vec![2, 3, 3, 5],
            target: TaskTarget::new(Tensor::randn([2, 3, 3, 5], CPU)),
            metrics: vec![
                "mean_angle",
                "median_angle",
                "within_11.25",
                "within_22.5",
                "within_30",
            ],
        },
        Case {
            head: Box::new(SequenceHead::new(&path(4), "ss3", 6, 3).unwrap()),
            features: Tensor::randn([2, 5, 6], CPU),
            output: vec![2, 5, 3],
            target: TaskTarget::new(
                Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0, 0, 1, -1, -1]).view([2, 5]),
            ),
            metrics: vec!["token_accuracy"],
        },
        Case {
            head: Box::new(
                RegressionHead::new(&path(5), "yield", 6, 2, RegressionLoss::GaussianNll).unwrap(),
            ),
            features: Tensor::randn([4, 6], CPU),
            output: vec![4, 4],
            target: TaskTarget::new(Tensor::randn([4, 2], CPU)),
            metrics: vec!["mse", "mae"],
        },
        Case {
            head: Box::new(
                RegressionHead::new(&path(6), "spend", 6, 1, RegressionLoss::huber()).unwrap(),
            ),
            features: Tensor::randn([4, 6], CPU),
            output: vec![4, 1],
            target: TaskTarget::new(Tensor::randn([4], CPU) * 5.0),
            metrics: vec!["mse", "mae"],
        },
    ]
}

#[test]
fn every_head_trains_and_reports_its_metrics() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let cases = cases(&vs.root());
    let groups = ParamGroups::from_var_store(&vs, cases.len()).unwrap();
    let mut losses = Vec::new();
    for case in &cases {
        let head = &case.head;
        assert_eq!(head.in_dim(), 6, "head `{}`", head.name());
        let output = head.forward_t(&case.features, true).unwrap();
        assert_eq!(output.size(), case.output, "head `{}`", head.name());
        let loss = head.loss(&output, &case.target).unwrap();
        assert!(loss.double_value(&[]).is_finite(), "head `{}`", head.name());
        losses.push(loss);
        let mut metrics = head.metrics();
        metrics.update(&output, &case.target).unwrap();
        let values = metrics.compute();
        let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, case.metrics, "head `{}`", head.name());
        assert!(values.iter().all(|v| v.value.is_finite()));
    }
    Tensor::stack(&losses, 0).sum(Kind::Float).backward();
    for (k, params) in groups.task.iter().enumerate() {
        assert_eq!(params.len(), 2, "task {k}");
        for p in params {
            let grad = p.tensor.grad().abs().sum(Kind::Float).double_value(&[]);
            assert!(grad > 0.0, "{} has no gradient", p.name);
        }
    }
}

#[test]
fn heads_name_themselves_in_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    for case in cases(&vs.root()) {
        let head = &case.head;
        let name = head.name().to_string();
        // Features one channel too wide.
        let mut wide = case.features.size();
        let channel = if wide.len() == 3 { 2 } else { 1 };
        wide[channel] += 1;
        match head.forward_t(&Tensor::zeros(wide.as_slice(), CPU), false) {
            Err(Error::Shape { context, .. }) => assert_eq!(context, format!("head `{name}`")),
            other => panic!("head `{name}`: {other:?}"),
        }
        // An output whose last dimension does not fit.
        let mut odd = case.output.clone();
        *odd.last_mut().unwrap() += 1;
        let odd = Tensor::zeros(odd.as_slice(), CPU);
        match head.loss(&odd, &case.target) {
            Err(Error::Shape { context, .. }) => {
                assert!(context.starts_with(&format!("head `{name}`")), "{context}")
            }
            other => panic!("head `{name}`: {other:?}"),
        }
        let err = head.metrics().update(&odd, &case.target).unwrap_err();
        assert!(
            err.to_string().contains(&format!("head `{name}` metrics")),
            "{err}"
        );
        // NaN outputs are reported, not trained on.
        let nan = Tensor::full(case.output.as_slice(), f64::NAN, CPU);
        match head.loss(&nan, &case.target) {
            Err(Error::NonFinite { what, .. }) => assert!(what.contains(&name), "{what}"),
            other => panic!("head `{name}`: {other:?}"),
        }
    }
}

#[test]
fn per_entry_masks_reach_the_heads() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let head = MultiLabelHead::new(&(&root / "m"), "binding", 2, 2).unwrap();
    let logits = Tensor::from_slice(&[3.0f32, -3.0, 0.0, 0.0]).view([2, 2]);
    // Only the two entries of row 0 are labelled, and both are predicted right.
    let target = TaskTarget::masked(
        Tensor::from_slice(&[1.0f32, 0.0, 7.0, 7.0]).view([2, 2]),
        Tensor::from_slice(&[true, true, false, false]).view([2, 2]),
    );
    let loss = head.loss(&logits, &target).unwrap().double_value(&[]);
    assert!((loss - (1.0 + (-3.0f64).exp()).ln()).abs() < 1e-6);
    let mut metrics = head.metrics();
    metrics.update(&logits, &target).unwrap();
    assert_eq!(metrics.compute()[0].value, 1.0);

    // A pixel mask of the wrong shape names the head.
    let segment = SegmentationHead::new(&(&root / "s"), "segment", 2, 3).unwrap();
    let target = TaskTarget::masked(
        Tensor::zeros([1, 2, 2], (Kind::Int64, Device::Cpu)),
        Tensor::ones([1, 4], (Kind::Bool, Device::Cpu)),
    );
    let logits = Tensor::zeros([1, 3, 2, 2], CPU);
    match segment.loss(&logits, &target) {
        Err(Error::Shape { context, .. }) => {
            assert_eq!(context, "head `segment` pixel_cross_entropy mask")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn constructors_reject_impossible_sizes() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let config = |r: mtl_core::Result<()>| matches!(r, Err(Error::Config(_)));
    assert!(config(MultiLabelHead::new(&root, "a", 4, 0).map(drop)));
    assert!(config(SegmentationHead::new(&root, "b", 4, 1).map(drop)));
    assert!(config(SegmentationHead::new(&root, "b", 0, 3).map(drop)));
    assert!(config(DepthHead::new(&root, "c", 0).map(drop)));
    assert!(config(NormalHead::new(&root, "d", -1).map(drop)));
    assert!(config(SequenceHead::new(&root, "e", 4, 1).map(drop)));
    assert!(config(
        RegressionHead::new(&root, "f", 4, 0, RegressionLoss::GaussianNll).map(drop)
    ));
    let err =
        RegressionHead::new(&root, "g", 4, 1, RegressionLoss::Huber { delta: 0.0 }).unwrap_err();
    assert!(err.to_string().contains("head `g`"), "{err}");
    assert!(
        vs.variables().is_empty(),
        "a failed constructor creates no variable"
    );
}

/// The `(context, expected, got)` of a shape error.
fn shape_error<T: std::fmt::Debug>(result: mtl_core::Result<T>) -> (String, String, String) {
    match result {
        Err(Error::Shape {
            context,
            expected,
            got,
        }) => (context, expected, got),
        other => panic!("expected a shape error, got {other:?}"),
    }
}

#[test]
fn shape_errors_spell_out_the_expected_layout() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let s = |context: &str, expected: &str, got: &str| {
        (context.to_string(), expected.to_string(), got.to_string())
    };

    let region = ClassificationHead::new(&(&root / "a"), "region", 4, 3).unwrap();
    assert_eq!(
        shape_error(region.forward_t(&Tensor::zeros([2, 5], CPU), false)),
        s("head `region`", "features [batch, 4]", "Float [2, 5]")
    );
    let tags = SequenceHead::new(&(&root / "b"), "ss3", 4, 3).unwrap();
    assert_eq!(
        shape_error(tags.forward_t(&Tensor::zeros([2, 4], CPU), false)),
        s("head `ss3`", "features [batch, tokens, 4]", "Float [2, 4]")
    );
    let segment = SegmentationHead::new(&(&root / "c"), "segment", 4, 3).unwrap();
    assert_eq!(
        shape_error(segment.forward_t(&Tensor::zeros([2, 5, 1, 1], CPU), false)),
        s(
            "head `segment`",
            "feature maps [batch, 4, height, width]",
            "Float [2, 5, 1, 1]"
        )
    );

    let labels = TaskTarget::new(Tensor::zeros([2], (Kind::Int64, Device::Cpu)));
    let logits = Tensor::zeros([2, 3], CPU);
    assert_eq!(
        shape_error(region.loss(&Tensor::zeros([2, 4], CPU), &labels)),
        s(
            "head `region` cross_entropy",
            "floating [batch, 3] logits",
            "Float [2, 4]"
        )
    );
    assert_eq!(
        shape_error(cross_entropy(&logits.view([6]), &labels)),
        s(
            "cross_entropy",
            "floating [batch, classes] logits",
            "Float [6]"
        )
    );
    let binding = TaskTarget::new(Tensor::zeros([2, 3], CPU));
    assert_eq!(
        shape_error(multilabel_bce_with_logits(&logits.view([6]), &binding)),
        s(
            "multilabel_bce_with_logits",
            "floating [batch, labels] logits",
            "Float [6]"
        )
    );
    let maps = TaskTarget::new(Tensor::zeros([2, 1, 1], (Kind::Int64, Device::Cpu)));
    assert_eq!(
        shape_error(pixel_cross_entropy(&logits, &maps, -1)),
        s(
            "pixel_cross_entropy",
            "floating [batch, classes, height, width] logits",
            "Float [2, 3]"
        )
    );
    assert_eq!(
        shape_error(segment.loss(&Tensor::zeros([2, 4, 1, 1], CPU), &maps)),
        s(
            "head `segment` pixel_cross_entropy",
            "floating [batch, 3, height, width] logits",
            "Float [2, 4, 1, 1]"
        )
    );
    let sequences = TaskTarget::new(Tensor::zeros([2, 1], (Kind::Int64, Device::Cpu)));
    assert_eq!(
        shape_error(token_cross_entropy(&logits, &sequences, None)),
        s(
            "token_cross_entropy",
            "floating [batch, tokens, classes] logits",
            "Float [2, 3]"
        )
    );
    assert_eq!(
        shape_error(tags.loss(&Tensor::zeros([2, 1, 4], CPU), &sequences)),
        s(
            "head `ss3` token_cross_entropy",
            "floating [batch, tokens, 3] logits",
            "Float [2, 1, 4]"
        )
    );
}

#[test]
fn constructors_say_which_head_needs_more() {
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let message = |r: mtl_core::Result<()>| r.unwrap_err().to_string();
    assert!(
        message(ClassificationHead::new(&root, "region", 4, 1).map(drop))
            .contains("classification head `region` needs at least 2 classes, got 1")
    );
    assert!(
        message(SegmentationHead::new(&root, "segment", 4, 0).map(drop))
            .contains("segmentation head `segment` needs at least 2 classes, got 0")
    );
    assert!(message(SequenceHead::new(&root, "ss3", 4, 1).map(drop))
        .contains("sequence head `ss3` needs at least 2 classes, got 1"));
    assert!(
        message(RegressionHead::new(&root, "price", 4, 0, RegressionLoss::Mse).map(drop))
            .contains("regression head `price` needs at least 1 output, got 0")
    );
}

#[test]
fn a_nan_inside_a_validity_mask_is_an_error_outside_it_a_hole() {
    let vs = nn::VarStore::new(Device::Cpu);
    let depth = DepthHead::new(&(task_path(&vs.root(), 0) / "head"), "depth", 4).unwrap();
    let normals = NormalHead::new(&(task_path(&vs.root(), 1) / "head"), "normals", 4).unwrap();
    let features = Tensor::randn([2, 4, 2, 3], CPU);
    let d = Tensor::rand([2, 2, 3], CPU) + 0.5;
    let _ = d.get(1).get(0).get(2).fill_(f64::NAN);
    // No mask: the NaN is an unmeasured pixel, skipped.
    let out = depth.forward_t(&features, true).unwrap();
    let loss = depth.loss(&out, &TaskTarget::new(d.copy())).unwrap();
    assert!(loss.double_value(&[]).is_finite());
    // A mask that marks it measured: an error naming the image and the pixel.
    let all = Tensor::ones([2, 2, 3], (Kind::Bool, Device::Cpu));
    let err = depth
        .loss(&out, &TaskTarget::masked(d.copy(), all.copy()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch row 1") && err.contains("[0, 2]"),
        "{err}"
    );
    // A mask that leaves it out: fine.
    let _ = all.get(1).get(0).get(2).fill_(0);
    assert!(depth.loss(&out, &TaskTarget::masked(d, all.copy())).is_ok());

    let n = Tensor::randn([2, 3, 2, 3], CPU);
    let _ = n.get(0).get(1).get(1).get(1).fill_(f64::NAN);
    let out = normals.forward_t(&features, true).unwrap();
    let marked = Tensor::ones([2, 2, 3], (Kind::Bool, Device::Cpu));
    let err = normals
        .loss(&out, &TaskTarget::masked(n, marked))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch row 0") && err.contains("[1, 1]"),
        "{err}"
    );
}
