//! The task Jacobian: one row per task loss, one column per shared scalar.

use crate::{Error, Result};
use tch::Tensor;

/// Checks that every task loss is a finite scalar, naming the task otherwise, and
/// returns their values (read once: each read is a call into libtorch).
pub fn check_losses(losses: &[Tensor], step: Option<u64>) -> Result<Vec<f64>> {
    if losses.is_empty() {
        return Err(Error::TaskCount {
            context: "task losses".into(),
            expected: 0,
            got: 0,
        });
    }
    let mut values = Vec::with_capacity(losses.len());
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
        values.push(v);
    }
    Ok(values)
}

/// The K×d Jacobian of `losses` (K scalars) with respect to `inputs` (flattened and
/// concatenated, d scalars in all). Row k is ∇ loss_k. Inputs a loss does not depend on
/// contribute zeros. The graph is kept, so the caller can still backpropagate.
///
/// A convenience over [`jacobian_rows`], the one builder, with no task parameters.
pub fn task_jacobian(losses: &[Tensor], inputs: &[Tensor]) -> Result<Tensor> {
    if inputs.is_empty() {
        return Err(Error::config(
            "task_jacobian: no shared inputs to differentiate",
        ));
    }
    jacobian_rows(&JacobianRequest::new(losses, inputs).keep_graph(true))
}

/// What [`jacobian_rows`] differentiates, and what it may do on the way.
#[derive(Debug, Clone, Copy)]
pub struct JacobianRequest<'a> {
    /// The K task losses (scalars).
    pub losses: &'a [Tensor],
    /// What the rows are taken with respect to (shared parameters, or a shared
    /// representation); d is their total size.
    pub inputs: &'a [Tensor],
    /// `task_parameters[k]`: task k's own parameters, which receive ∇ loss_k in their
    /// `.grad()` (accumulated) from the same backward pass as row k. Empty for none.
    pub task_parameters: &'a [Vec<Tensor>],
    /// `absent[k]`: task k has no loss this step (its loss may be a constant); its row
    /// is zero and its parameters are left alone. Empty for "every task is present".
    pub absent: &'a [bool],
    /// Keep the graph after the last row (to backpropagate through it again).
    pub keep_graph: bool,
    /// The training step, for error messages.
    pub step: Option<u64>,
}

impl<'a> JacobianRequest<'a> {
    /// Rows of `losses` with respect to `inputs`; no task parameters, every task
    /// present, the graph freed after the last row.
    pub fn new(losses: &'a [Tensor], inputs: &'a [Tensor]) -> Self {
        JacobianRequest {
            losses,
            inputs,
            task_parameters: &[],
            absent: &[],
            keep_graph: false,
            step: None,
        }
    }
    /// Gives each task's own parameters (see [`JacobianRequest::task_parameters`]).
    pub fn task_parameters(mut self, params: &'a [Vec<Tensor>]) -> Self {
        self.task_parameters = params;
        self
    }
    /// Marks tasks without a loss this step.
    pub fn absent(mut self, absent: &'a [bool]) -> Self {
        self.absent = absent;
        self
    }
    /// Keeps (or frees) the graph after the last row.
    pub fn keep_graph(mut self, keep: bool) -> Self {
        self.keep_graph = keep;
        self
    }
    /// Names the step in errors.
    pub fn at_step(mut self, step: u64) -> Self {
        self.step = Some(step);
        self
    }
}

/// Checks the optional per-task lists of a step against its K losses: task parameter
/// lists and the absent-task mask are either empty or one per task.
pub fn check_per_task_lists(k: usize, parameters: usize, absent: usize, of: &str) -> Result<()> {
    for (what, n) in [
        ("task parameter lists", parameters),
        ("absent-task mask", absent),
    ] {
        if n != 0 && n != k {
            return Err(Error::TaskCount {
                context: format!("{what} of {of}"),
                expected: k,
                got: n,
            });
        }
    }
    Ok(())
}

/// The one task-Jacobian builder: one backward pass per present task gives row k of
/// the returned K×d tensor (∇ loss_k with respect to `inputs`, written in place) and,
/// in the same pass, task k's own parameter gradients, so the K passes are all a
/// training step needs.
///
/// Errors: K = 0 or a `task_parameters`/`absent` list of another length
/// ([`Error::TaskCount`]); a present task whose loss has no graph, or that depends on
/// none of the non-empty `inputs` ([`Error::Config`] naming the task).
pub fn jacobian_rows(req: &JacobianRequest<'_>) -> Result<Tensor> {
    let k = req.losses.len();
    if k == 0 {
        return Err(Error::TaskCount {
            context: "task Jacobian".into(),
            expected: 0,
            got: 0,
        });
    }
    check_per_task_lists(
        k,
        req.task_parameters.len(),
        req.absent.len(),
        "the task Jacobian",
    )?;
    let at = |step: Option<u64>| step.map(|s| format!(" at step {s}")).unwrap_or_default();
    let jac = empty_jacobian(k, req.inputs)?;
    let last_present = (0..k)
        .rev()
        .find(|&t| !req.absent.get(t).copied().unwrap_or(false));
    for (t, loss) in req.losses.iter().enumerate() {
        if req.absent.get(t).copied().unwrap_or(false) {
            let _ = jac.f_select(0, t as i64)?.f_zero_()?;
            continue;
        }
        if !loss.requires_grad() {
            return Err(Error::config(format!(
                "the loss of task {t}{} has no graph (it does not require grad), so it \
                 has no gradient; mark the task absent if it sits this step out",
                at(req.step)
            )));
        }
        let own = req.task_parameters.get(t).map(Vec::as_slice).unwrap_or(&[]);
        let mut inputs: Vec<Tensor> = req.inputs.iter().map(Tensor::shallow_clone).collect();
        inputs.extend(own.iter().map(Tensor::shallow_clone));
        let keep = req.keep_graph || Some(t) != last_present;
        let grads = Tensor::f_run_backward(&[loss], &inputs, keep, false)?;
        let (shared_g, own_g) = grads.split_at(req.inputs.len());
        if !req.inputs.is_empty() && shared_g.iter().all(|g| !g.defined()) {
            return Err(Error::config(format!(
                "the loss of task {t}{} does not depend on any of the {} tensors it is \
                 differentiated with respect to",
                at(req.step),
                req.inputs.len()
            )));
        }
        write_jacobian_row(&jac, t, shared_g, req.inputs)?;
        tch::no_grad(|| -> Result<()> {
            for (p, g) in own.iter().zip(own_g) {
                if g.defined() {
                    let _ = p.grad().f_add_(g)?;
                }
            }
            Ok(())
        })?;
    }
    Ok(jac)
}

/// An uninitialised K×d Jacobian for `inputs` (d = their total size), in the first
/// input's dtype and on its device; fill each row with [`write_jacobian_row`].
pub fn empty_jacobian(k: usize, inputs: &[Tensor]) -> Result<Tensor> {
    let d: i64 = inputs.iter().map(|p| p.numel() as i64).sum();
    let options = inputs
        .first()
        .map(|p| (p.kind(), p.device()))
        .unwrap_or((tch::Kind::Float, tch::Device::Cpu));
    Ok(Tensor::f_empty([k as i64, d], options)?)
}

/// Writes row `k` of `jac` from the gradients of one loss with respect to `inputs`
/// (`grads[i]` belongs to `inputs[i]`; an undefined one, an input the loss does not
/// read, gives zeros). The row is written in place with one concatenation kernel, so
/// building J costs one pass over it rather than a copy per stage.
pub fn write_jacobian_row(
    jac: &Tensor,
    k: usize,
    grads: &[Tensor],
    inputs: &[Tensor],
) -> Result<()> {
    let row = jac.f_select(0, k as i64)?;
    if inputs.is_empty() {
        return Ok(());
    }
    let flat = grads
        .iter()
        .zip(inputs)
        .map(|(g, p)| {
            if g.defined() {
                g.f_reshape([-1])
            } else {
                p.f_zeros_like()?.f_reshape([-1])
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let _ = tch::no_grad(|| Tensor::f_cat_out(&row, &flat, 0))?;
    Ok(())
}

/// Checks a Jacobian for NaN/Inf and reports the first task row that has one.
///
/// The common case costs one reduction ([`sum_is_finite`]); only when it fails does the
/// exact per-row scan run, to name the task or clear J.
pub fn check_jacobian(jac: &Tensor, step: Option<u64>) -> Result<()> {
    if jac.dim() != 2 {
        return Err(Error::shape(
            "Jacobian",
            "[K, d]",
            format!("{:?}", jac.size()),
        ));
    }
    if sum_is_finite(jac)? {
        return Ok(());
    }
    first_non_finite_row(jac, step)
}

/// The fast half of a finiteness check: `true` proves every entry of `t` finite (a NaN
/// or Inf makes the sum non-finite), in one vectorised reduction, far cheaper than
/// libtorch's elementwise `isfinite`. `false` proves nothing (finite entries can
/// overflow the sum), so callers follow it with their exact scan. An empty tensor is
/// finite.
pub fn sum_is_finite(t: &Tensor) -> Result<bool> {
    Ok(t.numel() == 0 || t.f_sum(t.kind())?.f_double_value(&[])?.is_finite())
}

/// The exact scan behind [`check_jacobian`]: an error naming the first row with a NaN
/// or Inf, `Ok` when every entry is finite.
pub fn first_non_finite_row(jac: &Tensor, step: Option<u64>) -> Result<()> {
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
        // Finite entries whose sum overflows pass: the exact scan clears them.
        let big = Tensor::from_slice(&[3e38f32, 3e38, 1.0, 1.0]).view([2, 2]);
        assert!(check_jacobian(&big, None).is_ok());
        // Opposite infinities cancel to NaN in the sum and are still caught, in the right row.
        let inf = Tensor::from_slice(&[1.0f32, 1.0, f32::INFINITY, f32::NEG_INFINITY]).view([2, 2]);
        assert!(matches!(
            check_jacobian(&inf, None),
            Err(Error::NonFinite { task: Some(1), .. })
        ));
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
