//! Mixed table inputs: rows whose first columns are numbers and whose last columns are
//! category ids, turned into one feature row by looking each id up in its column's
//! embedding table. Put in front of any architecture with [`SharedBottom`](
//! super::SharedBottom), the tables are shared parameters (outside every `task<k>`
//! path), so every architecture and method trains them and checkpoints store them.
//!
//! The ids travel in the same `f32` feature matrix as the numbers (exact up to 2²⁴),
//! so datasets, batches, splits and checkpoints need no second input.

use super::Backbone;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

/// One categorical column's embedding table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingTable {
    /// The column's name (for errors and reports).
    pub column: String,
    /// The number of ids, `0..rows`.
    pub rows: i64,
    /// The width of each embedding.
    pub dim: i64,
}

/// The layout of a mixed input row: `dense` numbers, then one id column per table.
///
/// ```
/// use mtl_core::{Backbone, EmbeddingInputConfig, EmbeddingTable};
/// use tch::{nn, Device, Tensor};
/// let config = EmbeddingInputConfig {
///     dense: 2,
///     tables: vec![EmbeddingTable { column: "city".into(), rows: 5, dim: 3 }],
/// };
/// let vs = nn::VarStore::new(Device::Cpu);
/// let input = config.build(&(vs.root() / "input"))?;
/// assert_eq!((config.in_dim(), input.out_dim()), (3, 5));
/// let x = Tensor::from_slice(&[0.5f32, -1.0, 4.0, 0.0, 2.0, 1.0]).view([2, 3]);
/// assert_eq!(input.forward_t(&x, false)?.size(), [2, 5]);
/// // An id outside the table is an error naming the column, not a crash.
/// let bad = Tensor::from_slice(&[0.5f32, -1.0, 5.0]).view([1, 3]);
/// assert!(input.forward_t(&bad, false).unwrap_err().to_string().contains("city"));
/// # Ok::<(), mtl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingInputConfig {
    /// The number of numeric columns, which come first and pass through.
    pub dense: i64,
    /// One table per id column, in column order.
    pub tables: Vec<EmbeddingTable>,
}

impl EmbeddingInputConfig {
    /// The width of the input rows: the numbers and one id per table.
    pub fn in_dim(&self) -> i64 {
        self.dense + self.tables.len() as i64
    }

    /// The width of the output rows: the numbers and every embedding.
    pub fn out_dim(&self) -> i64 {
        self.dense + self.tables.iter().map(|t| t.dim).sum::<i64>()
    }

    /// Builds the tables under `path` (`path/embed<j>`), initialised as
    /// `torch.nn.Embedding` (standard normal).
    pub fn build(&self, path: &nn::Path) -> Result<EmbeddingInput> {
        if self.dense < 0 {
            return Err(Error::config(format!(
                "embedding input: {} numeric columns",
                self.dense
            )));
        }
        if let Some(t) = self.tables.iter().find(|t| t.rows < 1 || t.dim < 1) {
            return Err(Error::config(format!(
                "embedding input: column `{}` has a table of {} ids × {} dimensions; both \
                 must be positive",
                t.column, t.rows, t.dim
            )));
        }
        let tables = self
            .tables
            .iter()
            .enumerate()
            .map(|(j, t)| {
                nn::embedding(
                    path / format!("embed{j}"),
                    t.rows,
                    t.dim,
                    Default::default(),
                )
            })
            .collect();
        Ok(EmbeddingInput {
            config: self.clone(),
            tables,
        })
    }
}

/// Numbers passed through, ids replaced by their embeddings ([`EmbeddingInputConfig`]).
#[derive(Debug)]
pub struct EmbeddingInput {
    config: EmbeddingInputConfig,
    tables: Vec<nn::Embedding>,
}

impl EmbeddingInput {
    /// The layout it was built for.
    pub fn config(&self) -> &EmbeddingInputConfig {
        &self.config
    }
}

impl Backbone for EmbeddingInput {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Result<Tensor> {
        let c = &self.config;
        let size = xs.size();
        if size.len() != 2 || size[1] != c.in_dim() {
            return Err(Error::shape(
                "embedding input",
                format!(
                    "[batch, {}] ({} numbers and {} category ids)",
                    c.in_dim(),
                    c.dense,
                    c.tables.len()
                ),
                format!("{size:?}"),
            ));
        }
        let mut parts = vec![xs.f_narrow(1, 0, c.dense)?];
        for (j, (table, layer)) in c.tables.iter().zip(&self.tables).enumerate() {
            let ids = xs.f_select(1, c.dense + j as i64)?.f_to_kind(Kind::Int64)?;
            if ids.numel() > 0 {
                // libtorch aborts the process on an id outside the table; checked here.
                let (lo, hi) = (ids.f_min()?.int64_value(&[]), ids.f_max()?.int64_value(&[]));
                if lo < 0 || hi >= table.rows {
                    return Err(Error::config(format!(
                        "embedding input: column `{}` holds id {} outside its table of {} ids",
                        table.column,
                        if lo < 0 { lo } else { hi },
                        table.rows
                    )));
                }
            }
            parts.push(nn::Module::forward(layer, &ids));
        }
        Ok(Tensor::f_cat(&parts, 1)?)
    }

    fn out_dim(&self) -> i64 {
        self.config.out_dim()
    }

    fn in_dim(&self) -> Option<i64> {
        Some(self.config.in_dim())
    }
}
