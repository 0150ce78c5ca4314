//! Simulated clients: one dataset cut into per-client private datasets, IID or skewed
//! the ways real federations are (label skew, clients that label one task).

use mtl::core::{derive_rng, Error, Result};
use mtl::data::{MultiTaskDataset, TargetData};
use ndarray::Array1;
use rand::seq::SliceRandom;
use rand_distr::{Dirichlet, Distribution};
use serde::{Deserialize, Serialize};

/// One client's private rows: what it trains on and its held-out rows, on which the
/// report measures the global and the personalised model. Neither ever leaves the
/// client.
#[derive(Debug, Clone)]
pub struct ClientData {
    /// The client's name in reports.
    pub name: String,
    /// Its training rows (at least one).
    pub train: MultiTaskDataset,
    /// Its held-out rows (may be empty: the client then reports no metrics).
    pub test: MultiTaskDataset,
}

impl ClientData {
    /// A client's data; a client without training rows is refused, naming it.
    pub fn new(
        name: impl Into<String>,
        train: MultiTaskDataset,
        test: MultiTaskDataset,
    ) -> Result<Self> {
        let name = name.into();
        if train.is_empty() {
            return Err(Error::config(format!(
                "federated client `{name}` has no training rows; every client needs at least one"
            )));
        }
        if train.num_tasks() != test.num_tasks() || train.num_features() != test.num_features() {
            return Err(Error::shape(
                format!("federated client `{name}` held-out rows"),
                format!(
                    "{} tasks over {} features (its training rows)",
                    train.num_tasks(),
                    train.num_features()
                ),
                format!(
                    "{} tasks over {} features",
                    test.num_tasks(),
                    test.num_features()
                ),
            ));
        }
        Ok(ClientData { name, train, test })
    }
}

/// How rows are dealt to clients.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientSplit {
    /// Rows shuffled and dealt in equal shares: every client sees the same distribution.
    Iid,
    /// Label skew (Hsu, Qi & Brown 2019): for each class of classification (or binary)
    /// task `task`, the proportions of its rows going to each client are drawn from
    /// Dirichlet(α, …, α). Small α gives clients a few dominant classes; large α tends
    /// to IID. Rows without that task's label are dealt IID.
    Dirichlet {
        /// The task whose labels skew the split.
        task: usize,
        /// The concentration α (> 0).
        alpha: f64,
    },
    /// Rows dealt IID, but client `c` trains on task `c mod K`'s labels only (the
    /// others are masked in its training rows), as when each participant annotates
    /// one task. Its held-out rows keep every label, so the report measures each
    /// model on the tasks the client never labelled too: the simulation's view, which
    /// a real client could not take.
    OneTaskPerClient,
}

/// Deals `data`'s rows to `clients` clients by `split`, then holds out a fraction
/// `test_fraction` of each client's rows (seeded, as
/// [`MultiTaskDataset::split_rows`]). Clients are named `client0`, `client1`, ….
///
/// Zero clients, and a client left with no rows (too many clients for the rows, or an
/// α so small that a client draws nothing), are errors.
///
/// ```
/// use mtl_federated::{split_clients, ClientSplit};
/// # use mtl::data::{MultiTaskDataset, TaskData};
/// # use mtl::ndarray::{Array1, Array2};
/// let data = MultiTaskDataset::new(
///     Array2::from_shape_fn((40, 2), |(i, j)| (i + j) as f32),
///     vec![TaskData::classes("c", Array1::from_shape_fn(40, |i| (i % 2) as i64), 2)],
/// )?;
/// let clients = split_clients(&data, 4, ClientSplit::Iid, 0.25, 1)?;
/// assert_eq!(clients.iter().map(|c| c.train.len() + c.test.len()).sum::<usize>(), 40);
/// assert!(split_clients(&data, 0, ClientSplit::Iid, 0.25, 1).is_err());
/// # Ok::<(), mtl::core::Error>(())
/// ```
pub fn split_clients(
    data: &MultiTaskDataset,
    clients: usize,
    split: ClientSplit,
    test_fraction: f64,
    seed: u64,
) -> Result<Vec<ClientData>> {
    if clients == 0 {
        return Err(Error::config(
            "federated split: zero clients; a federation needs at least one",
        ));
    }
    let mut rng = derive_rng(seed, "federated-split");
    let rows = match split {
        ClientSplit::Iid | ClientSplit::OneTaskPerClient => {
            let mut order: Vec<usize> = (0..data.len()).collect();
            order.shuffle(&mut rng);
            deal(&order, clients)
        }
        ClientSplit::Dirichlet { task, alpha } => dirichlet_rows(data, clients, task, alpha, seed)?,
    };
    let mut out = Vec::with_capacity(clients);
    for (c, mut own) in rows.into_iter().enumerate() {
        if own.is_empty() {
            return Err(Error::config(format!(
                "federated split: client {c} of {clients} received no rows ({} rows in all, \
                 split {split:?}); use fewer clients or, for a Dirichlet split, a larger alpha",
                data.len()
            )));
        }
        own.sort_unstable();
        let local = data.subset(&own)?;
        let parts = local.split_rows(0.0, test_fraction, seed.wrapping_add(c as u64))?;
        let mut train = local.subset(&parts.train)?;
        if split == ClientSplit::OneTaskPerClient {
            let keep = c % data.num_tasks();
            for k in (0..data.num_tasks()).filter(|&k| k != keep) {
                train = train.mask_task(k, &Array1::from_elem(train.len(), false))?;
            }
        }
        out.push(ClientData::new(
            format!("client{c}"),
            train,
            local.subset(&parts.test)?,
        )?);
    }
    Ok(out)
}

/// `order` dealt into `clients` contiguous, nearly equal shares.
fn deal(order: &[usize], clients: usize) -> Vec<Vec<usize>> {
    (0..clients)
        .map(|c| {
            let (lo, hi) = (c * order.len() / clients, (c + 1) * order.len() / clients);
            order[lo..hi].to_vec()
        })
        .collect()
}

/// Each class's rows cut among clients by proportions drawn from Dirichlet(α).
fn dirichlet_rows(
    data: &MultiTaskDataset,
    clients: usize,
    task: usize,
    alpha: f64,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(Error::config(format!(
            "federated Dirichlet split: alpha must be finite and positive, got {alpha}"
        )));
    }
    let t = data.tasks().get(task).ok_or_else(|| {
        Error::config(format!(
            "federated Dirichlet split: task {task} out of range 0..{}",
            data.num_tasks()
        ))
    })?;
    let (labels, classes): (Vec<i64>, usize) = match &t.data {
        TargetData::Classes { labels, classes } => (labels.to_vec(), *classes),
        TargetData::Binary(v) => (v.iter().map(|&b| i64::from(b > 0.5)).collect(), 2),
        TargetData::Regression(_) => {
            return Err(Error::config(format!(
                "federated Dirichlet split: task {task} (`{}`) is a regression task; label \
                 skew needs classes",
                t.name
            )))
        }
    };
    let mut rng = derive_rng(seed, "federated-dirichlet");
    // One pool per class, and one for the rows without this task's label.
    let mut pools: Vec<Vec<usize>> = vec![Vec::new(); classes + 1];
    for (r, &label) in labels.iter().enumerate() {
        let pool = if t.is_labelled(r) {
            label as usize
        } else {
            classes
        };
        pools[pool].push(r);
    }
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); clients];
    let mut unlabelled = pools.pop().unwrap_or_default();
    unlabelled.shuffle(&mut rng);
    for (c, share) in deal(&unlabelled, clients).into_iter().enumerate() {
        rows[c].extend(share);
    }
    for pool in pools.iter_mut() {
        pool.shuffle(&mut rng);
        let proportions = if clients == 1 {
            vec![1.0]
        } else {
            Dirichlet::new(&vec![alpha; clients])
                .map_err(|e| Error::config(format!("federated Dirichlet split: {e}")))?
                .sample(&mut rng)
        };
        // Cumulative cut points, so the shares cover the class exactly.
        let mut start = 0usize;
        let mut cumulative = 0.0;
        for (c, p) in proportions.iter().enumerate() {
            cumulative += p;
            let end = if c + 1 == clients {
                pool.len()
            } else {
                ((cumulative * pool.len() as f64).round() as usize).clamp(start, pool.len())
            };
            rows[c].extend_from_slice(&pool[start..end]);
            start = end;
        }
    }
    Ok(rows)
}
