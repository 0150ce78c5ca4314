//! A multi-task model: one sharing architecture plus one head per task.

use crate::predict::Preprocessing;
use crate::spec::ModelSpec;
use mtl_core::{Architecture, Error, ParamGroups, Result, TaskFeatures, TaskTarget};
use mtl_heads::TaskHead;
use tch::{nn, Device, Tensor};

/// An architecture and its task heads, with the var store that owns their weights.
///
/// Build the heads under `mtl_core::task_path(&vs.root(), k)` so the split into shared
/// and task-specific parameters ([`ParamGroups`]) finds them.
#[derive(Debug)]
pub struct MultiTaskModel {
    vs: nn::VarStore,
    arch: Box<dyn Architecture>,
    heads: Vec<Box<dyn TaskHead>>,
    // What the model was built from, when it was built from a spec (so it can be saved
    // and rebuilt elsewhere).
    spec: Option<ModelSpec>,
    preprocessing: Preprocessing,
}

/// The outputs of one forward pass.
#[derive(Debug)]
pub struct Forward {
    /// What the architecture produced.
    pub features: TaskFeatures,
    /// `outputs[k]`: head k's output.
    pub outputs: Vec<Tensor>,
}

/// One task's path of a forward pass ([`MultiTaskModel::forward_task`]).
#[derive(Debug)]
pub struct TaskForward {
    /// What the architecture produced on the task's path (`per_task` holds one tensor).
    pub features: TaskFeatures,
    /// The task head's output.
    pub output: Tensor,
}

impl MultiTaskModel {
    /// Assembles a model; the architecture must produce features for exactly as many
    /// tasks as there are heads, each as wide as its head reads.
    pub fn new(
        vs: nn::VarStore,
        arch: impl Architecture + 'static,
        heads: Vec<Box<dyn TaskHead>>,
    ) -> Result<Self> {
        if heads.is_empty() || arch.num_tasks() != heads.len() {
            return Err(Error::TaskCount {
                context: format!("model: {} architecture vs heads", arch.name()),
                expected: arch.num_tasks(),
                got: heads.len(),
            });
        }
        for (k, (dim, head)) in arch.feature_dims().iter().zip(&heads).enumerate() {
            if *dim != head.in_dim() {
                return Err(Error::shape(
                    format!("head `{}` (task {k}) input", head.name()),
                    format!("width {dim} (the architecture's output)"),
                    format!("width {}", head.in_dim()),
                ));
            }
        }
        Ok(MultiTaskModel {
            vs,
            arch: Box::new(arch),
            heads,
            spec: None,
            preprocessing: Preprocessing::default(),
        })
    }

    /// Builds the model `spec` describes, with fresh weights on `device`
    /// ([`ModelSpec::build`]); such a model can be saved in a [`Bundle`](crate::Bundle).
    pub fn from_spec(spec: &ModelSpec, device: Device) -> Result<Self> {
        spec.build(device)
    }

    pub(crate) fn with_spec(mut self, spec: ModelSpec) -> Self {
        self.spec = Some(spec);
        self
    }

    /// The spec the model was built from, if it was ([`MultiTaskModel::from_spec`]).
    pub fn spec(&self) -> Option<&ModelSpec> {
        self.spec.as_ref()
    }

    /// The preprocessing [`MultiTaskModel::predict`] applies (none by default).
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Sets what [`MultiTaskModel::predict`] does to raw rows and to the heads'
    /// answers: the feature standardisation and each task's target encoding the model
    /// was trained with. There must be no target encodings or one per task.
    pub fn set_preprocessing(&mut self, preprocessing: Preprocessing) -> Result<()> {
        preprocessing.check(self.num_tasks())?;
        self.preprocessing = preprocessing;
        Ok(())
    }

    /// The number of tasks.
    pub fn num_tasks(&self) -> usize {
        self.heads.len()
    }
    /// The task names, in head order.
    pub fn task_names(&self) -> Vec<String> {
        self.heads.iter().map(|h| h.name().to_string()).collect()
    }
    /// The heads.
    pub fn heads(&self) -> &[Box<dyn TaskHead>] {
        &self.heads
    }
    /// The architecture.
    pub fn architecture(&self) -> &dyn Architecture {
        self.arch.as_ref()
    }
    /// The architecture as the concrete type `A`, when it is one (behind an embedding
    /// input too; see [`Architecture::as_any`]): `model.architecture_as::<Ltb>()` for
    /// LTB's derived tree.
    pub fn architecture_as<A: 'static>(&self) -> Option<&A> {
        self.arch.as_any()?.downcast_ref::<A>()
    }
    /// Tells the architecture that epoch `epoch` of `epochs` starts
    /// ([`Architecture::start_epoch`]: LTB's temperature schedule); the trainer calls it
    /// before each epoch's first step.
    pub fn start_epoch(&mut self, epoch: usize, epochs: usize) -> Result<()> {
        self.arch.start_epoch(epoch, epochs)
    }
    /// The var store holding every weight.
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
    /// Mutable access to the var store (loading, freezing).
    pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }
    /// Loads pretrained weights into the model by name (see
    /// [`mtl_core::pretrained`]): `model.load_state_dict(renamed, strict=...)` in
    /// PyTorch. The file's names are renamed by `opts.rename` prefixes (a trunk saved as
    /// `encoder.` loads into `trunk.` with `("encoder.", "trunk.")`), converted to each
    /// variable's dtype and device, and copied in place.
    ///
    /// Errors: in strict mode (the default) a variable the file lacks or a tensor the
    /// model lacks; in either mode a shape mismatch; each named, with nothing copied.
    /// To load a trunk into a model with new heads, use `strict(false)` and check
    /// [`LoadReport::missing`](mtl_core::LoadReport::missing) holds only the heads.
    pub fn load_pretrained(
        &mut self,
        path: impl AsRef<std::path::Path>,
        opts: &mtl_core::LoadOptions,
    ) -> Result<mtl_core::LoadReport> {
        mtl_core::load_weights(&self.vs, path, opts)
    }
    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.vs.device()
    }
    /// The trainable parameters split into shared and per-task groups.
    pub fn param_groups(&self) -> Result<ParamGroups> {
        ParamGroups::from_var_store(&self.vs, self.num_tasks())
    }

    /// Forward pass through the architecture and every head.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Forward> {
        let features = self.arch.forward_t(xs, train)?;
        if features.per_task.len() != self.heads.len() {
            return Err(Error::TaskCount {
                context: format!("{} architecture output", self.arch.name()),
                expected: self.heads.len(),
                got: features.per_task.len(),
            });
        }
        let outputs = self
            .heads
            .iter()
            .zip(&features.per_task)
            .map(|(h, f)| h.forward_t(f, train))
            .collect::<Result<Vec<_>>>()?;
        Ok(Forward { features, outputs })
    }

    /// Task `task`'s path alone ([`Architecture::forward_task`]) and its head, for a
    /// batch of that task's own rows.
    pub fn forward_task(&self, xs: &Tensor, task: usize, train: bool) -> Result<TaskForward> {
        let head = self.head(task)?;
        let features = self.arch.forward_task(xs, task, train)?;
        if features.per_task.len() != 1 {
            return Err(Error::TaskCount {
                context: format!("{} architecture output for task {task}", self.arch.name()),
                expected: 1,
                got: features.per_task.len(),
            });
        }
        let output = head.forward_t(&features.per_task[0], train)?;
        Ok(TaskForward { features, output })
    }

    /// Head `task`'s masked loss of `output` against `target`.
    pub fn task_loss(&self, task: usize, output: &Tensor, target: &TaskTarget) -> Result<Tensor> {
        self.head(task)?.loss(output, target)
    }

    fn head(&self, task: usize) -> Result<&dyn TaskHead> {
        self.heads.get(task).map(|h| h.as_ref()).ok_or_else(|| {
            Error::config(format!(
                "task index {task} out of range 0..{}",
                self.heads.len()
            ))
        })
    }

    /// The K task losses of a forward pass against its targets.
    pub fn losses(&self, outputs: &[Tensor], targets: &[TaskTarget]) -> Result<Vec<Tensor>> {
        if targets.len() != self.heads.len() {
            return Err(Error::TaskCount {
                context: "batch targets".into(),
                expected: self.heads.len(),
                got: targets.len(),
            });
        }
        self.heads
            .iter()
            .zip(outputs)
            .zip(targets)
            .map(|((h, o), t)| h.loss(o, t))
            .collect()
    }

    /// A copy of every variable, for restoring the best weights later.
    pub fn snapshot(&self) -> Vec<(String, Tensor)> {
        let mut vars: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().copy()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Restores a [`MultiTaskModel::snapshot`].
    pub fn restore(&mut self, snapshot: &[(String, Tensor)]) -> Result<()> {
        let vars = self.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, saved) in snapshot {
                let mut v = vars
                    .get(name)
                    .ok_or_else(|| {
                        Error::config(format!("snapshot variable `{name}` is not in the model"))
                    })?
                    .shallow_clone();
                v.f_copy_(saved)?;
            }
            Ok(())
        })
    }
}
