//! # custom-arch
//!
//! A sharing architecture defined outside the `mtl` crates, to show what implementing
//! [`mtl_core::Architecture`] takes: **task routing** over two shared towers.
//!
//! Two towers `A` and `B` (any [`BackboneBuilder`]) read the input; every task `k`
//! owns two routing logits `r_k` and reads a fixed, input-independent blend of them:
//!
//! ```text
//! features_k = softmax(r_k)_0 · A(x) + softmax(r_k)_1 · B(x)
//! ```
//!
//! It sits between hard sharing (every `r_k` equal) and separate networks (`r_0` all on
//! `A`, `r_1` all on `B`); training moves each task along that line. Task `k` starts
//! leaning towards tower `k mod 2` (logits `±1`), so with two tasks each begins with
//! "its own" tower and learns how much of the other to borrow. It is a static
//! relative of MMoE's gates (Ma et al., KDD 2018), whose weights depend on the input.
//!
//! The conventions the trainer relies on:
//!
//! * the towers are built under `path/tower_a`, `path/tower_b`, so they are **shared**
//!   parameters; the routing logits under `task_path(path, k)`, so each is task `k`'s own;
//! * `TaskFeatures::shared` is the stacked tower outputs `[B, 2, D]`, the representation
//!   every task feature is computed from (this enables rep-grad);
//! * wrong input widths are typed [`Error::Shape`]s naming the layer, not panics.

use mtl_core::{
    arch::check_input_width, task_path, Architecture, Backbone, BackboneBuilder, Error, Result,
    TaskFeatures,
};
use tch::{nn, Kind, Tensor};

/// Two shared towers, blended per task by learned routing weights.
#[derive(Debug)]
pub struct TaskRouting {
    towers: [Box<dyn Backbone>; 2],
    /// `routes[k]`: task `k`'s two routing logits.
    routes: Vec<Tensor>,
    in_dim: i64,
}

impl TaskRouting {
    /// Builds both towers with `tower` (reading `in_dim`-wide inputs) and the routing
    /// logits of `num_tasks` tasks under `path`.
    pub fn new(
        path: &nn::Path,
        in_dim: i64,
        num_tasks: usize,
        tower: &dyn BackboneBuilder,
    ) -> Result<Self> {
        if num_tasks == 0 {
            return Err(Error::TaskCount {
                context: "task routing".into(),
                expected: 0,
                got: 0,
            });
        }
        let a = tower.build(&(path / "tower_a"), in_dim)?;
        let b = tower.build(&(path / "tower_b"), in_dim)?;
        if a.out_dim() != b.out_dim() {
            return Err(Error::shape(
                "task routing tower_b output",
                format!("width {} (as tower_a, to be blended with it)", a.out_dim()),
                format!("width {}", b.out_dim()),
            ));
        }
        let routes = (0..num_tasks)
            .map(|k| {
                let lean = if k % 2 == 0 {
                    [1.0f32, -1.0]
                } else {
                    [-1.0, 1.0]
                };
                let init = Tensor::from_slice(&lean).to_device(path.device());
                Ok(task_path(path, k).f_var_copy("route", &init)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskRouting {
            towers: [a, b],
            routes,
            in_dim,
        })
    }

    /// `[K, 2]`: every task's current blend of the two towers.
    pub fn routing_weights(&self) -> Result<Tensor> {
        let logits = Tensor::f_stack(&self.routes, 0)?;
        Ok(logits.f_softmax(-1, Kind::Float)?)
    }
}

impl Architecture for TaskRouting {
    fn num_tasks(&self) -> usize {
        self.routes.len()
    }

    fn feature_dims(&self) -> Vec<i64> {
        vec![self.towers[0].out_dim(); self.routes.len()]
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        check_input_width("task routing input", xs, self.in_dim)?;
        let outs = self
            .towers
            .iter()
            .map(|t| t.forward_t(xs, train))
            .collect::<Result<Vec<_>>>()?;
        let stacked = Tensor::f_stack(&outs, 1)?; // [B, 2, D]
        let per_task = self
            .routes
            .iter()
            .map(|r| {
                // [2] weights broadcast over [B, 2, D], summed over the towers.
                let w = r.f_softmax(-1, Kind::Float)?.f_view([1, 2, 1])?;
                Ok(stacked
                    .f_mul(&w)?
                    .f_sum_dim_intlist(1, false, Kind::Float)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskFeatures::new(Some(stacked), per_task))
    }

    fn name(&self) -> &'static str {
        "task_routing"
    }
}
