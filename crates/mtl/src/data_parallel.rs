//! What a data-parallel fit does besides the engine's reductions: the ranks agree on
//! what they run before the first collective, and start from rank 0's weights.

use crate::model::MultiTaskModel;
use crate::plan::Plan;
use crate::TrainerConfig;
use mtl_core::collective::agree;
use mtl_core::{Collective, Result};
use mtl_losses::Method;
use sha2::{Digest, Sha256};

/// Refuses a group whose ranks differ in build, configuration, tasks, model or data,
/// each checked apart so the error says which.
pub(crate) fn agree_on_run(
    group: &dyn Collective,
    cfg: &TrainerConfig,
    model: &MultiTaskModel,
    plan: &Plan<'_>,
    data: &crate::run_state::DataHash,
) -> Result<()> {
    let hash = |parts: &[&[u8]]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let d = h.finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    };
    agree(
        group,
        "the mtl version",
        hash(&[env!("CARGO_PKG_VERSION").as_bytes()]),
    )?;
    let config = serde_json::to_string(cfg).unwrap_or_default();
    agree(
        group,
        "the trainer configuration",
        hash(&[config.as_bytes()]),
    )?;
    let tasks = model.task_names().join("\u{1f}");
    agree(group, "the task names", hash(&[tasks.as_bytes()]))?;
    let mut shapes: Vec<(String, Vec<i64>)> = model
        .var_store()
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    shapes.sort();
    agree(
        group,
        "the model's parameters and shapes",
        hash(&[format!("{shapes:?}").as_bytes()]),
    )?;
    let data = data.of(plan)?;
    agree(group, "the training data", hash(&[data.as_bytes()]))
}

/// Overwrites every rank's model weights and the method's learnable parameters with
/// rank 0's.
pub(crate) fn broadcast_weights(
    group: &dyn Collective,
    model: &MultiTaskModel,
    method: &Method,
) -> Result<()> {
    let mut vars: Vec<(String, tch::Tensor)> = model.var_store().variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| -> Result<()> {
        for (_, t) in &vars {
            group.broadcast(t, 0)?;
        }
        for p in method.parameters() {
            group.broadcast(&p, 0)?;
        }
        Ok(())
    })
}
