//! Freezing parameter groups for the duration of a fit: variables whose var-store name
//! starts with one of the given prefixes stop requiring gradients, so they drop out of
//! the [`ParamGroups`](mtl_core::ParamGroups), the task Jacobian and the optimiser, and
//! autograd does no work for them. The guard restores them when the fit ends, however
//! it ends.
//!
//! A gradual-unfreezing schedule ([`TrainerConfig::unfreeze`]) is a sequence of such
//! freezes: [`Freezing`] holds the one of the current epoch and replaces it when an
//! unfreeze epoch starts.

use crate::config::TrainerConfig;
use mtl_core::{Error, Result};
use tch::{nn, Tensor};

/// Keeps the variables it froze and unfreezes them on drop.
#[derive(Debug)]
pub(crate) struct FreezeGuard {
    frozen: Vec<(String, Tensor)>,
}

impl FreezeGuard {
    /// Freezes every trainable variable of `vs` whose name starts with one of
    /// `prefixes`. A prefix that matches no trainable variable is a configuration error,
    /// since it is most likely a typo that would silently train what was meant frozen;
    /// so are prefixes that freeze every variable, leaving nothing to train.
    pub(crate) fn apply(vs: &nn::VarStore, prefixes: &[String]) -> Result<Self> {
        let vars = vs.variables();
        let mut frozen = Vec::new();
        for prefix in prefixes {
            let matching: Vec<(&String, &Tensor)> = vars
                .iter()
                .filter(|(name, t)| name.starts_with(prefix.as_str()) && t.requires_grad())
                .collect();
            if matching.is_empty() {
                let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(Error::Unknown {
                    kind: "parameter prefix to freeze",
                    name: prefix.clone(),
                    known: known.join(", "),
                });
            }
            for (name, t) in matching {
                if !frozen.iter().any(|(n, _)| n == name) {
                    frozen.push((name.clone(), t.shallow_clone()));
                }
            }
        }
        let trainable = vars.values().filter(|t| t.requires_grad()).count();
        if !frozen.is_empty() && frozen.len() == trainable {
            return Err(Error::config(format!(
                "frozen prefixes {prefixes:?} freeze all {trainable} trainable variables: \
                 nothing would train"
            )));
        }
        let guard = FreezeGuard { frozen };
        for (_, t) in &guard.frozen {
            // The flag lives on the shared tensor, so the var store sees the change.
            let _ = t.shallow_clone().set_requires_grad(false);
        }
        Ok(guard)
    }

    /// The names of the frozen variables.
    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<String> {
        self.frozen.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The freeze of the current epoch under [`TrainerConfig::frozen`] and
/// [`TrainerConfig::unfreeze`].
#[derive(Debug)]
pub(crate) struct Freezing {
    /// The prefixes frozen now ([`TrainerConfig::frozen_at`]).
    prefixes: Vec<String>,
    guard: Option<FreezeGuard>,
}

impl Freezing {
    /// Freezes what `cfg` keeps frozen during epoch `epoch`, after checking each
    /// unfreeze prefix names parameters that can train: one matching nothing is most
    /// likely a typo, and one matching only parameters [`TrainerConfig::frozen`] keeps
    /// frozen for the whole fit would never unfreeze.
    pub(crate) fn start(vs: &nn::VarStore, cfg: &TrainerConfig, epoch: usize) -> Result<Self> {
        let vars = vs.variables();
        for u in &cfg.unfreeze {
            let matching: Vec<&String> = vars
                .iter()
                .filter(|(name, t)| name.starts_with(u.prefix.as_str()) && t.requires_grad())
                .map(|(name, _)| name)
                .collect();
            if matching.is_empty() {
                let mut known: Vec<&str> = vars.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(Error::Unknown {
                    kind: "parameter prefix to unfreeze",
                    name: u.prefix.clone(),
                    known: known.join(", "),
                });
            }
            let always = |n: &String| cfg.frozen.iter().any(|f| n.starts_with(f.as_str()));
            if matching.iter().all(|n| always(n)) {
                return Err(Error::config(format!(
                    "unfreeze prefix `{}` (epoch {}) only names parameters that `frozen` \
                     keeps frozen for the whole fit: it would never unfreeze",
                    u.prefix, u.epoch
                )));
            }
        }
        let prefixes = cfg.frozen_at(epoch);
        let guard = Some(FreezeGuard::apply(vs, &prefixes)?);
        Ok(Freezing { prefixes, guard })
    }

    /// Moves the freeze on to epoch `epoch`; returns whether anything unfroze.
    pub(crate) fn advance(
        &mut self,
        vs: &nn::VarStore,
        cfg: &TrainerConfig,
        epoch: usize,
    ) -> Result<bool> {
        let now = cfg.frozen_at(epoch);
        if now == self.prefixes {
            return Ok(false);
        }
        // The old guard lets go first: the new one checks its prefixes against the
        // parameters that train without any freeze, as the first one did.
        self.guard = None;
        self.guard = Some(FreezeGuard::apply(vs, &now)?);
        self.prefixes = now;
        Ok(true)
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        for (_, t) in &self.frozen {
            let _ = t.shallow_clone().set_requires_grad(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn freezes_by_prefix_and_restores() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().sub("trunk").zeros("w", &[2]);
        let _ = vs.root().sub("task0").zeros("w", &[2]);
        {
            let g = FreezeGuard::apply(&vs, &["trunk".into()]).unwrap();
            assert_eq!(g.names(), ["trunk.w"]);
            let v = vs.variables();
            assert!(!v["trunk.w"].requires_grad());
            assert!(v["task0.w"].requires_grad());
        }
        assert!(vs.variables()["trunk.w"].requires_grad());
        assert!(matches!(
            FreezeGuard::apply(&vs, &["trunc".into()]),
            Err(Error::Unknown { .. })
        ));
        // Freezing everything trains nothing: refused, and nothing stays frozen.
        let all = FreezeGuard::apply(&vs, &["trunk".into(), "task0".into()]).unwrap_err();
        assert!(all.to_string().contains("nothing would train"), "{all}");
        assert!(vs.variables().values().all(|t| t.requires_grad()));
    }

    #[test]
    fn a_schedule_unfreezes_epoch_by_epoch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().sub("trunk").sub("0").zeros("w", &[2]);
        let _ = vs.root().sub("trunk").sub("1").zeros("w", &[2]);
        let _ = vs.root().sub("task0").zeros("w", &[2]);
        let cfg = TrainerConfig::default()
            .epochs(4)
            .unfreeze_at("trunk.1.", 1)
            .unfreeze_at("trunk.0.", 3);
        let trains = |name: &str| vs.variables()[name].requires_grad();
        {
            let mut f = Freezing::start(&vs, &cfg, 0).unwrap();
            assert!(!trains("trunk.0.w") && !trains("trunk.1.w") && trains("task0.w"));
            assert!(f.advance(&vs, &cfg, 1).unwrap());
            assert!(!trains("trunk.0.w") && trains("trunk.1.w"));
            assert!(!f.advance(&vs, &cfg, 2).unwrap());
            assert!(f.advance(&vs, &cfg, 3).unwrap());
            assert!(trains("trunk.0.w"));
        }
        // Entries add freezes: under `trunk.` (epoch 3) and `trunk.1.` (epoch 1),
        // `trunk.1.w` waits for epoch 3.
        let nested = TrainerConfig::default()
            .epochs(4)
            .unfreeze_at("trunk.1.", 1)
            .unfreeze_at("trunk.", 3);
        {
            let mut f = Freezing::start(&vs, &nested, 1).unwrap();
            assert!(!trains("trunk.1.w"));
            assert!(f.advance(&vs, &nested, 3).unwrap());
            assert!(trains("trunk.1.w") && trains("trunk.0.w"));
        }
        assert!(vs.variables().values().all(|t| t.requires_grad()));
        // A typo, and a prefix only `frozen` covers, are refused.
        let typo = cfg.clone().unfreeze_at("trunc.", 1);
        assert!(matches!(
            Freezing::start(&vs, &typo, 0),
            Err(Error::Unknown { .. })
        ));
        let never = cfg.freeze("trunk.");
        let err = Freezing::start(&vs, &never, 0).unwrap_err();
        assert!(err.to_string().contains("never unfreeze"), "{err}");
    }
}
