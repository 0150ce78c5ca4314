//! Federated averaging (McMahan, Moore, Ramage, Hampson & Agüera y Arcas,
//! "Communication-Efficient Learning of Deep Networks from Decentralized Data",
//! AISTATS 2017), with per-task weights for multi-task models.

use crate::message::ClientUpdate;
use mtl::core::{Error, Result};
use tch::{Kind, Tensor};

/// One parameter of the global model: its name, its current value and the task that
/// owns it (`None`: shared by every task).
#[derive(Debug)]
pub struct Slot {
    /// The var-store name.
    pub name: String,
    /// The global value.
    pub value: Tensor,
    /// The owning task, by the `task<k>` path convention of
    /// [`ParamGroups`](mtl::core::ParamGroups).
    pub task: Option<usize>,
}

/// The new global parameters, one tensor per slot:
/// `θ̄ ← Σ_c w_c θ_c / Σ_c w_c` over the clients' updates.
///
/// A shared parameter is weighted by each client's training rows, `w_c = n_c`, as in
/// FedAvg. Task `k`'s own parameters (its head, its tower) are weighted by the client's
/// rows *labelled* for task `k`: a client that holds none of task `k`'s labels never
/// moved that head, so its copy carries no information and gets weight 0; a task no
/// sampled client labels keeps its global value. With every task fully labelled on
/// every client, both weights are FedAvg's `n_c`. The sums are taken in f64.
///
/// Every update must name exactly the slots' parameters, with their shapes, and count
/// at least one row and at most that many labels per task; zero updates is an error.
pub fn fedavg(slots: &[Slot], num_tasks: usize, updates: &[ClientUpdate]) -> Result<Vec<Tensor>> {
    if updates.is_empty() {
        return Err(Error::config(
            "FedAvg: zero client updates; a round needs at least one client",
        ));
    }
    for u in updates {
        check_update(slots, num_tasks, u)?;
    }
    tch::no_grad(|| {
        slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let weight = |u: &ClientUpdate| match slot.task {
                    None => u.rows as f64,
                    Some(k) => u.labelled[k] as f64,
                };
                let total: f64 = updates.iter().map(weight).sum();
                if total == 0.0 {
                    return Ok(slot.value.f_detach()?.copy());
                }
                let mut sum = slot.value.f_zeros_like()?.f_to_kind(Kind::Double)?;
                for u in updates {
                    let w = weight(u) / total;
                    if w > 0.0 {
                        let theta = u.parameters[i].1.f_to_kind(Kind::Double)?;
                        sum = sum.f_add(&theta.f_mul_scalar(w)?)?;
                    }
                }
                Ok(sum.f_to_kind(slot.value.kind())?)
            })
            .collect()
    })
}

fn check_update(slots: &[Slot], num_tasks: usize, u: &ClientUpdate) -> Result<()> {
    let who = format!("client {}'s update for round {}", u.client, u.round);
    if u.rows == 0 {
        return Err(Error::config(format!(
            "FedAvg: {who} counts no training rows; a client needs at least one"
        )));
    }
    if u.labelled.len() != num_tasks {
        return Err(Error::TaskCount {
            context: format!("FedAvg: label counts of {who}"),
            expected: num_tasks,
            got: u.labelled.len(),
        });
    }
    if let Some((k, n)) = u.labelled.iter().enumerate().find(|(_, &n)| n > u.rows) {
        return Err(Error::config(format!(
            "FedAvg: {who} counts {n} labels for task {k} but only {} rows",
            u.rows
        )));
    }
    if u.parameters.len() != slots.len() {
        return Err(Error::config(format!(
            "FedAvg: {who} holds {} tensors, the global model has {} parameters",
            u.parameters.len(),
            slots.len()
        )));
    }
    for (slot, (name, t)) in slots.iter().zip(&u.parameters) {
        if *name != slot.name {
            return Err(Error::config(format!(
                "FedAvg: {who} holds tensor `{name}` where the global model has `{}`; an \
                 update carries the global model's parameters and nothing else",
                slot.name
            )));
        }
        if t.size() != slot.value.size() {
            return Err(Error::shape(
                format!("FedAvg: parameter `{name}` of {who}"),
                format!("{:?}", slot.value.size()),
                format!("{:?}", t.size()),
            ));
        }
    }
    Ok(())
}
