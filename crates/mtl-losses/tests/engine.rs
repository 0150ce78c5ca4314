//! The public step engine on models `mtl` did not build: its gradients equal the
//! stages done by hand, rep-grad flows through the representation, absent tasks are
//! zero rows, and bad input is a typed error that names what is wrong.

use mtl_core::{task_jacobian, Error};
use mtl_losses::engine::{self, Backward, Wrt};
use mtl_losses::{by_name, StepContext};
use tch::{nn, nn::Module, Device, Kind, Tensor};

/// A 4→3 trunk with two 3→1 heads, in f64, and its data.
struct Toy {
    vs: nn::VarStore,
    trunk: nn::Linear,
    heads: [nn::Linear; 2],
    x: Tensor,
    y: Tensor,
}

fn toy() -> Toy {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let trunk = nn::linear(vs.root() / "trunk", 4, 3, Default::default());
    let heads = [
        nn::linear(vs.root() / "h0", 3, 1, Default::default()),
        nn::linear(vs.root() / "h1", 3, 1, Default::default()),
    ];
    vs.double();
    // Fixed values (not libtorch's generator), so parallel tests cannot change them.
    tch::no_grad(|| {
        for (i, (_, mut t)) in vs.variables().into_iter().enumerate() {
            let n = t.numel() as i64;
            let v = Tensor::arange(n, (Kind::Double, Device::Cpu)) * 0.37 + i as f64 * 0.11;
            t.copy_(&v.sin().view(t.size().as_slice()));
        }
    });
    let x = (Tensor::arange(24, (Kind::Double, Device::Cpu)) * 0.3)
        .cos()
        .view([6, 4]);
    let y = (Tensor::arange(12, (Kind::Double, Device::Cpu)) * 0.7)
        .sin()
        .view([6, 2]);
    Toy {
        vs,
        trunk,
        heads,
        x,
        y,
    }
}

impl Toy {
    fn features(&self) -> Tensor {
        self.trunk.forward(&self.x).relu()
    }
    fn losses(&self, z: &Tensor) -> Vec<Tensor> {
        (0..2)
            .map(|k| {
                (self.heads[k].forward(z).squeeze_dim(1) - self.y.select(1, k as i64))
                    .square()
                    .mean(Kind::Double)
            })
            .collect()
    }
    fn shared(&self) -> Vec<Tensor> {
        vec![
            self.trunk.ws.shallow_clone(),
            self.trunk.bs.as_ref().unwrap().shallow_clone(),
        ]
    }
    fn task_params(&self) -> Vec<Vec<Tensor>> {
        self.heads
            .iter()
            .map(|h| vec![h.ws.shallow_clone(), h.bs.as_ref().unwrap().shallow_clone()])
            .collect()
    }
    fn grads(&self, params: &[Tensor]) -> Vec<Tensor> {
        params.iter().map(|p| p.grad().copy()).collect()
    }
    fn zero_grads(&self) {
        for (_, t) in self.vs.variables() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }
}

fn flat(ts: &[Tensor]) -> Tensor {
    Tensor::cat(&ts.iter().map(|t| t.reshape([-1])).collect::<Vec<_>>(), 0)
}

fn close(a: &Tensor, b: &Tensor) {
    assert!(a.allclose(b, 1e-10, 1e-12, false), "{a:?}\nvs\n{b:?}");
}

#[test]
fn backward_equals_the_stages_by_hand() {
    let t = toy();
    let params: Vec<Tensor> = t
        .shared()
        .into_iter()
        .chain(t.task_params().into_iter().flatten())
        .collect();
    // By hand: J over every parameter, UPGrad's combination.
    let losses = t.losses(&t.features());
    let jac = task_jacobian(&losses, &params).unwrap();
    let values: Vec<f64> = losses.iter().map(|l| l.double_value(&[])).collect();
    let ctx = StepContext {
        step: 0,
        epoch: 0,
        losses: &values,
    };
    let mut reference = by_name("upgrad", 2, 0).unwrap();
    let expected = engine::combine(&mut reference, &jac, &ctx)
        .unwrap()
        .gradient;

    let losses = t.losses(&t.features());
    let mut method = by_name("upgrad", 2, 0).unwrap();
    let out = engine::backward(&losses, &params, &mut method).unwrap();
    assert_eq!(out.losses, values);
    assert_eq!(out.weights.len(), 2);
    close(&flat(&t.grads(&params)), &expected);

    // Gradients accumulate, as Tensor::backward's do.
    let losses = t.losses(&t.features());
    engine::backward(&losses, &params, &mut method).unwrap();
    close(&flat(&t.grads(&params)), &(&expected * 2.0));
}

#[test]
fn task_parameters_get_their_own_task_gradient() {
    let t = toy();
    let (shared, tasks) = (t.shared(), t.task_params());
    let losses = t.losses(&t.features());
    let mut method = by_name("mgda", 2, 0).unwrap();
    Backward::new(&losses, Wrt::Parameters(&shared))
        .task_parameters(&tasks)
        .run(&mut method)
        .unwrap();
    for (k, own) in tasks.iter().enumerate() {
        let losses = t.losses(&t.features());
        let expected = Tensor::run_backward(&[&losses[k]], own, false, false);
        close(&flat(&t.grads(own)), &flat(&expected));
    }
}

#[test]
fn rep_grad_flows_through_the_representation() {
    let t = toy();
    let (shared, tasks) = (t.shared(), t.task_params());
    let z = t.features();
    let losses = t.losses(&z);
    // By hand: J with respect to z, combined, then z·g backpropagated.
    let jz = task_jacobian(&losses, &[z.shallow_clone()]).unwrap();
    let values: Vec<f64> = losses.iter().map(|l| l.double_value(&[])).collect();
    let ctx = StepContext {
        step: 0,
        epoch: 0,
        losses: &values,
    };
    let g = engine::combine(&mut by_name("pcgrad", 2, 3).unwrap(), &jz, &ctx)
        .unwrap()
        .gradient;
    let expected = Tensor::run_backward(
        &[(&z * g.view(z.size().as_slice())).sum(Kind::Double)],
        &shared,
        false,
        false,
    );

    let z = t.features();
    let losses = t.losses(&z);
    let mut method = by_name("pcgrad", 2, 3).unwrap();
    engine::mtl_backward(&losses, &z, &shared, &tasks, &mut method).unwrap();
    close(&flat(&t.grads(&shared)), &flat(&expected));
}

#[test]
fn a_weighting_backpropagates_its_combined_loss_and_exposes_its_parameters() {
    let t = toy();
    let params: Vec<Tensor> = t
        .shared()
        .into_iter()
        .chain(t.task_params().into_iter().flatten())
        .collect();
    let mut method = by_name("uw", 2, 0).unwrap();
    let learnable = method.parameters();
    assert_eq!(
        learnable.len(),
        1,
        "UW's log-variances are for the user's optimiser"
    );
    let losses = t.losses(&t.features());
    engine::backward(&losses, &params, &mut method).unwrap();
    let got = flat(&t.grads(&params));
    assert!(learnable[0].grad().defined());
    // By hand: L/(2·exp(s)) + s/2 summed, with s = −0.5 (LibMTL's init).
    t.zero_grads();
    let losses = t.losses(&t.features());
    let s: f64 = -0.5;
    let total = losses
        .iter()
        .map(|l| l * (0.5 * (-s).exp()) + s / 2.0)
        .reduce(|a, b| a + b)
        .unwrap();
    let expected = flat(&Tensor::run_backward(&[total], &params, false, false));
    // UW keeps its scales in f32, so its factor is rounded there.
    assert!(
        got.allclose(&expected, 1e-6, 1e-9, false),
        "{got:?} vs {expected:?}"
    );
}

#[test]
fn an_absent_task_is_a_zero_row_and_leaves_its_head_alone() {
    let t = toy();
    let (shared, tasks) = (t.shared(), t.task_params());
    let z = t.features();
    let mut losses = t.losses(&z);
    losses[1] = Tensor::zeros([], (Kind::Double, Device::Cpu));
    let mut method = by_name("mean", 2, 0).unwrap();
    let out = Backward::new(&losses, Wrt::Parameters(&shared))
        .task_parameters(&tasks)
        .absent(&[false, true])
        .run(&mut method)
        .unwrap();
    assert_eq!(out.losses[1], 0.0);
    // The mean of (g0, 0) is g0 / 2.
    let l0 = t.losses(&t.features()).swap_remove(0);
    let g0 = flat(&Tensor::run_backward(&[l0], &shared, false, false));
    close(&flat(&t.grads(&shared)), &(g0 / 2.0));
    assert_eq!(
        f64::try_from(flat(&t.grads(&tasks[1])).abs().sum(Kind::Double)).unwrap(),
        0.0
    );
}

fn config_error_mentions(err: Error, words: &[&str]) {
    let text = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{text}");
    for w in words {
        assert!(text.contains(w), "`{w}` not in: {text}");
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let t = toy();
    let shared = t.shared();
    let mut method = by_name("upgrad", 2, 0).unwrap();

    // K = 0.
    let err = engine::backward(&[], &shared, &mut method).unwrap_err();
    assert!(matches!(err, Error::TaskCount { got: 0, .. }), "{err}");

    // A loss that is not a scalar names its task.
    let mut losses = t.losses(&t.features());
    losses[1] = t
        .features()
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Double);
    let err = engine::backward(&losses, &shared, &mut method).unwrap_err();
    assert!(
        matches!(err, Error::Shape { ref context, .. } if context.contains("task 1")),
        "{err}"
    );

    // A loss that does not depend on the given parameters names its task.
    let heads_only = t.task_params().swap_remove(0);
    let mut losses = t.losses(&t.features());
    losses[1] = t.heads[1].forward(&t.features()).mean(Kind::Double);
    let err = engine::backward(&losses, &heads_only, &mut method).unwrap_err();
    config_error_mentions(err, &["task 1", "does not depend"]);

    // A loss without a graph names its task.
    let mut losses = t.losses(&t.features());
    losses[0] = losses[0].detach();
    let err = engine::backward(&losses, &shared, &mut method).unwrap_err();
    config_error_mentions(err, &["task 0", "no graph"]);

    // A representation that does not require grad.
    let z = t.features().detach();
    let losses = t.losses(&z);
    let err = engine::mtl_backward(&losses, &z, &shared, &[], &mut method).unwrap_err();
    config_error_mentions(err, &["representation", "require grad"]);

    // A parameter listed twice, as shared and as a task's.
    let losses = t.losses(&t.features());
    let tasks = vec![vec![shared[0].shallow_clone()], vec![]];
    let err = Backward::new(&losses, Wrt::Parameters(&shared))
        .task_parameters(&tasks)
        .run(&mut method)
        .unwrap_err();
    config_error_mentions(err, &["parameter 0 of task 0", "shared parameter 0"]);

    // A method built for another K.
    let losses = t.losses(&t.features());
    let mut three = by_name("nash_mtl", 3, 0).unwrap();
    let err = engine::backward(&losses, &shared, &mut three).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TaskCount {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{err}"
    );
    let mut three = by_name("dwa", 3, 0).unwrap();
    let err = engine::backward(&losses, &shared, &mut three).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TaskCount {
                expected: 3,
                got: 2,
                ..
            }
        ),
        "{err}"
    );

    // Nothing was written by the refused steps.
    for p in &shared {
        let g = p.grad();
        assert!(!g.defined() || f64::try_from(g.abs().sum(Kind::Double)).unwrap() == 0.0);
    }
}
