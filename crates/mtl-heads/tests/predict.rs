//! `TaskHead::predict`: each built-in head reads its output as the task's answer.

use mtl_core::task_path;
use mtl_heads::{
    BinaryHead, ClassificationHead, MultiLabelHead, Prediction, RegressionHead, RegressionLoss,
    TaskHead,
};
use tch::{nn, Device, Kind, Tensor};

fn close(a: &Tensor, b: &Tensor) -> bool {
    a.allclose(b, 1e-6, 1e-6, false)
}

#[test]
fn each_head_predicts_its_kind() {
    let vs = nn::VarStore::new(Device::Cpu);
    let p = |k| task_path(&vs.root(), k) / "head";
    let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));

    let c = ClassificationHead::new(&p(0), "c", 4, 3).unwrap();
    let out = c.forward_t(&x, false).unwrap();
    let Prediction::Classes(probs) = c.predict(&out).unwrap() else {
        panic!("classes")
    };
    assert_eq!(probs.size(), [5, 3]);
    assert!(close(&probs, &out.softmax(-1, Kind::Float)));
    assert!(close(
        &probs.sum_dim_intlist(-1, false, Kind::Float),
        &Tensor::ones([5], (Kind::Float, Device::Cpu))
    ));

    let b = BinaryHead::new(&p(1), "b", 4).unwrap();
    let out = b.forward_t(&x, false).unwrap();
    let Prediction::Positive(prob) = b.predict(&out).unwrap() else {
        panic!("binary")
    };
    assert_eq!(prob.size(), [5]);
    assert!(close(&prob, &out.sigmoid()));

    let r = RegressionHead::new(&p(2), "r", 4, 2, RegressionLoss::GaussianNll).unwrap();
    let out = r.forward_t(&x, false).unwrap();
    let Prediction::Values(mean) = r.predict(&out).unwrap() else {
        panic!("values")
    };
    assert_eq!(mean.size(), [5, 2]);
    assert!(close(&mean, &out.narrow(1, 0, 2)));

    let m = MultiLabelHead::new(&p(3), "m", 4, 6).unwrap();
    let out = m.forward_t(&x, false).unwrap();
    let Prediction::Positive(prob) = m.predict(&out).unwrap() else {
        panic!("multi-label")
    };
    assert_eq!(prob.size(), [5, 6]);
}

#[test]
fn an_output_of_the_wrong_width_is_a_shape_error() {
    let vs = nn::VarStore::new(Device::Cpu);
    let c = ClassificationHead::new(&(vs.root() / "c"), "c", 4, 3).unwrap();
    let wrong = Tensor::zeros([2, 5], (Kind::Float, Device::Cpu));
    let err = c.predict(&wrong).unwrap_err();
    assert!(matches!(err, mtl_core::Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("`c`"), "{err}");
    let b = BinaryHead::new(&(vs.root() / "b"), "b", 4).unwrap();
    assert!(b.predict(&wrong).is_err());
    let r = RegressionHead::new(&(vs.root() / "r"), "r", 4, 1, RegressionLoss::Mse).unwrap();
    assert!(r.predict(&wrong).is_err());
}
