//! Hard sharing for tasks that each bring their own inputs: task `k` reads rows of its
//! own dataset, `w_k` features wide, through its own input adapter (a linear map
//! `w_k → h`, built under `task_path(path, k)/adapter`, so it counts as task `k`'s
//! parameters) into one shared [`Backbone`] trunk, whose output is task `k`'s features.
//!
//! ```text
//! per_task[k] = trunk(adapter_k(x_k))
//! ```
//!
//! A batch belongs to one task, so training runs one task's path at a time
//! ([`Architecture::forward_task`]). [`Architecture::forward_t`] runs every path on the
//! same batch and therefore needs one input width across tasks. There is no single
//! shared representation (each task's trunk output comes from its own rows), so
//! `TaskFeatures::shared` is `None`.

use super::{check_input_width, Architecture, Backbone, TaskFeatures};
use crate::init::{self, Init};
use crate::{task_path, Error, Result};
use tch::{nn, Tensor};

/// Per-task input adapters in front of a shared trunk; see the module documentation.
#[derive(Debug)]
pub struct MultiInput {
    adapters: Vec<nn::Linear>,
    widths: Vec<i64>,
    trunk: Box<dyn Backbone>,
}

impl MultiInput {
    /// One adapter per entry of `widths` (task `k` reads `widths[k]` features), each a
    /// linear map to `adapter_dim` built under `task_path(path, k)/adapter`, in front of
    /// `trunk`, which must read `adapter_dim` features when it says what it reads. The
    /// adapters start as PyTorch's `nn.Linear` ([`MultiInput::with_init`] for another
    /// [`Init`]).
    pub fn new(
        path: &nn::Path,
        widths: &[i64],
        adapter_dim: i64,
        trunk: impl Backbone + 'static,
    ) -> Result<Self> {
        Self::with_init(path, widths, adapter_dim, trunk, Init::default())
    }

    /// [`MultiInput::new`] with the adapters initialised by `init`.
    pub fn with_init(
        path: &nn::Path,
        widths: &[i64],
        adapter_dim: i64,
        trunk: impl Backbone + 'static,
        init: Init,
    ) -> Result<Self> {
        if widths.is_empty() {
            return Err(Error::TaskCount {
                context: "MultiInput input widths".into(),
                expected: 0,
                got: 0,
            });
        }
        if let Some(k) = widths.iter().position(|&w| w <= 0) {
            return Err(Error::config(format!(
                "MultiInput: task {k} has input width {}, widths must be positive",
                widths[k]
            )));
        }
        if adapter_dim <= 0 {
            return Err(Error::config(format!(
                "MultiInput: adapter width must be positive, got {adapter_dim}"
            )));
        }
        if let Some(w) = trunk.in_dim().filter(|&w| w != adapter_dim) {
            return Err(Error::shape(
                "MultiInput trunk input",
                format!("width {adapter_dim} (the adapters' output)"),
                format!("width {w} (the trunk's input)"),
            ));
        }
        let adapters = widths
            .iter()
            .enumerate()
            .map(|(k, &w)| init::linear(&(task_path(path, k) / "adapter"), w, adapter_dim, init))
            .collect::<Result<_>>()?;
        Ok(MultiInput {
            adapters,
            widths: widths.to_vec(),
            trunk: Box::new(trunk),
        })
    }

    /// The input width of each task.
    pub fn input_widths(&self) -> &[i64] {
        &self.widths
    }

    /// Task `k`'s path; `k` is in range.
    fn path(&self, xs: &Tensor, k: usize, train: bool) -> Result<Tensor> {
        check_input_width(
            &format!("multi-input adapter of task {k}"),
            xs,
            self.widths[k],
        )?;
        let adapter = &self.adapters[k];
        // On feature maps the adapter maps channels (a 1×1 convolution).
        let adapted = super::channel_linear(xs, adapter)?;
        self.trunk.forward_t(&adapted, train)
    }
}

impl Architecture for MultiInput {
    fn num_tasks(&self) -> usize {
        self.adapters.len()
    }
    fn feature_dims(&self) -> Vec<i64> {
        vec![self.trunk.out_dim(); self.adapters.len()]
    }
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<TaskFeatures> {
        if self.widths.iter().any(|&w| w != self.widths[0]) {
            return Err(Error::shape(
                "multi-input forward over all tasks (use forward_task for one task's rows)",
                "one input width across tasks",
                format!("widths {:?}", self.widths),
            ));
        }
        let per_task = (0..self.adapters.len())
            .map(|k| self.path(xs, k, train))
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskFeatures::new(None, per_task))
    }
    fn forward_task(&self, xs: &Tensor, task: usize, train: bool) -> Result<TaskFeatures> {
        if task >= self.adapters.len() {
            return Err(Error::config(format!(
                "multi-input: task index {task} out of range 0..{}",
                self.adapters.len()
            )));
        }
        Ok(TaskFeatures::new(None, vec![self.path(xs, task, train)?]))
    }
    fn name(&self) -> &'static str {
        "multi_input"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{HardSharing, MlpConfig};
    use crate::ParamGroups;
    use tch::{Device, Kind};

    fn arch(vs: &nn::VarStore, widths: &[i64]) -> MultiInput {
        let trunk = MlpConfig::new([6, 4])
            .build(&(vs.root() / "trunk"))
            .unwrap();
        MultiInput::new(&vs.root(), widths, 6, trunk).unwrap()
    }

    #[test]
    fn each_task_reads_its_own_width_through_the_shared_trunk() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let a = arch(&vs, &[8, 5]);
        assert_eq!((a.num_tasks(), a.feature_dims()), (2, vec![4, 4]));
        let f0 = a
            .forward_task(&Tensor::randn([3, 8], (Kind::Float, Device::Cpu)), 0, true)
            .unwrap();
        let f1 = a
            .forward_task(&Tensor::randn([7, 5], (Kind::Float, Device::Cpu)), 1, true)
            .unwrap();
        assert_eq!(f0.per_task.len(), 1);
        assert_eq!(f0.per_task[0].size(), vec![3, 4]);
        assert_eq!(f1.per_task[0].size(), vec![7, 4]);
        assert!(f0.shared.is_none() && f0.auxiliary_loss.is_none());

        let g = ParamGroups::from_var_store(&vs, 2).unwrap();
        let names = |k: usize| g.task[k].iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(0), ["task0.adapter.bias", "task0.adapter.weight"]);
        assert_eq!(g.task[1][1].tensor.size(), vec![6, 5]);
        assert!(g.shared.iter().all(|p| p.name.starts_with("trunk.")));
    }

    #[test]
    fn wrong_widths_and_tasks_are_typed_errors() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let a = arch(&vs, &[8, 5]);
        let x5 = Tensor::zeros([2, 5], (Kind::Float, Device::Cpu));
        let err = a.forward_task(&x5, 0, false).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
        assert!(err.to_string().contains("adapter of task 0"), "{err}");
        assert!(a.forward_task(&x5, 2, false).is_err());
        // Different widths: no batch can go through every path.
        assert!(matches!(a.forward_t(&x5, false), Err(Error::Shape { .. })));

        let trunk = MlpConfig::new([3, 4]).build(&(vs.root() / "t2")).unwrap();
        assert!(matches!(
            MultiInput::new(&(vs.root() / "b"), &[2], 6, trunk),
            Err(Error::Shape { .. })
        ));
        let trunk = MlpConfig::new([6, 4]).build(&(vs.root() / "t3")).unwrap();
        assert!(MultiInput::new(&(vs.root() / "c"), &[], 6, trunk).is_err());
        let trunk = MlpConfig::new([6, 4]).build(&(vs.root() / "t4")).unwrap();
        assert!(MultiInput::new(&(vs.root() / "d"), &[3, 0], 6, trunk).is_err());
    }

    #[test]
    fn one_width_runs_every_path_and_matches_each_task_alone() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let a = arch(&vs, &[5, 5, 5]);
        let x = Tensor::randn([4, 5], (Kind::Float, Device::Cpu));
        let all = a.forward_t(&x, false).unwrap();
        for k in 0..3 {
            let one = a.forward_task(&x, k, false).unwrap();
            assert!(one.per_task[0].allclose(&all.per_task[k], 0.0, 0.0, false));
        }
        // The paths differ: each task has its own adapter.
        assert!(!all.per_task[0].allclose(&all.per_task[1], 1e-6, 1e-6, false));
    }

    #[test]
    fn the_default_forward_task_picks_the_task_of_a_full_forward() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let trunk = MlpConfig::new([3, 2]).build(&vs.root()).unwrap();
        let hps = HardSharing::new(trunk, 2).unwrap();
        let x = Tensor::randn([4, 3], (Kind::Float, Device::Cpu));
        let one = hps.forward_task(&x, 1, false).unwrap();
        let all = hps.forward_t(&x, false).unwrap();
        assert_eq!(one.per_task.len(), 1);
        assert!(one.per_task[0].equal(&all.per_task[1]));
        assert!(one.shared.is_some());
        assert!(hps.forward_task(&x, 2, false).is_err());
    }
}
