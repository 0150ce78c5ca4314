//! K-fold cross-validation within each task, to choose hyper-parameters.

use crate::fitted::{point_loss, FittedLinear};
use crate::model::MultiTaskLinear;
use crate::problem::check_data;
use crate::Loss;
use mtl_core::{Error, Result};
use mtl_data::GroupedData;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What to do with a task that has fewer rows than folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmallTasks {
    /// Refuse with an error naming the task.
    #[default]
    Refuse,
    /// Keep all its rows in every training fold and validate on none of them, so the
    /// multi-task models still see it (the radon counties with one or two homes).
    TrainOnly,
}

/// K-fold cross-validation stratified by task: every task's rows are shuffled (seeded)
/// and dealt round-robin into the folds, so each fold holds about `1/K` of every task
/// (for a 0/1 target, of each of its classes).
/// Candidates are scored by the mean validation loss over all held-out rows (squared
/// error, or log-loss for the logistic loss); the best (the first on a tie) is refitted
/// on all rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossValidation {
    /// `K ≥ 2`.
    pub folds: usize,
    /// The seed of the row shuffles.
    pub seed: u64,
    /// What to do with a task that has fewer rows than folds.
    pub small_tasks: SmallTasks,
}

/// The chosen candidate, every candidate's score and the refit.
#[derive(Debug, Clone)]
pub struct CvResult<M> {
    /// The candidate with the lowest mean validation loss.
    pub best: M,
    /// `(name, mean validation loss)` per candidate, in the order given.
    pub scores: Vec<(String, f64)>,
    /// `best` fitted on every row.
    pub fitted: FittedLinear,
}

impl CrossValidation {
    /// `folds` folds, `seed`, refusing small tasks.
    pub fn new(folds: usize, seed: u64) -> Self {
        CrossValidation {
            folds,
            seed,
            small_tasks: SmallTasks::Refuse,
        }
    }

    /// Each task's rows by fold: `result[t][f]`.
    ///
    /// Errors: fewer than 2 folds, or (under [`SmallTasks::Refuse`]) a task with fewer
    /// rows than folds, named.
    pub fn assign(&self, data: &GroupedData) -> Result<Vec<Vec<Vec<usize>>>> {
        if self.folds < 2 {
            return Err(Error::config(format!(
                "cross-validation needs at least 2 folds, got {}",
                self.folds
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut out = Vec::with_capacity(data.n_tasks());
        for (k, t) in data.tasks.iter().enumerate() {
            let n = t.y.len();
            let mut folds = vec![Vec::new(); self.folds];
            if n < self.folds {
                if self.small_tasks == SmallTasks::Refuse {
                    return Err(Error::config(format!(
                        "{}-fold cross-validation: task `{}` (index {k}) has {n} rows, fewer than the folds",
                        self.folds, t.name
                    )));
                }
                out.push(folds);
                continue;
            }
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rng);
            if data.binary {
                // Stratified by label too (a stable sort keeps the shuffle within each
                // class): a class with two rows or more is then in every training fold,
                // so no fold leaves a task with one class and no finite intercept.
                rows.sort_by_key(|&r| t.y[r] == 0.0);
            }
            for (i, r) in rows.into_iter().enumerate() {
                folds[i % self.folds].push(r);
            }
            for f in &mut folds {
                f.sort_unstable();
            }
            out.push(folds);
        }
        Ok(out)
    }

    /// The mean validation loss of `model` on `data`.
    pub fn score<M: MultiTaskLinear>(
        &self,
        model: &M,
        data: &GroupedData,
        loss: Loss,
    ) -> Result<f64> {
        let folds = self.assign(data)?;
        let (mut total, mut rows) = (0.0, 0usize);
        for f in 0..self.folds {
            let mut train = data.clone();
            let mut valid = Vec::new();
            for (k, t) in data.tasks.iter().enumerate() {
                let held: &[usize] = folds[k].get(f).map_or(&[], Vec::as_slice);
                let kept: Vec<usize> = (0..t.y.len())
                    .filter(|i| held.binary_search(i).is_err())
                    .collect();
                train.tasks[k] = t.select(&kept);
                valid.push(t.select(held));
            }
            let fit = model.fit(&train, loss)?;
            for (k, v) in valid.iter().enumerate() {
                if v.y.is_empty() {
                    continue;
                }
                let pred = fit.predict(k, v.x.view())?;
                total += pred
                    .iter()
                    .zip(v.y.iter())
                    .map(|(&p, &y)| point_loss(loss, y, p))
                    .sum::<f64>();
                rows += v.y.len();
            }
        }
        if rows == 0 {
            return Err(Error::config(
                "cross-validation: no task has as many rows as folds, so nothing is validated",
            ));
        }
        Ok(total / rows as f64)
    }

    /// Scores every candidate, picks the best and refits it on all of `data`.
    ///
    /// Errors: no candidates, bad data (named by task), or a candidate's fit failing.
    pub fn select<M: MultiTaskLinear + Clone>(
        &self,
        candidates: &[M],
        data: &GroupedData,
        loss: Loss,
    ) -> Result<CvResult<M>> {
        if candidates.is_empty() {
            return Err(Error::config(
                "cross-validation: no candidates to choose from",
            ));
        }
        check_data(data, loss, "cross-validation")?;
        let mut scores = Vec::with_capacity(candidates.len());
        let mut best = 0;
        for (i, m) in candidates.iter().enumerate() {
            let s = self.score(m, data, loss)?;
            if s < scores
                .get(best)
                .map_or(f64::INFINITY, |b: &(String, f64)| b.1)
            {
                best = i;
            }
            scores.push((m.name(), s));
        }
        let fitted = candidates[best].fit(data, loss)?;
        Ok(CvResult {
            best: candidates[best].clone(),
            scores,
            fitted,
        })
    }
}
