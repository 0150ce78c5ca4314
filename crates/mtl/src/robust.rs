//! Adversarial robustness for multi-task models: L∞ attacks on the inputs, adversarial
//! training through the trainer's one loop, and accuracy under attack per task.
//!
//! Attacks ([`Attack`]):
//!
//! * **FGSM** (Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial
//!   Examples", ICLR 2015): one step, `x' = x + ε · sign(∇ₓ L(x))`.
//! * **PGD** (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
//!   Attacks", ICLR 2018): from `x + U(−ε, ε)` (random start, on by default) take
//!   `steps` steps `x ← Π_{B∞(x₀, ε)}(x + α · sign(∇ₓ L(x)))`, projecting back into the
//!   ε-ball around the clean input (and into the data's `bounds`, when given) after
//!   each.
//!
//! What the attack maximises ([`AttackTarget`]): the sum of the task losses (one
//! perturbation per batch, the default), or each task's own loss (one perturbation per
//! task, `K` attacks per step). Attacks run the model in evaluation mode (no dropout,
//! batch-norm running statistics unchanged) and touch no parameter gradient.
//!
//! Adversarial training ([`TrainerConfig::adversarial`](crate::TrainerConfig::adversarial))
//! gives the engine, for every task, `L̃_k = L_k(x) + β · L_k(x + δ_k)`: the clean loss
//! plus the loss at the worst case the attack found (δ_k = δ for the summed target),
//! with `β` = [`Adversarial::weight`] (1 by default; Goodfellow et al. mix the two with
//! α = 0.5, i.e. this objective halved). The K robust losses are then combined by the
//! run's weighting or aggregator like any task losses, so every method applies. The
//! attacked copies go through the same forward pass as the clean rows (one batch of
//! `(1 + A) · B` rows, A the number of attacked copies), so the shared representation
//! covers both and rep-grad mode differentiates the whole objective; batch-norm
//! statistics are taken over that joint batch.
//! Only floating-point inputs can be perturbed; token ids are refused.

use crate::evaluate::Evaluation;
use crate::model::MultiTaskModel;
use mtl_core::{Error, Result, TaskTarget};
use mtl_data::JointData;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// The attack: one signed-gradient step or projected gradient descent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// The fast gradient sign method (Goodfellow et al. 2015).
    Fgsm,
    /// Projected gradient descent under L∞ (Madry et al. 2018).
    #[default]
    Pgd,
}

/// The loss an attack maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackTarget {
    /// The sum of the task losses: one perturbation shared by every task.
    #[default]
    Sum,
    /// Each task's own loss: one perturbation per task, its worst case.
    PerTask,
}

/// An L∞ attack's settings, which adversarial training and [`evaluate_under_attack`]
/// share. Defaults are Madry et al.'s MNIST settings: PGD, ε = 0.3, 40 steps of 0.01,
/// random start, inputs kept in [0, 1] only when `bounds` says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adversarial {
    /// FGSM or PGD.
    pub attack: Attack,
    /// The L∞ radius ε (in the units of the model's inputs, after any scaling).
    pub epsilon: f64,
    /// PGD's number of steps (FGSM takes one).
    pub steps: usize,
    /// PGD's step size α.
    pub step_size: f64,
    /// PGD starts from a uniform draw in the ε-ball (from libtorch's generator).
    pub random_start: bool,
    /// The valid input range `[low, high]`, to clamp perturbed inputs into.
    pub bounds: Option<[f64; 2]>,
    /// What the attack maximises during training.
    pub target: AttackTarget,
    /// β: the weight of the attacked loss in the training objective.
    pub weight: f64,
}

impl Default for Adversarial {
    fn default() -> Self {
        Adversarial {
            attack: Attack::Pgd,
            epsilon: 0.3,
            steps: 40,
            step_size: 0.01,
            random_start: true,
            bounds: None,
            target: AttackTarget::Sum,
            weight: 1.0,
        }
    }
}

impl Adversarial {
    /// FGSM with radius `epsilon`.
    pub fn fgsm(epsilon: f64) -> Self {
        Adversarial {
            attack: Attack::Fgsm,
            epsilon,
            steps: 1,
            ..Adversarial::default()
        }
    }
    /// PGD with radius `epsilon`, `steps` steps of `step_size`, random start.
    pub fn pgd(epsilon: f64, steps: usize, step_size: f64) -> Self {
        Adversarial {
            attack: Attack::Pgd,
            epsilon,
            steps,
            step_size,
            ..Adversarial::default()
        }
    }
    /// Keeps perturbed inputs within `[low, high]`.
    pub fn bounds(mut self, low: f64, high: f64) -> Self {
        self.bounds = Some([low, high]);
        self
    }
    /// Sets PGD's random start.
    pub fn random_start(mut self, on: bool) -> Self {
        self.random_start = on;
        self
    }
    /// Sets what the training attack maximises.
    pub fn target(mut self, target: AttackTarget) -> Self {
        self.target = target;
        self
    }
    /// Sets β, the attacked loss's weight in training.
    pub fn weight(mut self, beta: f64) -> Self {
        self.weight = beta;
        self
    }

    /// Checks the ranges: ε ≥ 0, a positive step size and at least one step for PGD,
    /// `low < high`, β ≥ 0, all finite.
    ///
    /// ```
    /// use mtl::Adversarial;
    /// assert!(Adversarial::pgd(0.1, 10, 0.02).check().is_ok());
    /// assert!(Adversarial::fgsm(-0.1).check().is_err());
    /// assert!(Adversarial::pgd(0.1, 0, 0.02).check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(Error::config(format!(
                "adversarial.epsilon (the L∞ radius) must be finite and non-negative, got {}",
                self.epsilon
            )));
        }
        if !(self.weight.is_finite() && self.weight >= 0.0) {
            return Err(Error::config(format!(
                "adversarial.weight must be finite and non-negative, got {}",
                self.weight
            )));
        }
        if self.attack == Attack::Pgd {
            if self.steps == 0 {
                return Err(Error::config(
                    "adversarial.steps must be at least 1 for PGD",
                ));
            }
            if !(self.step_size.is_finite() && self.step_size > 0.0) {
                return Err(Error::config(format!(
                    "adversarial.step_size must be positive for PGD, got {}",
                    self.step_size
                )));
            }
        }
        if let Some([lo, hi]) = self.bounds {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::config(format!(
                    "adversarial.bounds must be finite with low < high, got [{lo}, {hi}]"
                )));
            }
        }
        Ok(())
    }
}

/// The loss an attack climbs: the sum over tasks, or one task's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// `Σ_k L_k`.
    Sum,
    /// `L_k` of task k.
    Task(usize),
}

/// Refuses inputs that cannot be perturbed (token ids, booleans).
fn check_float(x: &Tensor) -> Result<()> {
    if x.is_floating_point() {
        Ok(())
    } else {
        Err(Error::config(format!(
            "adversarial perturbation needs floating-point inputs, and these are {:?} \
             (token ids or categorical codes cannot move by ε): leave `adversarial` out \
             for this model",
            x.kind()
        )))
    }
}

/// The attack objective at `x` (evaluation mode).
fn objective_at(
    model: &MultiTaskModel,
    x: &Tensor,
    targets: &[TaskTarget],
    objective: Objective,
) -> Result<Tensor> {
    let fwd = model.forward_t(x, false)?;
    match objective {
        Objective::Sum => {
            let losses = model.losses(&fwd.outputs, targets)?;
            Ok(Tensor::f_stack(&losses, 0)?.f_sum(Kind::Float)?)
        }
        Objective::Task(k) => {
            let (o, t) = fwd
                .outputs
                .get(k)
                .zip(targets.get(k))
                .ok_or_else(|| Error::config(format!("attack on task {k}: no such task")))?;
            model.task_loss(k, o, t)
        }
    }
}

/// `sign(∇ₓ objective)` at `x`, without touching any parameter's `.grad()`.
fn gradient_sign(
    model: &MultiTaskModel,
    x: &Tensor,
    targets: &[TaskTarget],
    objective: Objective,
) -> Result<Tensor> {
    let x = x.f_detach()?.f_set_requires_grad(true)?;
    let loss = objective_at(model, &x, targets, objective)?;
    let grads = Tensor::f_run_backward(&[&loss], &[&x], false, false)?;
    let g = grads
        .into_iter()
        .next()
        .ok_or_else(|| Error::config("attack: no input gradient"))?;
    Ok(g.f_sign()?)
}

/// Puts `candidate` back into the ε-ball around `x0` and into the bounds.
fn project(candidate: &Tensor, x0: &Tensor, cfg: &Adversarial) -> Result<Tensor> {
    let eps = cfg.epsilon;
    let delta = (candidate - x0).f_clamp(-eps, eps)?;
    let mut x = x0 + delta;
    if let Some([lo, hi]) = cfg.bounds {
        x = x.f_clamp(lo, hi)?;
    }
    Ok(x.f_detach()?)
}

/// The adversarial input for `x` (a detached tensor, `‖x' − x‖∞ ≤ ε`, within the
/// bounds) that the configured attack finds for `objective`.
///
/// Errors: [`Error::Config`] for integer inputs or invalid settings; model errors as
/// the forward pass gives them.
pub fn perturb(
    model: &MultiTaskModel,
    x: &Tensor,
    targets: &[TaskTarget],
    cfg: &Adversarial,
    objective: Objective,
) -> Result<Tensor> {
    cfg.check()?;
    check_float(x)?;
    let x0 = x.f_detach()?;
    if cfg.epsilon == 0.0 {
        return Ok(x0);
    }
    match cfg.attack {
        Attack::Fgsm => {
            let s = gradient_sign(model, &x0, targets, objective)?;
            project(&(&x0 + s * cfg.epsilon), &x0, cfg)
        }
        Attack::Pgd => {
            let mut xa = if cfg.random_start {
                let u = x0.f_rand_like()? * (2.0 * cfg.epsilon) - cfg.epsilon;
                project(&(&x0 + u), &x0, cfg)?
            } else {
                x0.shallow_clone()
            };
            for _ in 0..cfg.steps {
                let s = gradient_sign(model, &xa, targets, objective)?;
                xa = project(&(&xa + s * cfg.step_size), &x0, cfg)?;
            }
            Ok(xa)
        }
    }
}

/// The attacked copies of `x` that adversarial training adds to a step: one that
/// maximises the summed loss, or one per task (task k's block maximising `L_k`).
pub(crate) fn adversarial_inputs(
    model: &MultiTaskModel,
    x: &Tensor,
    targets: &[TaskTarget],
    cfg: &Adversarial,
) -> Result<Vec<Tensor>> {
    match cfg.target {
        AttackTarget::Sum => Ok(vec![perturb(model, x, targets, cfg, Objective::Sum)?]),
        AttackTarget::PerTask => (0..model.num_tasks())
            .map(|t| perturb(model, x, targets, cfg, Objective::Task(t)))
            .collect(),
    }
}

/// Adds `β · L_k(x + δ_k)` to each clean loss, reading task k's attacked outputs from
/// block `1` (summed target) or block `1 + k` (per-task target) of `outputs`, whose
/// rows are the clean batch followed by the attacked copies, `rows` rows each.
pub(crate) fn add_attacked_losses(
    model: &MultiTaskModel,
    outputs: &[Tensor],
    targets: &[TaskTarget],
    clean: Vec<Tensor>,
    cfg: &Adversarial,
    rows: i64,
) -> Result<Vec<Tensor>> {
    clean
        .into_iter()
        .enumerate()
        .map(|(t, c)| {
            let block = match cfg.target {
                AttackTarget::Sum => 1,
                AttackTarget::PerTask => 1 + t as i64,
            };
            let o = outputs
                .get(t)
                .ok_or_else(|| Error::config(format!("adversarial loss: no output of task {t}")))?
                .f_narrow(0, block * rows, rows)?;
            let target = targets
                .get(t)
                .ok_or_else(|| Error::config(format!("adversarial loss: no target of task {t}")))?;
            Ok(c + model.task_loss(t, &o, target)? * cfg.weight)
        })
        .collect()
}

/// Clean and attacked results on one dataset ([`evaluate_under_attack`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobustEvaluation {
    /// The attack evaluated.
    pub attack: Adversarial,
    /// Losses and metrics on the clean inputs.
    pub clean: Evaluation,
    /// `attacked.losses[k]` and `attacked.metrics[k]`: task k's on inputs perturbed to
    /// maximise task k's own loss (its worst case under the attack).
    pub attacked: Evaluation,
}

impl RobustEvaluation {
    /// Task `task`'s metric `name`, clean and under attack.
    pub fn metric(&self, task: usize, name: &str) -> Option<(f64, f64)> {
        Some((
            self.clean.metric(task, name)?,
            self.attacked.metric(task, name)?,
        ))
    }
}

/// Evaluates `model` on `data` clean and under `attack`, per task: task k's attacked
/// metrics are measured on inputs that the attack perturbed to maximise task k's own
/// loss (so each task meets its own worst case; K attacks per batch). The model is in
/// evaluation mode throughout; PGD's random start draws from libtorch's generator.
///
/// Regression metrics are in the targets' original units as in
/// [`evaluate`](crate::evaluate); the attack climbs the trained (standardised) loss.
pub fn evaluate_under_attack<D: JointData + ?Sized>(
    model: &MultiTaskModel,
    data: &D,
    attack: &Adversarial,
    batch_size: usize,
) -> Result<RobustEvaluation> {
    attack.check()?;
    let clean = crate::evaluate(model, data, batch_size)?;
    let k = model.num_tasks();
    let mut metrics: Vec<_> = model.heads().iter().map(|h| h.metrics()).collect();
    let mut loss_sums = vec![0.0; k];
    let mut labelled = vec![0.0; k];
    let device = model.device();
    for batch in data.joint_batches(batch_size, None)? {
        let batch = batch?.to_device(device);
        for t in 0..k {
            let xa = perturb(model, &batch.x, &batch.targets, attack, Objective::Task(t))?;
            tch::no_grad(|| -> Result<()> {
                let fwd = model.forward_t(&xa, false)?;
                let target = &batch.targets[t];
                let n = target.labelled() as f64;
                loss_sums[t] += model
                    .task_loss(t, &fwd.outputs[t], target)?
                    .f_double_value(&[])?
                    * n;
                labelled[t] += n;
                crate::evaluate::update(
                    metrics[t].as_mut(),
                    data.target_scale(t),
                    &fwd.outputs[t],
                    target,
                )
            })?;
        }
    }
    Ok(RobustEvaluation {
        attack: attack.clone(),
        clean,
        attacked: Evaluation {
            tasks: model.task_names(),
            losses: loss_sums
                .iter()
                .zip(&labelled)
                .map(|(s, n)| if *n > 0.0 { s / n } else { 0.0 })
                .collect(),
            metrics: metrics.iter().map(|m| m.compute()).collect(),
        },
    })
}
