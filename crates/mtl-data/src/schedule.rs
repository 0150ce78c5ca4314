//! Task sampling for heterogeneous tasks: which tasks get a mini-batch at each training
//! step, and the batches themselves.
//!
//! # Wiring it into a training loop
//!
//! ```text
//! let mut schedule = data.schedule(ScheduleConfig::new(TaskSampling::Temperature(2.0), 64).seed(7))?;
//! for step in 0..total_steps {
//!     opt.zero_grad();
//!     // (a) Tasks with their own input widths: one forward per sampled task.
//!     for (k, batch) in schedule.next_step()? {
//!         let out = model.forward(&batch.x)?;            // the path of task k
//!         let loss_k = head_k.loss(&out[k], &batch.targets[0])?;
//!         ... collect (k, loss_k), combine with the method, backward ...
//!     }
//!     // (b) One feature width: one K-task batch per step, other tasks masked out, fed
//!     //     to the ordinary step (`mtl::backward_step`) unchanged.
//!     let batch = schedule.next_merged()?;
//!     backward_step(model, groups, method, mode, &batch.x, &batch.targets, step, epoch)?;
//!     opt.step()?;
//! }
//! ```
//!
//! [`TaskSchedule::steps_per_epoch`] gives an epoch's length in steps (as many batches
//! as the tasks' datasets hold together); [`TaskSchedule::task_epochs`] how many passes
//! each task's data has had. Evaluate each task on its own rows with
//! [`MultiInputData::to_masked`] (one width) or per task dataset.

use crate::batch::Batch;
use crate::multi_input::MultiInputData;
use mtl_core::{derive_rng, Error, Result, SeededRng, TaskTarget};
use rand::seq::SliceRandom;
use rand::Rng;
use tch::{Kind, Tensor};

/// How a [`TaskSchedule`] picks the tasks of each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskSampling {
    /// Every task at every step (`tasks_per_step` is ignored).
    All,
    /// Tasks in turn: 0, 1, …, K−1, 0, …
    RoundRobin,
    /// Task `i` with probability `nᵢ / Σ n` (its share of the rows).
    Proportional,
    /// Task `i` with probability `∝ nᵢ^(1/T)`: `T = 1` is proportional, large `T` tends
    /// to uniform. `T` must be positive and finite.
    Temperature(f64),
    /// Temperature sampling whose exponent `1/T` moves linearly from `1/start` to
    /// `1/end` over `steps` steps and then stays: with `start = 1`, `end = 5` this is
    /// the annealed sampling of Stickland & Murray (ICML 2019), proportional at first
    /// and close to uniform by the end.
    Annealed {
        /// The temperature at step 0.
        start: f64,
        /// The temperature from step `steps` on.
        end: f64,
        /// The length of the anneal.
        steps: u64,
    },
}

/// Settings of a [`TaskSchedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// How tasks are picked.
    pub sampling: TaskSampling,
    /// Rows per task batch (capped at each task's size).
    pub batch_size: usize,
    /// How many distinct tasks each step gets (sampled without replacement; not used by
    /// [`TaskSampling::All`]).
    pub tasks_per_step: usize,
    /// Seeds the task draws and every task's shuffles.
    pub seed: u64,
}

impl ScheduleConfig {
    /// One task per step, seed 0.
    pub fn new(sampling: TaskSampling, batch_size: usize) -> Self {
        ScheduleConfig {
            sampling,
            batch_size,
            tasks_per_step: 1,
            seed: 0,
        }
    }

    /// Sets the number of tasks per step.
    pub fn tasks_per_step(mut self, n: usize) -> Self {
        self.tasks_per_step = n;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Where one task is in its pass over its rows.
#[derive(Debug, Clone)]
struct Cursor {
    order: Vec<usize>,
    pos: usize,
    passes: u64,
    rng: SeededRng,
}

impl Cursor {
    /// The next rows: up to `batch` of the current pass (the last batch of a pass may be
    /// smaller); a finished pass is reshuffled.
    fn take(&mut self, batch: usize) -> Vec<usize> {
        let (start, end) = self.advance(batch);
        self.order[start..end].to_vec()
    }

    /// Moves past the next rows (as [`Cursor::take`] would) and returns their range in
    /// `order`.
    fn advance(&mut self, batch: usize) -> (usize, usize) {
        if self.pos >= self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.pos = 0;
            self.passes += 1;
        }
        let start = self.pos;
        self.pos = (self.pos + batch).min(self.order.len());
        (start, self.pos)
    }
}

/// An endless, seeded stream of per-step task batches over a [`MultiInputData`]. Owns
/// (shares) its data, so it can move to a prefetching thread.
#[derive(Debug, Clone)]
pub struct TaskSchedule {
    data: MultiInputData,
    config: ScheduleConfig,
    cursors: Vec<Cursor>,
    rng: SeededRng,
    step: u64,
    next_in_turn: usize,
}

impl MultiInputData {
    /// A seeded schedule of task batches; see [`TaskSchedule`].
    ///
    /// ```
    /// use mtl_data::{MultiInputData, MultiTaskDataset, ScheduleConfig, TaskData, TaskSampling};
    /// use ndarray::{Array1, Array2};
    /// let big = MultiTaskDataset::new(Array2::zeros((90, 3)), vec![TaskData::binary("big", Array1::zeros(90))])?;
    /// let small = MultiTaskDataset::new(Array2::zeros((10, 5)), vec![TaskData::binary("small", Array1::zeros(10))])?;
    /// let data = MultiInputData::new(vec![big, small])?;
    /// let mut s = data.schedule(ScheduleConfig::new(TaskSampling::Proportional, 8).seed(1))?;
    /// assert_eq!(s.probabilities(), [0.9, 0.1]);
    /// let step = s.next_step()?;
    /// assert_eq!(step.len(), 1);
    /// let (task, batch) = &step[0];
    /// assert_eq!(batch.x.size()[1], [3, 5][*task]);
    /// # Ok::<(), mtl_core::Error>(())
    /// ```
    pub fn schedule(&self, config: ScheduleConfig) -> Result<TaskSchedule> {
        TaskSchedule::new(self.clone(), config)
    }
}

impl TaskSchedule {
    /// Checks the configuration: a positive batch size, `1..=K` tasks per step, valid
    /// temperatures, and no empty task dataset.
    pub fn new(data: MultiInputData, config: ScheduleConfig) -> Result<Self> {
        let k = data.num_tasks();
        if config.batch_size == 0 {
            return Err(Error::config("schedule: batch size must be at least 1"));
        }
        if config.sampling != TaskSampling::All && !(1..=k).contains(&config.tasks_per_step) {
            return Err(Error::config(format!(
                "schedule: tasks_per_step must be in 1..={k}, got {}",
                config.tasks_per_step
            )));
        }
        let temperature_ok = |t: f64| t.is_finite() && t > 0.0;
        match config.sampling {
            TaskSampling::Temperature(t) if !temperature_ok(t) => {
                return Err(Error::config(format!(
                    "schedule: temperature must be positive and finite, got {t}"
                )))
            }
            TaskSampling::Annealed { start, end, .. }
                if !temperature_ok(start) || !temperature_ok(end) =>
            {
                return Err(Error::config(format!(
                    "schedule: temperatures must be positive and finite, got {start} and {end}"
                )))
            }
            _ => {}
        }
        if let Some(i) = data.sizes().iter().position(|&n| n == 0) {
            return Err(Error::config(format!(
                "schedule: task `{}` has no rows",
                data.task_names()[i]
            )));
        }
        let cursors = (0..k)
            .map(|i| {
                let mut rng = derive_rng(config.seed, &format!("schedule-task-{i}"));
                let mut order: Vec<usize> = (0..data.sizes()[i]).collect();
                order.shuffle(&mut rng);
                Cursor {
                    order,
                    pos: 0,
                    passes: 0,
                    rng,
                }
            })
            .collect();
        Ok(TaskSchedule {
            rng: derive_rng(config.seed, "schedule-tasks"),
            data,
            config,
            cursors,
            step: 0,
            next_in_turn: 0,
        })
    }

    /// The data.
    pub fn data(&self) -> &MultiInputData {
        &self.data
    }

    /// The number of steps taken so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The number of completed passes over each task's rows.
    pub fn task_epochs(&self) -> Vec<u64> {
        self.cursors
            .iter()
            .map(|c| c.passes + u64::from(c.pos >= c.order.len()))
            .collect()
    }

    /// Steps in one epoch: the tasks' batch counts added up, divided by the batches a
    /// step draws (at least 1).
    pub fn steps_per_epoch(&self) -> u64 {
        let batches: usize = self
            .data
            .sizes()
            .iter()
            .map(|n| n.div_ceil(self.config.batch_size))
            .sum();
        let per_step = match self.config.sampling {
            TaskSampling::All => self.data.num_tasks(),
            _ => self.config.tasks_per_step,
        };
        (batches.div_ceil(per_step) as u64).max(1)
    }

    /// The probability of each task being drawn (first) at the current step: uniform for
    /// [`TaskSampling::All`] and [`TaskSampling::RoundRobin`].
    pub fn probabilities(&self) -> Vec<f64> {
        let k = self.data.num_tasks();
        let exponent = match self.config.sampling {
            TaskSampling::All | TaskSampling::RoundRobin => return vec![1.0 / k as f64; k],
            TaskSampling::Proportional => 1.0,
            TaskSampling::Temperature(t) => 1.0 / t,
            TaskSampling::Annealed { start, end, steps } => {
                let frac = if steps == 0 {
                    1.0
                } else {
                    (self.step as f64 / steps as f64).min(1.0)
                };
                (1.0 / start) + frac * (1.0 / end - 1.0 / start)
            }
        };
        let weights: Vec<f64> = self
            .data
            .sizes()
            .iter()
            .map(|&n| (n as f64).powf(exponent))
            .collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    /// The tasks of the next step, in ascending order.
    fn next_tasks(&mut self) -> Vec<usize> {
        let k = self.data.num_tasks();
        let m = self.config.tasks_per_step;
        let mut tasks = match self.config.sampling {
            TaskSampling::All => (0..k).collect(),
            TaskSampling::RoundRobin => {
                let start = self.next_in_turn;
                self.next_in_turn = (start + m) % k;
                (0..m).map(|i| (start + i) % k).collect()
            }
            _ => {
                let mut p = self.probabilities();
                let mut chosen = Vec::with_capacity(m);
                for _ in 0..m {
                    let total: f64 = p.iter().sum();
                    let mut u = self.rng.gen::<f64>() * total;
                    // Falls back on the last task still in play if rounding leaves u > 0.
                    let mut pick = p.iter().rposition(|&w| w > 0.0).unwrap_or(0);
                    for (i, &w) in p.iter().enumerate() {
                        if w > 0.0 && u < w {
                            pick = i;
                            break;
                        }
                        u -= w;
                    }
                    chosen.push(pick);
                    p[pick] = 0.0;
                }
                chosen
            }
        };
        tasks.sort_unstable();
        tasks
    }

    /// The next step: for each task drawn, a batch of its own rows with its one target
    /// (`batch.targets.len() == 1`), as `(task, batch)` in ascending task order.
    /// Assembling a tensor task's batch may fail (a libtorch error), hence the `Result`.
    pub fn next_step(&mut self) -> Result<Vec<(usize, Batch)>> {
        let tasks = self.next_tasks();
        self.step += 1;
        let mut parts = Vec::with_capacity(tasks.len());
        for t in tasks {
            // Cursor rows are always valid rows of the task's dataset.
            let rows = self.cursors[t].take(self.config.batch_size);
            parts.push((t, self.data.task_batch(t, &rows)?));
        }
        Ok(parts)
    }

    /// Advances the schedule by `n` steps without assembling their batches: the same
    /// task draws and row positions as `n` calls of [`TaskSchedule::next_step`], so a
    /// resumed run continues exactly where the saved one was.
    pub fn skip_steps(&mut self, n: u64) {
        for _ in 0..n {
            let tasks = self.next_tasks();
            self.step += 1;
            for t in tasks {
                self.cursors[t].advance(self.config.batch_size);
            }
        }
    }

    /// The next step as one K-task batch: the drawn tasks' batches stacked, each task's
    /// target labelled only on its own rows (see [`MultiInputData::widen`]). Needs one
    /// feature shape per row across tasks (text tasks encoded to one `max_len`);
    /// `rows` lists each part's rows within its own task's dataset, in order.
    pub fn next_merged(&mut self) -> Result<Batch> {
        self.data.common_shape("next_merged")?;
        let parts = self.next_step()?;
        let k = self.data.num_tasks();
        let wide = parts
            .into_iter()
            .map(|(t, b)| self.data.widen(t, b))
            .collect::<Result<Vec<_>>>()?;
        let xs: Vec<&Tensor> = wide.iter().map(|b| &b.x).collect();
        let x = Tensor::f_cat(&xs, 0)?;
        let targets = (0..k)
            .map(|j| {
                let values: Vec<&Tensor> = wide.iter().map(|b| &b.targets[j].values).collect();
                let masks = wide
                    .iter()
                    .map(|b| match &b.targets[j].mask {
                        Some(m) => Ok(m.shallow_clone()),
                        None => Ok(Tensor::f_ones(
                            [b.len() as i64],
                            (Kind::Bool, b.x.device()),
                        )?),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(TaskTarget::masked(
                    Tensor::f_cat(&values, 0)?,
                    Tensor::f_cat(&masks, 0)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = wide.iter().flat_map(|b| b.rows.iter().copied()).collect();
        Ok(Batch { x, targets, rows })
    }
}

impl Iterator for TaskSchedule {
    type Item = Result<Vec<(usize, Batch)>>;

    /// Never `None`: the schedule is endless; bound it with `take`.
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.next_step())
    }
}
