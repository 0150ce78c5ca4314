//! The task Jacobian: one row per task loss, one column per shared scalar.

use crate::{Error, Result};
use tch::Tensor;

/// Checks that every task loss is a finite scalar; names the task otherwise.
pub fn check_losses(losses: &[Tensor], step: Option<u64>) -> Result<()> {
    if losses.is_empty() {
        return Err(Error::TaskCount {
            context: "task losses".into(),
            expected: 0,
            got: 0,
        });
    }
    for (k, l) in losses.iter().enumerate() {
        if l.numel() != 1 {
            return Err(Error::shape(
                format!("loss of task {k}"),
                "a scalar",
                format!("{:?}", l.size()),
            ));
        }
        let v = l.f_double_value(&[])?;
        if !v.is_finite() {
            return Err(Error::NonFinite {
                what: "loss".into(),
                task: Some(k),
                step,
                value: v.to_string(),
            });
        }
    }
    Ok(())
}

/// The K×d Jacobian of `losses` (K scalars) with respect to `inputs` (flattened and
/// concatenated, d scalars in all). Row k is ∇ loss_k. Inputs a loss does not depend on
/// contribute zeros. The graph is kept, so the caller can still backpropagate.
pub fn task_jacobian(losses: &[Tensor], inputs: &[Tensor]) -> Result<Tensor> {
    if losses.is_empty() {
        return Err(Error::TaskCount {
            context: "task_jacobian".into(),
            expected: 0,
            got: 0,
        });
    }
    if inputs.is_empty() {
        return Err(Error::config(
            "task_jacobian: no shared inputs to differentiate",
        ));
    }
    let mut rows = Vec::with_capacity(losses.len());
    for loss in losses {
        let grads = Tensor::f_run_backward(&[loss], inputs, true, false)?;
        let flat: Vec<Tensor> = grads
            .iter()
            .zip(inputs)
            .map(|(g, p)| {
                if g.defined() {
                    g.reshape([-1])
                } else {
                    p.zeros_like().reshape([-1])
                }
            })
            .collect();
        rows.push(Tensor::f_cat(&flat, 0)?);
    }
    Ok(Tensor::f_stack(&rows, 0)?)
}

/// Checks a Jacobian for NaN/Inf and reports the first task row that has one.
pub fn check_jacobian(jac: &Tensor, step: Option<u64>) -> Result<()> {
    if jac.dim() != 2 {
        return Err(Error::shape(
            "Jacobian",
            "[K, d]",
            format!("{:?}", jac.size()),
        ));
    }
    let finite_rows = jac.f_isfinite()?.f_all_dim(1, false)?;
    let k = jac.size()[0];
    for i in 0..k {
        if finite_rows.f_int64_value(&[i])? == 0 {
            return Err(Error::NonFinite {
                what: "Jacobian row".into(),
                task: Some(i as usize),
                step,
                value: "NaN or Inf".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn jacobian_rows_are_task_gradients() {
        let w = Tensor::from_slice(&[1.0f64, 2.0, 3.0]).set_requires_grad(true);
        let l0 = (&w * &w).sum(Kind::Double); // grad 2w
        let l1 = w.get(0) * 5.0; // grad [5,0,0]
        let j = task_jacobian(&[l0, l1], &[w]).unwrap();
        let expect = Tensor::from_slice(&[2.0f64, 4.0, 6.0, 5.0, 0.0, 0.0]).view([2, 3]);
        assert!(j.allclose(&expect, 1e-12, 1e-12, false));
    }

    #[test]
    fn nan_in_a_row_names_the_task() {
        let j = Tensor::from_slice(&[1.0f64, 2.0, f64::NAN, 0.0]).view([2, 2]);
        match check_jacobian(&j, Some(4)) {
            Err(Error::NonFinite {
                task: Some(1),
                step: Some(4),
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(check_jacobian(&Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)), None).is_ok());
    }

    #[test]
    fn non_finite_loss_names_the_task() {
        let l = [Tensor::from(1.0f64), Tensor::from(f64::INFINITY)];
        assert!(matches!(
            check_losses(&l, Some(2)),
            Err(Error::NonFinite { task: Some(1), .. })
        ));
        assert!(matches!(
            check_losses(&[], None),
            Err(Error::TaskCount { .. })
        ));
    }
}
