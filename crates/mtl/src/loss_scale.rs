//! The check for task losses on very different scales under a method that is not
//! scale-invariant, run by the training loop after the first epoch.
//!
//! Under equal or static weighting (and every other method that combines the raw
//! losses or gradients) a task whose loss is 100× another's gets about 100× its say in
//! the update: the small task barely trains, which shows up as negative transfer. The
//! usual cause is regression targets in their raw units; standardising them (as `mtl
//! train` does by default) or choosing a scale-invariant method removes it.

/// The registered methods whose update is unchanged when one task's loss is multiplied
/// by a positive constant, exactly or at their fixed point: `uw` and `imtl_l` learn a
/// per-task scale that settles at the inverse loss; `gls`, `stch`, `famo` and `db_mtl`
/// work on log-losses; `gradnorm` learns weights that equalise gradient norms;
/// `imtl_g`, `nash_mtl`, `config` and `fairgrad` (at its default α = 1) depend on the
/// task gradients only through directions or a scale-free bargaining solution. Every
/// other registered method is not scale-invariant.
pub const SCALE_INVARIANT_METHODS: &[&str] = &[
    "uw", "imtl_l", "gls", "stch", "famo", "db_mtl", "gradnorm", "imtl_g", "nash_mtl", "config",
    "fairgrad", "imtl",
];

/// The ratio of the largest to the smallest first-epoch task loss above which
/// [`loss_scale_warning`] warns: two orders of magnitude.
pub const LOSS_SCALE_RATIO: f64 = 100.0;

/// A warning when the positive, finite `losses` (one per task, named by `tasks`) span
/// more than [`LOSS_SCALE_RATIO`] and `method` is a registered method that is not
/// scale-invariant ([`SCALE_INVARIANT_METHODS`]); `None` otherwise (methods the
/// registry does not know are not judged).
///
/// ```
/// let tasks = ["price".to_string(), "ratio".to_string()];
/// let w = mtl::loss_scale_warning("ew", &tasks, &[49_000.0, 0.02]).unwrap();
/// assert!(w.contains("`price`") && w.contains("`ratio`"));
/// assert!(mtl::loss_scale_warning("nash_mtl", &tasks, &[49_000.0, 0.02]).is_none());
/// assert!(mtl::loss_scale_warning("ew", &tasks, &[1.0, 0.5]).is_none());
/// ```
pub fn loss_scale_warning(method: &str, tasks: &[String], losses: &[f64]) -> Option<String> {
    if SCALE_INVARIANT_METHODS.contains(&method)
        || !mtl_losses::list().iter().any(|m| m.name == method)
    {
        return None;
    }
    let scored: Vec<(usize, f64)> = losses
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| l.is_finite() && *l > 0.0)
        .collect();
    let (hi, lo) = (
        scored.iter().max_by(|a, b| a.1.total_cmp(&b.1))?,
        scored.iter().min_by(|a, b| a.1.total_cmp(&b.1))?,
    );
    let ratio = hi.1 / lo.1;
    if ratio <= LOSS_SCALE_RATIO {
        return None;
    }
    let name = |k: usize| {
        tasks
            .get(k)
            .map_or_else(|| format!("task {k}"), Clone::clone)
    };
    Some(format!(
        "task losses differ by {ratio:.0}x after the first epoch (`{}` {:.3e}, `{}` {:.3e}) and \
         method `{method}` is not scale-invariant, so the larger losses dominate the update: \
         standardise regression targets, weight the tasks, or use a scale-invariant method ({})",
        name(hi.0),
        hi.1,
        name(lo.0),
        lo.1,
        SCALE_INVARIANT_METHODS.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scale_invariant_method_is_registered() {
        let known: Vec<&str> = mtl_losses::list().iter().map(|m| m.name).collect();
        for m in SCALE_INVARIANT_METHODS {
            assert!(known.contains(m), "{m}");
        }
    }

    #[test]
    fn zero_and_non_finite_losses_are_not_judged() {
        let tasks = ["a".to_string(), "b".into(), "c".into()];
        assert!(loss_scale_warning("ew", &tasks, &[0.0, 1.0, f64::NAN]).is_none());
        assert!(loss_scale_warning("pcgrad", &tasks, &[0.0, 1.0, 150.0]).is_some());
        assert!(loss_scale_warning("my_custom", &tasks, &[1.0, 1e6, 1.0]).is_none());
    }
}
