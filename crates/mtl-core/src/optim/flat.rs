//! Flat storage for an optimiser: the parameters of one dtype and device, and their
//! gradients, become views into two contiguous buffers, so an update is a handful of
//! kernels over the whole model instead of a handful per tensor.
//!
//! On the small models multi-task learning often trains (a trunk of a few layers and K
//! heads), the per-tensor kernel launches of Adam cost more than its arithmetic; this is
//! what `torch.optim`'s `foreach`/`fused` implementations exist for, which `tch` does not
//! expose. The parameters keep their identity (the var store, the model and the
//! [`crate::ParamGroups`] hold the same tensors): only their storage moves.
//!
//! Autograd accumulates into an existing `.grad()` in place, so the gradient views stay
//! views across steps. Anything that swaps a parameter's or gradient's storage behind
//! the optimiser's back (a `set_data`, a gradient set to none and recreated) is detected
//! by pointer before each use and the tensor is pointed back, with its current values.

use crate::{Error, Result};
use tch::{Kind, Tensor};

/// One parameter's place in a [`FlatGroup`].
#[derive(Debug)]
struct Member {
    /// Its index in the optimiser's parameter list.
    index: usize,
    offset: i64,
    numel: i64,
    shape: Vec<i64>,
}

/// The parameters of one dtype and device, their values and gradients in two buffers.
#[derive(Debug)]
pub(super) struct FlatGroup {
    /// Every member's values, concatenated.
    pub param: Tensor,
    /// Every member's gradient, concatenated.
    pub grad: Tensor,
    members: Vec<Member>,
    elt_size: usize,
}

impl FlatGroup {
    /// Moves `params` into flat groups, one per (dtype, device). `None` when they cannot
    /// all be moved safely: a parameter that does not require a gradient, is not a leaf,
    /// is empty, or shares storage with another (tied weights stay tied only if their
    /// storage is left alone).
    pub fn build(params: &[Tensor]) -> Result<Option<Vec<FlatGroup>>> {
        let mut ptrs: Vec<usize> = params.iter().map(|p| p.data_ptr() as usize).collect();
        ptrs.sort_unstable();
        ptrs.dedup();
        let movable = ptrs.len() == params.len()
            && params
                .iter()
                .all(|p| p.requires_grad() && p.is_leaf() && p.numel() > 0);
        if !movable || params.is_empty() {
            return Ok(None);
        }
        crate::params::ensure_grads(params)?;
        let mut keys: Vec<(Kind, tch::Device)> = Vec::new();
        for p in params {
            let key = (p.kind(), p.device());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut groups = Vec::with_capacity(keys.len());
        for key in keys {
            let mut members = Vec::new();
            let mut offset = 0;
            for (index, p) in params.iter().enumerate() {
                if (p.kind(), p.device()) == key {
                    let numel = p.numel() as i64;
                    members.push(Member {
                        index,
                        offset,
                        numel,
                        shape: p.size(),
                    });
                    offset += numel;
                }
            }
            let group = FlatGroup {
                param: Tensor::f_empty([offset], key)?,
                grad: Tensor::f_zeros([offset], key)?,
                members,
                elt_size: key.0.elt_size_in_bytes(),
            };
            for m in &group.members {
                group.point_back(m, &params[m.index])?;
            }
            groups.push(group);
        }
        Ok(Some(groups))
    }

    /// Member `m`'s part of a flat buffer of this group (a moment, say), in its shape.
    fn part(&self, buf: &Tensor, m: &Member) -> Result<Tensor> {
        Ok(buf
            .f_narrow(0, m.offset, m.numel)?
            .f_view(m.shape.as_slice())?)
    }

    /// A buffer shaped like [`FlatGroup::param`] and the per-parameter views into it,
    /// indexed like the optimiser's parameter list (`None` for other groups' members).
    pub fn zeros_with_views(&self, views: &mut [Option<Tensor>]) -> Result<Tensor> {
        let buf = self.param.f_zeros_like()?;
        for m in &self.members {
            views[m.index] = Some(self.part(&buf, m)?);
        }
        Ok(buf)
    }

    /// Checks every member still lives in the buffers and points back any that does
    /// not, carrying its current values over. Cheap: pointer comparisons only, unless
    /// something moved.
    pub fn keep_aliased(&self, params: &[Tensor]) -> Result<()> {
        for m in &self.members {
            if !self.is_aliased(m, &params[m.index]) {
                self.point_back(m, &params[m.index])?;
            }
        }
        Ok(())
    }

    /// Whether every member is still aliased (so the flat gradient is the gradient).
    pub fn all_aliased(&self, params: &[Tensor]) -> bool {
        self.members
            .iter()
            .all(|m| self.is_aliased(m, &params[m.index]))
    }

    fn is_aliased(&self, m: &Member, p: &Tensor) -> bool {
        let at = |buf: &Tensor| buf.data_ptr() as usize + m.offset as usize * self.elt_size;
        let g = p.grad();
        p.data_ptr() as usize == at(&self.param)
            && g.defined()
            && g.data_ptr() as usize == at(&self.grad)
    }

    /// Copies member `m`'s current value and gradient into the buffers and makes the
    /// parameter and its gradient views of them again.
    fn point_back(&self, m: &Member, p: &Tensor) -> Result<()> {
        let mut value = self.part(&self.param, m)?;
        let mut grad = self.part(&self.grad, m)?;
        if p.size() != m.shape {
            return Err(Error::shape(
                format!("optimiser parameter {}", m.index),
                format!("{:?}", m.shape),
                format!("{:?}", p.size()),
            ));
        }
        if (p.kind(), p.device()) != (self.param.kind(), self.param.device()) {
            // Pointing it back would silently undo a conversion (a model moved to
            // another dtype or device after the optimiser was built).
            return Err(Error::config(format!(
                "optimiser parameter {} is now {:?} on {:?}, but the optimiser was built for                  {:?} on {:?}; build the optimiser after converting the model",
                m.index,
                p.kind(),
                p.device(),
                self.param.kind(),
                self.param.device()
            )));
        }
        // A gradient set to none is defined again (as zeros) the way every step does it,
        // by a backward pass, so it can become a view.
        crate::params::ensure_grads(std::slice::from_ref(p))?;
        tch::no_grad(|| -> Result<()> {
            if p.data_ptr() != value.data_ptr() {
                value.f_copy_(p)?;
                p.shallow_clone().f_set_data(&value)?;
            }
            let mut g = p.grad();
            if g.data_ptr() != grad.data_ptr() {
                grad.f_copy_(&g)?;
                let _ = g.f_set_source_tensor_(&grad)?;
            }
            Ok(())
        })
    }
}
