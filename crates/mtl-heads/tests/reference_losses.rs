//! The losses of the multi-label, per-pixel, token and extra regression heads against
//! tch's own functions applied to the labelled subset by hand, and their exact,
//! differentiable zero when nothing is labelled.

use mtl_core::TaskTarget;
use mtl_heads::{
    depth_l1, gaussian_nll, huber, multilabel_bce_with_logits, normal_cosine_loss,
    pixel_cross_entropy, token_cross_entropy,
};
use tch::{Device, Kind, Reduction, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

fn assert_close(got: &Tensor, want: &Tensor) {
    let (a, b) = (got.double_value(&[]), want.double_value(&[]));
    assert!((a - b).abs() < 1e-5, "{a} != {b}");
}

/// Bernoulli(p) booleans of the given shape.
fn coin(shape: &[i64], p: f64) -> Tensor {
    Tensor::rand(shape, CPU).lt(p)
}

#[test]
fn multilabel_bce_is_bce_over_labelled_entries() {
    tch::manual_seed(0);
    let logits = Tensor::randn([6, 4], CPU);
    let truth = coin(&[6, 4], 0.4).to_kind(Kind::Float);
    let entries = coin(&[6, 4], 0.7);
    // Unlabelled entries hold NaN, which must not reach the loss.
    let values = truth.where_self(&entries, &Tensor::full([6, 4], f64::NAN, CPU));
    let got =
        multilabel_bce_with_logits(&logits, &TaskTarget::masked(values, entries.copy())).unwrap();
    let want = logits
        .masked_select(&entries)
        .binary_cross_entropy_with_logits::<Tensor>(
            &truth.masked_select(&entries),
            None,
            None,
            Reduction::Mean,
        );
    assert_close(&got, &want);

    // A row mask drops whole rows.
    let rows = Tensor::from_slice(&[true, false, true, true, false, true]);
    let kept = rows.nonzero().flatten(0, -1);
    let got = multilabel_bce_with_logits(&logits, &TaskTarget::masked(truth.copy(), rows)).unwrap();
    let want = logits
        .index_select(0, &kept)
        .binary_cross_entropy_with_logits::<Tensor>(
            &truth.index_select(0, &kept),
            None,
            None,
            Reduction::Mean,
        );
    assert_close(&got, &want);
}

#[test]
fn pixel_cross_entropy_is_torch_cross_entropy_with_ignore_index() {
    tch::manual_seed(1);
    let logits = Tensor::randn([3, 5, 4, 6], CPU);
    let labels = Tensor::randint(5, [3, 4, 6], (Kind::Int64, Device::Cpu));
    let labels = labels.where_self(&coin(&[3, 4, 6], 0.8), &Tensor::from(255i64));
    let got = pixel_cross_entropy(&logits, &TaskTarget::new(labels.copy()), 255).unwrap();
    let want = logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, 255, 0.0);
    assert_close(&got, &want);

    // An image mask and a pixel mask: torch sees the kept images, masked pixels ignored.
    let images = Tensor::from_slice(&[true, false, true]);
    let got =
        pixel_cross_entropy(&logits, &TaskTarget::masked(labels.copy(), images), 255).unwrap();
    let kept = Tensor::from_slice(&[0i64, 2]);
    let want = logits.index_select(0, &kept).cross_entropy_loss::<Tensor>(
        &labels.index_select(0, &kept),
        None,
        Reduction::Mean,
        255,
        0.0,
    );
    assert_close(&got, &want);
    let pixels = coin(&[3, 4, 6], 0.5);
    let got = pixel_cross_entropy(
        &logits,
        &TaskTarget::masked(labels.copy(), pixels.copy()),
        255,
    )
    .unwrap();
    let hidden = labels.where_self(&pixels, &Tensor::from(255i64));
    let want = logits.cross_entropy_loss::<Tensor>(&hidden, None, Reduction::Mean, 255, 0.0);
    assert_close(&got, &want);
}

#[test]
fn depth_l1_is_l1_over_measured_pixels() {
    tch::manual_seed(2);
    let pred = Tensor::randn([2, 1, 5, 5], CPU);
    let depth = Tensor::rand([2, 5, 5], CPU) * 10.0;
    let depth = depth.where_self(&coin(&[2, 5, 5], 0.7), &Tensor::from(0.0f32));
    let measured = depth.gt(0.0);
    let got = depth_l1(&pred, &TaskTarget::new(depth.copy())).unwrap();
    let want = pred
        .squeeze_dim(1)
        .masked_select(&measured)
        .l1_loss(&depth.masked_select(&measured), Reduction::Mean);
    assert_close(&got, &want);
    // The [B, 1, H, W] layout of the target reads the same.
    let got = depth_l1(&pred, &TaskTarget::new(depth.unsqueeze(1))).unwrap();
    assert_close(&got, &want);
}

#[test]
fn normal_loss_is_one_minus_torch_cosine_similarity() {
    tch::manual_seed(3);
    let pred = Tensor::randn([2, 3, 4, 4], CPU);
    let truth = Tensor::randn([2, 3, 4, 4], CPU);
    let measured = coin(&[2, 4, 4], 0.6);
    let truth = truth * measured.unsqueeze(1).to_kind(Kind::Float);
    let got = normal_cosine_loss(&pred, &TaskTarget::new(truth.copy())).unwrap();
    let cosine = Tensor::cosine_similarity(&pred, &truth, 1, 1e-8);
    let want = cosine.masked_select(&measured).mean(Kind::Float).neg() + 1.0;
    assert_close(&got, &want);
}

#[test]
fn token_cross_entropy_is_torch_cross_entropy_over_real_tokens() {
    tch::manual_seed(4);
    let logits = Tensor::randn([3, 7, 4], CPU);
    let tags = Tensor::randint(4, [3, 7], (Kind::Int64, Device::Cpu));
    // Sequence lengths 7, 4 and 2: the rest is padding, tagged -1.
    let lengths = Tensor::from_slice(&[7i64, 4, 2]).unsqueeze(1);
    let real = Tensor::arange(7, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&lengths);
    let padded = tags.where_self(&real, &Tensor::from(-1i64));
    let want = logits.view([21, 4]).cross_entropy_loss::<Tensor>(
        &padded.view([21]),
        None,
        Reduction::Mean,
        -1,
        0.0,
    );
    let by_label = token_cross_entropy(&logits, &TaskTarget::new(padded), Some(-1)).unwrap();
    assert_close(&by_label, &want);
    // The same padding given as a mask, with garbage tags on the padding.
    let garbage = tags.where_self(&real, &Tensor::from(99i64));
    let by_mask = token_cross_entropy(&logits, &TaskTarget::masked(garbage, real), None).unwrap();
    assert_close(&by_mask, &want);
}

#[test]
fn huber_is_torch_huber_on_labelled_rows() {
    tch::manual_seed(5);
    let pred = Tensor::randn([6, 2], CPU) * 3.0;
    let truth = Tensor::randn([6, 2], CPU);
    let rows = Tensor::from_slice(&[true, true, false, true, false, true]);
    let kept = rows.nonzero().flatten(0, -1);
    let target = TaskTarget::masked(truth.copy(), rows);
    for delta in [1.0, 0.3, 4.0] {
        let got = huber(&pred, &target, delta).unwrap();
        let want = pred.index_select(0, &kept).huber_loss(
            &truth.index_select(0, &kept),
            Reduction::Mean,
            delta,
        );
        assert_close(&got, &want);
    }
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            huber(&pred, &target, bad),
            Err(mtl_core::Error::Config(_))
        ));
    }
}

#[test]
fn gaussian_nll_matches_torch_gaussian_nll_loss() {
    tch::manual_seed(6);
    let mean = Tensor::randn([5, 2], CPU);
    let log_variance = Tensor::randn([5, 2], CPU);
    let truth = Tensor::randn([5, 2], CPU);
    let rows = Tensor::from_slice(&[true, false, true, true, true]);
    let kept = rows.nonzero().flatten(0, -1);
    let pred = Tensor::cat(&[&mean, &log_variance], 1);
    let got = gaussian_nll(&pred, &TaskTarget::masked(truth.copy(), rows)).unwrap();
    // torch.nn.functional.gaussian_nll_loss(mean, target, var, full=False, eps=1e-6).
    let var = log_variance.index_select(0, &kept).exp().clamp_min(1e-6);
    let residual = mean.index_select(0, &kept) - truth.index_select(0, &kept);
    let want = (var.log() + residual.square() / &var).mean(Kind::Float) * 0.5;
    assert_close(&got, &want);

    // Below eps the variance is clamped, but the gradient flows as if it were not:
    // d/ds ½(log v + r²/v) at v = eᔆ, with v held at eps, is ½(1/eps − r²/eps²)·eᔆ.
    let pred = Tensor::from_slice(&[0.0f32, -20.0])
        .view([1, 2])
        .set_requires_grad(true);
    let loss = gaussian_nll(&pred, &TaskTarget::new(Tensor::from_slice(&[0.0f32]))).unwrap();
    assert_close(&loss, &Tensor::from(0.5 * 1e-6f64.ln()));
    loss.backward();
    let grad = pred.grad().double_value(&[0, 1]);
    let want = 0.5 / 1e-6 * (-20.0f64).exp();
    assert!((grad - want).abs() < 1e-3 * want, "{grad} != {want}");
}

type Loss = Box<dyn Fn(&Tensor, &TaskTarget) -> mtl_core::Result<Tensor>>;

#[test]
fn nothing_labelled_gives_zero_loss_and_zero_gradient() {
    let none = |shape: &[i64]| Tensor::zeros(shape, (Kind::Bool, Device::Cpu));
    let ints = |shape: &[i64]| Tensor::zeros(shape, (Kind::Int64, Device::Cpu));
    let cases: Vec<(Tensor, TaskTarget, Loss)> = vec![
        (
            Tensor::randn([3, 2], CPU),
            TaskTarget::masked(Tensor::full([3, 2], f64::NAN, CPU), none(&[3, 2])),
            Box::new(multilabel_bce_with_logits),
        ),
        (
            Tensor::randn([2, 3, 2, 2], CPU),
            TaskTarget::new(ints(&[2, 2, 2]).fill_(-1)),
            Box::new(|o, t| pixel_cross_entropy(o, t, -1)),
        ),
        (
            Tensor::randn([2, 3, 2, 2], CPU),
            TaskTarget::masked(ints(&[2, 2, 2]), none(&[2])),
            Box::new(|o, t| pixel_cross_entropy(o, t, 255)),
        ),
        (
            Tensor::randn([2, 1, 2, 2], CPU),
            TaskTarget::new(Tensor::zeros([2, 2, 2], CPU)),
            Box::new(depth_l1),
        ),
        (
            Tensor::randn([2, 3, 2, 2], CPU),
            TaskTarget::new(Tensor::zeros([2, 3, 2, 2], CPU)),
            Box::new(normal_cosine_loss),
        ),
        (
            Tensor::randn([2, 3, 4], CPU),
            TaskTarget::masked(ints(&[2, 3]).fill_(7), none(&[2, 3])),
            Box::new(|o, t| token_cross_entropy(o, t, None)),
        ),
        (
            Tensor::randn([3, 2], CPU),
            TaskTarget::masked(Tensor::full([3, 2], f64::NAN, CPU), none(&[3])),
            Box::new(|o, t| huber(o, t, 1.0)),
        ),
        (
            Tensor::randn([3, 4], CPU),
            TaskTarget::masked(Tensor::full([3, 2], f64::NAN, CPU), none(&[3])),
            Box::new(gaussian_nll),
        ),
    ];
    for (i, (output, target, loss_fn)) in cases.into_iter().enumerate() {
        let output = output.set_requires_grad(true);
        let loss = loss_fn(&output, &target).unwrap();
        assert_eq!(loss.size(), Vec::<i64>::new(), "case {i}");
        assert_eq!(loss.double_value(&[]), 0.0, "case {i}");
        loss.backward();
        let grad = output.grad();
        assert!(grad.defined(), "case {i}");
        assert_eq!(
            grad.abs().sum(Kind::Float).double_value(&[]),
            0.0,
            "case {i}"
        );
    }
}
