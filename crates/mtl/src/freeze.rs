//! Freezing parameter groups for the duration of a fit: variables whose var-store name
//! starts with one of the given prefixes stop requiring gradients, so they drop out of
//! the [`ParamGroups`](mtl_core::ParamGroups), the task Jacobian and the optimiser, and
//! autograd does no work for them. The guard restores them when the fit ends, however
//! it ends.

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
}
