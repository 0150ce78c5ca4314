//! Semi-supervised multi-task training by consistency regularisation: rows that carry
//! no label for any task still shape the shared model, because its predictions on them
//! must not change under noise.
//!
//! Two targets for the agreement are offered ([`Consistency`]):
//!
//! * **Π-model** (Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning",
//!   ICLR 2017): every row goes through the network twice, under two independent draws
//!   of input noise and dropout, giving outputs `z` and `z̃`; the term is the squared
//!   difference of the two predictions, averaged over prediction entries and rows,
//!   and both passes receive its gradient (the paper's formulation).
//! * **Mean teacher** (Tarvainen & Valpola, "Mean teachers are better role models",
//!   NeurIPS 2017): the second pass runs a *teacher* whose weights are the exponential
//!   moving average of the student's, `θ'_t = α θ'_(t−1) + (1 − α) θ_t`, with
//!   `α = min(1 − 1/(t + 1), decay)` as in the paper's code so that the early average
//!   is not dominated by the random initialisation. The teacher's prediction is a
//!   constant target.
//!
//! The objective of a step is `Σ_k w_k L_k + w(t) · C`: the task losses `L_k` (on the
//! first, noisy pass, as both papers train the supervised term) are combined by the
//! run's weighting or aggregator exactly as without consistency, and the consistency
//! term `C = Σ_k mean((p_k(z) − p_k(z̃))²)` is an *auxiliary loss* added after the
//! combination, through the engine's auxiliary slot. It is not one more task: no
//! weighting rescales it and no aggregator projects it, so it works with every method
//! and never changes K. `p_k` is head k's [`predict`](mtl_heads::TaskHead::predict)
//! reading (softmax probabilities, sigmoid probabilities, regression values), the
//! space both papers compare in. Its weight ramps up by the papers' sigmoid-shaped
//! schedule [`ramp_up`].
//!
//! The term covers every row of the batch, labelled or not, as in both papers; with
//! [`ConsistencyRows::Unlabelled`] it covers only the rows that carry no label.

use crate::model::MultiTaskModel;
use mtl_core::{Error, Result, TaskTarget};
use mtl_data::JointData;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which network gives the second prediction of the consistency term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// The same network under a second noise draw (Laine & Aila 2017).
    #[default]
    PiModel,
    /// An exponential moving average of the network's weights (Tarvainen & Valpola 2017).
    MeanTeacher,
}

/// Which rows of a batch the consistency term averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsistencyRows {
    /// Every row, as both papers do.
    #[default]
    All,
    /// Only rows with no label for any task.
    Unlabelled,
}

/// Consistency training settings ([`TrainerConfig::semi_supervised`](crate::TrainerConfig::semi_supervised)).
///
/// The defaults are the papers': Gaussian input noise σ = 0.15 (Laine & Aila), a ramp-up
/// over 80 epochs, an EMA decay of 0.99 (Tarvainen & Valpola's value during ramp-up).
/// The maximum weight depends on the data (Laine & Aila use 30 × labelled/total rows on
/// CIFAR-10 with this averaged term); the default is 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemiSupervised {
    /// Π-model or mean teacher.
    pub consistency: Consistency,
    /// The standard deviation of Gaussian noise added to float inputs for each pass
    /// (0: dropout alone makes the passes differ).
    pub noise_std: f64,
    /// The consistency weight once the ramp-up is over.
    pub weight: f64,
    /// Epochs (fractional progress, counted in steps) of the sigmoid ramp-up; 0 starts
    /// at the full weight.
    pub ramp_up_epochs: f64,
    /// The mean teacher's EMA decay α (ignored by the Π-model).
    pub ema_decay: f64,
    /// The rows the term averages over.
    pub rows: ConsistencyRows,
}

impl Default for SemiSupervised {
    fn default() -> Self {
        SemiSupervised {
            consistency: Consistency::PiModel,
            noise_std: 0.15,
            weight: 1.0,
            ramp_up_epochs: 80.0,
            ema_decay: 0.99,
            rows: ConsistencyRows::All,
        }
    }
}

impl SemiSupervised {
    /// The Π-model with the papers' defaults.
    pub fn pi_model() -> Self {
        SemiSupervised::default()
    }
    /// The mean teacher with the papers' defaults.
    pub fn mean_teacher() -> Self {
        SemiSupervised {
            consistency: Consistency::MeanTeacher,
            ..SemiSupervised::default()
        }
    }
    /// Sets the input noise's standard deviation.
    pub fn noise_std(mut self, std: f64) -> Self {
        self.noise_std = std;
        self
    }
    /// Sets the maximum consistency weight.
    pub fn weight(mut self, w: f64) -> Self {
        self.weight = w;
        self
    }
    /// Sets the ramp-up length in epochs.
    pub fn ramp_up_epochs(mut self, epochs: f64) -> Self {
        self.ramp_up_epochs = epochs;
        self
    }
    /// Sets the mean teacher's EMA decay.
    pub fn ema_decay(mut self, decay: f64) -> Self {
        self.ema_decay = decay;
        self
    }
    /// Sets the rows the term covers.
    pub fn rows(mut self, rows: ConsistencyRows) -> Self {
        self.rows = rows;
        self
    }

    /// Checks the ranges: non-negative finite noise, weight and ramp-up, a decay in
    /// [0, 1).
    ///
    /// ```
    /// use mtl::SemiSupervised;
    /// assert!(SemiSupervised::mean_teacher().check().is_ok());
    /// assert!(SemiSupervised::pi_model().noise_std(-0.1).check().is_err());
    /// assert!(SemiSupervised::mean_teacher().ema_decay(1.0).check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("noise_std", self.noise_std),
            ("weight", self.weight),
            ("ramp_up_epochs", self.ramp_up_epochs),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::config(format!(
                    "semi_supervised.{name} must be finite and non-negative, got {v}"
                )));
            }
        }
        if !(self.ema_decay.is_finite() && (0.0..1.0).contains(&self.ema_decay)) {
            return Err(Error::config(format!(
                "semi_supervised.ema_decay must be in [0, 1), got {}",
                self.ema_decay
            )));
        }
        Ok(())
    }

    /// The consistency weight at `epoch` (fractional): `weight · ramp_up(epoch, ramp)`.
    pub fn weight_at(&self, epoch: f64) -> f64 {
        self.weight * ramp_up(epoch, self.ramp_up_epochs)
    }
}

/// The sigmoid-shaped ramp-up of Laine & Aila (2017), also used by Tarvainen & Valpola:
/// `exp(−5 (1 − T)²)` with `T = clamp(t / length, 0, 1)`; 1 throughout for a zero
/// length.
///
/// ```
/// use mtl::semi::ramp_up;
/// assert!((ramp_up(0.0, 80.0) - (-5.0f64).exp()).abs() < 1e-12);
/// assert_eq!(ramp_up(80.0, 80.0), 1.0);
/// assert_eq!(ramp_up(3.0, 0.0), 1.0);
/// ```
pub fn ramp_up(t: f64, length: f64) -> f64 {
    if length <= 0.0 {
        return 1.0;
    }
    let p = (t / length).clamp(0.0, 1.0);
    (-5.0 * (1.0 - p) * (1.0 - p)).exp()
}

/// `Bool [B]`: the rows with no label for any task (a target without a mask labels
/// every row).
pub fn unlabelled_rows(targets: &[TaskTarget], rows: i64, device: tch::Device) -> Result<Tensor> {
    let mut unlabelled = Tensor::f_ones([rows], (Kind::Bool, device))?;
    for t in targets {
        match &t.mask {
            None => return Ok(Tensor::f_zeros([rows], (Kind::Bool, device))?),
            Some(m) => unlabelled = unlabelled.f_logical_and(&m.f_logical_not()?)?,
        }
    }
    Ok(unlabelled)
}

/// Checks that `data` has at least one row with no label for any task, which
/// consistency training is for; the error names the data's size and tasks.
pub fn require_unlabelled(data: &dyn JointData, batch_size: usize) -> Result<()> {
    for batch in data.joint_batches(batch_size, None)? {
        let batch = batch?;
        let n = batch.x.size().first().copied().unwrap_or(0);
        let unlabelled = unlabelled_rows(&batch.targets, n, batch.x.device())?;
        if unlabelled.f_any()?.f_int64_value(&[])? != 0 {
            return Ok(());
        }
    }
    Err(Error::config(format!(
        "semi-supervised training was asked for, but none of the {} training rows is \
         unlabelled for every task {:?} (a row is unlabelled when every task's mask is \
         false there): consistency training needs rows without labels; mask the labels \
         of the rows to use as unlabelled, or leave `semi_supervised` out",
        data.len(),
        data.task_names()
    )))
}

/// The consistency term between two forward passes' outputs, `Σ_k mean_rows(mean_entries
/// ((p_k(a) − p_k(b))²))`, over the rows where `rows` is true (every row when `None`);
/// 0 when the selection is empty. `b` is used as given: detach it for a constant
/// target (mean teacher).
///
/// ```
/// use mtl::prelude::*;
/// use mtl::semi::consistency_loss;
/// use mtl::heads::{RegressionHead, RegressionLoss};
/// use tch::{nn, Device, Tensor};
/// let vs = nn::VarStore::new(Device::Cpu);
/// let trunk = MlpConfig::new([2, 4]).build(&(vs.root() / "trunk")).unwrap();
/// let heads: Vec<Box<dyn mtl::heads::TaskHead>> =
///     vec![Box::new(RegressionHead::new(&(vs.root() / "task0"), "y", 4, 1, RegressionLoss::Mse).unwrap())];
/// let model = MultiTaskModel::new(vs, HardSharing::new(trunk, 1).unwrap(), heads).unwrap();
/// let a = vec![Tensor::from_slice(&[1.0f32, 2.0]).view([2, 1])];
/// let b = vec![Tensor::from_slice(&[1.0f32, 4.0]).view([2, 1])];
/// let same = consistency_loss(&model, &a, &a, None).unwrap();
/// let apart = consistency_loss(&model, &a, &b, None).unwrap();
/// assert_eq!(same.double_value(&[]), 0.0);
/// assert!((apart.double_value(&[]) - 2.0).abs() < 1e-6); // (0² + 2²) / 2
/// ```
pub fn consistency_loss(
    model: &MultiTaskModel,
    a: &[Tensor],
    b: &[Tensor],
    rows: Option<&Tensor>,
) -> Result<Tensor> {
    let heads = model.heads();
    if a.len() != heads.len() || b.len() != heads.len() {
        return Err(Error::TaskCount {
            context: "consistency term (outputs of two passes)".into(),
            expected: heads.len(),
            got: a.len().min(b.len()),
        });
    }
    let mut total: Option<Tensor> = None;
    for ((head, oa), ob) in heads.iter().zip(a).zip(b) {
        let pa = head.predict(oa)?.tensor().shallow_clone();
        let pb = head.predict(ob)?.tensor().shallow_clone();
        if pa.size() != pb.size() {
            return Err(Error::shape(
                format!("consistency term of task `{}`", head.name()),
                format!("{:?}", pa.size()),
                format!("{:?}", pb.size()),
            ));
        }
        let sq = (&pa - &pb).f_square()?.to_kind(Kind::Float);
        let batch = sq.size().first().copied().unwrap_or(0);
        // Per row: the mean over the row's prediction entries (classes, pixels).
        let per_row = sq
            .f_reshape([batch, -1])?
            .f_mean_dim(1, false, Kind::Float)?;
        let term = match rows {
            None => per_row.f_mean(Kind::Float)?,
            Some(r) => {
                let w = r.to_kind(Kind::Float);
                let n = w.f_sum(Kind::Float)?.f_clamp_min(1.0)?;
                (per_row * &w).f_sum(Kind::Float)? / n
            }
        };
        total = Some(match total {
            None => term,
            Some(t) => t + term,
        });
    }
    total.ok_or_else(|| Error::config("consistency term of a model with no task"))
}

/// The mean teacher's weights: an exponential moving average of every floating-point
/// variable of the student (integer buffers are copied), in the student's names.
#[derive(Debug)]
pub struct Teacher {
    weights: Vec<(String, Tensor)>,
    decay: f64,
    updates: u64,
}

impl Teacher {
    /// A teacher starting at the student's weights.
    pub fn new(model: &MultiTaskModel, decay: f64) -> Self {
        Teacher {
            weights: model.snapshot(),
            decay,
            updates: 0,
        }
    }

    /// The averaged weights, sorted by name.
    pub fn weights(&self) -> &[(String, Tensor)] {
        &self.weights
    }

    /// How many updates the average has taken.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Moves the average toward the student's current weights with
    /// `α = min(1 − 1/(t + 1), decay)`, `t` counting updates from 1.
    pub fn update(&mut self, model: &MultiTaskModel) -> Result<()> {
        self.updates += 1;
        let alpha = (1.0 - 1.0 / (self.updates as f64 + 1.0)).min(self.decay);
        let vars = model.var_store().variables();
        tch::no_grad(|| -> Result<()> {
            for (name, avg) in &mut self.weights {
                let v = vars.get(name).ok_or_else(|| {
                    Error::config(format!("teacher variable `{name}` is not in the model"))
                })?;
                if avg.is_floating_point() {
                    // θ' ← α θ' + (1 − α) θ, in place.
                    let _ = avg.f_mul_scalar_(alpha)?;
                    let _ = avg.f_add_(&(v.f_mul_scalar(1.0 - alpha)?))?;
                } else {
                    avg.f_copy_(v)?;
                }
            }
            Ok(())
        })
    }

    /// Runs `f` with the teacher's weights in the model, then puts the student's back
    /// exactly. Call it before the student's own forward of a step: swapping weights
    /// in place after a graph was built on them would invalidate that graph.
    pub fn with_weights<T>(
        &self,
        model: &MultiTaskModel,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let vars = model.var_store().variables();
        let student = model.snapshot();
        let put = |from: &[(String, Tensor)]| -> Result<()> {
            tch::no_grad(|| -> Result<()> {
                for (name, t) in from {
                    let v = vars.get(name).ok_or_else(|| {
                        Error::config(format!("teacher variable `{name}` is not in the model"))
                    })?;
                    v.shallow_clone().f_copy_(t)?;
                }
                Ok(())
            })
        };
        put(&self.weights)?;
        let out = tch::no_grad(f);
        put(&student)?;
        out
    }

    /// Restores a saved average (names and shapes must match) and its update count.
    pub fn load(&mut self, saved: &[(String, Tensor)], updates: u64) -> Result<()> {
        if saved.len() != self.weights.len() {
            return Err(Error::config(format!(
                "the saved mean teacher holds {} variables, the model has {}",
                saved.len(),
                self.weights.len()
            )));
        }
        tch::no_grad(|| -> Result<()> {
            for (name, avg) in &mut self.weights {
                let (_, t) = saved.iter().find(|(n, _)| n == name).ok_or_else(|| {
                    Error::config(format!("the saved mean teacher lacks variable `{name}`"))
                })?;
                if t.size() != avg.size() {
                    return Err(Error::config(format!(
                        "the saved mean teacher's `{name}` has shape {:?}, the model's {:?}",
                        t.size(),
                        avg.size()
                    )));
                }
                avg.f_copy_(t)?;
            }
            Ok(())
        })?;
        self.updates = updates;
        Ok(())
    }
}
