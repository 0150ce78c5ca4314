//! Predictions on plain `ndarray` rows: the model's preprocessing applied to the input,
//! each head's output read as the task's answer, and the targets' encoding undone, so
//! classes come back as their labels and regression values in their original units.

use crate::model::MultiTaskModel;
use mtl_core::{Error, Result};
use mtl_data::{Standardizer, TableEncoder};
use mtl_heads::Prediction;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, Axis, IxDyn};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Rows per forward pass in [`MultiTaskModel::predict`]: bounds the memory a large
/// input takes on the device.
const PREDICT_CHUNK: usize = 4096;

/// What turned raw rows and targets into what the model trained on, kept with the
/// model so predictions take raw rows and come back in the targets' own terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// The names of the input feature columns, in order, when known (a CSV file's
    /// header), so [`Bundle::predict_csv`](crate::Bundle::predict_csv) reads the same
    /// columns from another file. With a `table` encoder these are its encoded
    /// columns' names (`colour=red`…); the file's columns are the encoder's.
    #[serde(default)]
    pub feature_names: Option<Vec<String>>,
    /// How a CSV file's columns (numbers, yes/no, categories) became the feature row,
    /// fitted on the training rows: [`Bundle::predict_csv`](crate::Bundle::predict_csv)
    /// encodes new rows with it, unseen categories as unknown. `None`: the file's
    /// numeric columns are the features as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableEncoder>,
    /// The standardisation fitted on the training features (`None`: the model reads
    /// raw features).
    #[serde(default)]
    pub features: Option<Standardizer>,
    /// Per task, how its targets were encoded for training; empty when no task's were.
    #[serde(default)]
    pub targets: Vec<TargetEncoding>,
}

/// How one task's targets were encoded for training.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetEncoding {
    /// As they are.
    #[default]
    Identity,
    /// Regression targets standardised column by column: predictions are mapped back
    /// with [`Standardizer::inverse_transform`].
    Standardized {
        /// The statistics of the training targets.
        scaler: Standardizer,
    },
    /// Class `i` (or binary label `i`) stands for `labels[i]`.
    Labels {
        /// One label per class.
        labels: Vec<String>,
    },
}

impl Preprocessing {
    /// The encoding of task `k`'s targets.
    pub fn target(&self, k: usize) -> &TargetEncoding {
        const IDENTITY: TargetEncoding = TargetEncoding::Identity;
        self.targets.get(k).unwrap_or(&IDENTITY)
    }

    /// Checks the preprocessing against a model with `num_tasks` tasks.
    pub(crate) fn check(&self, num_tasks: usize) -> Result<()> {
        if !self.targets.is_empty() && self.targets.len() != num_tasks {
            return Err(Error::TaskCount {
                context: "preprocessing target encodings".into(),
                expected: num_tasks,
                got: self.targets.len(),
            });
        }
        if let (Some(table), Some(s)) = (&self.table, &self.features) {
            if table.width() != s.mean().len() {
                return Err(Error::shape(
                    "preprocessing table encoder",
                    format!(
                        "{} encoded columns (the standardizer's width)",
                        s.mean().len()
                    ),
                    format!("{} encoded columns", table.width()),
                ));
            }
        }
        if let (Some(names), Some(s)) = (&self.feature_names, &self.features) {
            if names.len() != s.mean().len() {
                return Err(Error::shape(
                    "preprocessing feature names",
                    format!("{} names (the standardizer's width)", s.mean().len()),
                    format!("{} names", names.len()),
                ));
            }
        }
        Ok(())
    }
}

/// One task's predictions for every input row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPrediction {
    /// The task's name.
    pub task: String,
    /// The predictions.
    pub output: Predicted,
    /// The label of each class (binary: of 0 and 1), when the targets had labels.
    pub labels: Option<Vec<String>>,
}

/// What a head predicts for `n` rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicted {
    /// Class probabilities `[n, C]` and the most probable class of each row.
    Classes {
        /// Each row sums to 1.
        probabilities: Array2<f32>,
        /// The arg-max of each row.
        classes: Array1<usize>,
    },
    /// The probability of the positive label of a binary task and the decision
    /// (`probability > 0.5`), per row.
    Binary {
        /// P(label = 1).
        probability: Array1<f32>,
        /// Whether the row is predicted positive.
        positive: Array1<bool>,
    },
    /// Independent positive-label probabilities of `L` labels, `[n, L]`.
    Labels(Array2<f32>),
    /// Real values `[n, m]`, in the targets' original units.
    Values(Array2<f32>),
    /// A head's output as it is, for heads that do not say how to read it.
    Raw(ArrayD<f32>),
}

impl TaskPrediction {
    /// The predictions as CSV-ready columns: `(name, one text per row)`. A task with one
    /// answer per row has one column named after the task: the class label, `0`/`1` (or
    /// the binary labels), or the value; `m` regression outputs or `L` labels give
    /// columns `task[0]`, `task[1]`…
    pub fn columns(&self) -> Result<Vec<(String, Vec<String>)>> {
        let label = |i: usize| match &self.labels {
            Some(l) => l.get(i).cloned().ok_or_else(|| {
                Error::config(format!(
                    "task `{}`: class {i} has no label ({} labels)",
                    self.task,
                    l.len()
                ))
            }),
            None => Ok(i.to_string()),
        };
        let matrix = |m: &Array2<f32>| -> Vec<(String, Vec<String>)> {
            let name = |j: usize| {
                if m.ncols() == 1 {
                    self.task.clone()
                } else {
                    format!("{}[{j}]", self.task)
                }
            };
            m.axis_iter(Axis(1))
                .enumerate()
                .map(|(j, col)| (name(j), col.iter().map(|v| v.to_string()).collect()))
                .collect()
        };
        Ok(match &self.output {
            Predicted::Classes { classes, .. } => vec![(
                self.task.clone(),
                classes.iter().map(|&c| label(c)).collect::<Result<_>>()?,
            )],
            Predicted::Binary { positive, .. } => vec![(
                self.task.clone(),
                positive
                    .iter()
                    .map(|&p| label(usize::from(p)))
                    .collect::<Result<_>>()?,
            )],
            Predicted::Labels(p) => matrix(&p.mapv(|v| if v > 0.5 { 1.0 } else { 0.0 })),
            Predicted::Values(v) => matrix(v),
            Predicted::Raw(r) => {
                let n = r.shape().first().copied().unwrap_or(0);
                let flat = r
                    .to_shape((n, r.len().checked_div(n).unwrap_or(0)))
                    .map_err(|e| Error::config(format!("task `{}`: {e}", self.task)))?
                    .to_owned();
                matrix(&flat)
            }
        })
    }
}

impl MultiTaskModel {
    /// Runs `f` on the raw feature rows `x` as the model takes them: checked finite
    /// (an error names `what`, the row and the column), standardised as in training,
    /// cut into tensors of at most `chunk` rows on the model's device, without
    /// gradients; `f` also gets the first row of its chunk. An empty `x` gives one
    /// empty chunk.
    pub(crate) fn for_each_input_chunk(
        &self,
        x: ArrayView2<'_, f32>,
        chunk: usize,
        what: &str,
        mut f: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<()> {
        if let Some((r, c)) = x
            .indexed_iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(i, _)| i)
        {
            return Err(Error::NonFinite {
                what: format!("{what} at row {r}, column {c}"),
                task: None,
                step: None,
                value: x[[r, c]].to_string(),
            });
        }
        let x = match &self.preprocessing().features {
            Some(s) => s.transform(&x.to_owned())?,
            None => x.to_owned(),
        };
        let (n, width) = x.dim();
        let device = self.device();
        let chunk = chunk.max(1);
        tch::no_grad(|| -> Result<()> {
            for start in (0..n.max(1)).step_by(chunk) {
                let end = (start + chunk).min(n);
                let rows = x.slice(ndarray::s![start..end, ..]);
                let rows = rows.as_standard_layout();
                let slice = rows.as_slice().unwrap_or(&[]);
                let xs = Tensor::f_from_slice(slice)?
                    .f_view([(end - start) as i64, width as i64])?
                    .f_to_device(device)?;
                f(start, &xs)?;
            }
            Ok(())
        })
    }

    /// Predicts every task for the rows of `x` (`[n, features]`, raw features): applies
    /// the model's [`Preprocessing`] to the input, runs the model in evaluation mode
    /// without gradients (in chunks, on the model's device), reads each head's output
    /// with [`TaskHead::predict`](mtl_heads::TaskHead::predict) and undoes the targets'
    /// encoding, so regression values are in original units and classes carry their
    /// labels. One [`TaskPrediction`] per task, in task order.
    ///
    /// ```
    /// use mtl::{HeadSpec, ModelSpec, Predicted};
    /// let spec = ModelSpec::hard_sharing(3, &[8], vec![
    ///     HeadSpec::Classification { name: "kind".into(), classes: 4 },
    ///     HeadSpec::Binary { name: "churn".into() },
    /// ]);
    /// let model = spec.build(tch::Device::Cpu)?;
    /// let out = model.predict(ndarray::Array2::<f32>::zeros((5, 3)).view())?;
    /// let Predicted::Classes { probabilities, classes } = &out[0].output else { panic!() };
    /// assert_eq!((probabilities.dim(), classes.len()), ((5, 4), 5));
    /// assert!(matches!(&out[1].output, Predicted::Binary { probability, .. } if probability.len() == 5));
    /// # Ok::<(), mtl::core::Error>(())
    /// ```
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Result<Vec<TaskPrediction>> {
        let prep = self.preprocessing();
        let mut chunks: Vec<Vec<Prediction>> = Vec::new();
        self.for_each_input_chunk(x, PREDICT_CHUNK, "prediction input", |_, xs| {
            let fwd = self.forward_t(xs, false)?;
            let preds = self
                .heads()
                .iter()
                .zip(&fwd.outputs)
                .map(|(h, o)| h.predict(o))
                .collect::<Result<Vec<_>>>()?;
            chunks.push(preds);
            Ok(())
        })?;
        (0..self.num_tasks())
            .map(|k| {
                let name = self.heads()[k].name().to_string();
                let parts = chunks
                    .iter()
                    .map(|c| to_array(&name, &c[k]))
                    .collect::<Result<Vec<_>>>()?;
                let first = parts
                    .first()
                    .ok_or_else(|| Error::config(format!("task `{name}`: no predictions")))?;
                let joined = concat(&name, &parts, first.shape())?;
                let kind = match &chunks[0][k] {
                    Prediction::Classes(_) => Answer::Classes,
                    Prediction::Positive(_) => Answer::Positive,
                    Prediction::Values(_) => Answer::Values,
                };
                finish(&name, kind, joined, prep.target(k))
            })
            .collect()
    }
}

/// Which variant of [`Prediction`] a task produced.
#[derive(Clone, Copy)]
enum Answer {
    Classes,
    Positive,
    Values,
}

fn to_array(task: &str, p: &Prediction) -> Result<ArrayD<f32>> {
    let t = p
        .tensor()
        .f_detach()?
        .f_to_device(tch::Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = Vec::<f32>::try_from(&t.f_view([-1])?)?;
    ArrayD::from_shape_vec(IxDyn(&shape), flat)
        .map_err(|e| Error::config(format!("task `{task}` prediction: {e}")))
}

fn concat(task: &str, parts: &[ArrayD<f32>], shape: &[usize]) -> Result<ArrayD<f32>> {
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(Axis(0), &views).map_err(|e| {
        Error::config(format!(
            "task `{task}`: chunks of shape {shape:?} do not join: {e}"
        ))
    })
}

fn finish(
    task: &str,
    kind: Answer,
    out: ArrayD<f32>,
    encoding: &TargetEncoding,
) -> Result<TaskPrediction> {
    let got = format!("{:?}", out.shape());
    let shape_error = |want: &str| {
        Error::shape(
            format!("task `{task}` predictions"),
            want.to_string(),
            got.clone(),
        )
    };
    let labels = match encoding {
        TargetEncoding::Labels { labels } => Some(labels.clone()),
        _ => None,
    };
    if matches!(encoding, TargetEncoding::Standardized { .. }) && !matches!(kind, Answer::Values) {
        return Err(Error::config(format!(
            "task `{task}`: standardised targets, but its head does not predict values"
        )));
    }
    let output = match kind {
        Answer::Classes => {
            let p = out
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|_| shape_error("[n, classes]"))?;
            let classes = p
                .rows()
                .into_iter()
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                            if v > best.1 {
                                (i, v)
                            } else {
                                best
                            }
                        })
                        .0
                })
                .collect();
            Predicted::Classes {
                probabilities: p,
                classes,
            }
        }
        Answer::Positive if out.ndim() == 1 => {
            let probability = out
                .into_dimensionality::<ndarray::Ix1>()
                .map_err(|_| shape_error("[n]"))?;
            let positive = probability.mapv(|p| p > 0.5);
            Predicted::Binary {
                probability,
                positive,
            }
        }
        Answer::Positive => Predicted::Labels(
            out.into_dimensionality::<ndarray::Ix2>()
                .map_err(|_| shape_error("[n] or [n, labels]"))?,
        ),
        Answer::Values if out.ndim() == 2 => {
            let v = out
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|_| shape_error("[n, outputs]"))?;
            Predicted::Values(match encoding {
                TargetEncoding::Standardized { scaler } => scaler.inverse_transform(&v)?,
                _ => v,
            })
        }
        Answer::Values => {
            if matches!(encoding, TargetEncoding::Standardized { .. }) {
                return Err(shape_error("[n, outputs] (standardised targets)"));
            }
            Predicted::Raw(out)
        }
    };
    Ok(TaskPrediction {
        task: task.to_string(),
        output,
        labels,
    })
}
