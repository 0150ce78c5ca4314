//! Where and how a rank joins its group: from the environment `torchrun`, Slurm
//! recipes and Kubernetes' PyTorchJob set, or built by hand.

use mtl_core::{Error, Result};
use std::time::Duration;

/// A rank's place in its group and the rendezvous it meets the others at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistConfig {
    /// This process's rank, `0..world_size`; rank 0 hosts the rendezvous store.
    pub rank: usize,
    /// The number of ranks.
    pub world_size: usize,
    /// The rank on this node (`LOCAL_RANK`): which GPU it would take.
    pub local_rank: usize,
    /// The rendezvous host (rank 0's address).
    pub master_addr: String,
    /// The rendezvous port.
    pub master_port: u16,
    /// How long a rendezvous or a collective may wait for the other ranks before the
    /// run fails (a dead or stuck rank).
    pub timeout: Duration,
}

/// The timeout when `MTL_DIST_TIMEOUT_S` does not set one: long enough for a slow
/// rank's data loading, short enough that a dead rank ends the run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl DistConfig {
    /// A group of `world_size` ranks meeting at `addr:port`, checked.
    pub fn new(rank: usize, world_size: usize, addr: impl Into<String>, port: u16) -> Result<Self> {
        let config = DistConfig {
            rank,
            world_size,
            local_rank: rank,
            master_addr: addr.into(),
            master_port: port,
            timeout: DEFAULT_TIMEOUT,
        };
        config.check()?;
        Ok(config)
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads `RANK`, `WORLD_SIZE`, `LOCAL_RANK` (defaults to `RANK`), `MASTER_ADDR`,
    /// `MASTER_PORT` and the optional `MTL_DIST_TIMEOUT_S`, as `torchrun` sets them.
    /// Returns `None` when none of `RANK`, `WORLD_SIZE` is set (a single-process run);
    /// a partial or contradictory set is an error naming the variables.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`DistConfig::from_env`] over any variable lookup (testable without touching the
    /// process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let (rank, world) = (var("RANK"), var("WORLD_SIZE"));
        if rank.is_none() && world.is_none() {
            return Ok(None);
        }
        let missing: Vec<&str> = ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"]
            .into_iter()
            .filter(|k| var(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(env_error(format!(
                "a data-parallel launch sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; \
                 missing: {}",
                missing.join(", ")
            )));
        }
        let number = |k: &str| -> Result<usize> {
            let v = var(k).unwrap_or_default();
            v.trim()
                .parse()
                .map_err(|_| env_error(format!("{k}={v:?} is not a non-negative integer")))
        };
        let rank = number("RANK")?;
        let world_size = number("WORLD_SIZE")?;
        let local_rank = match var("LOCAL_RANK") {
            Some(_) => number("LOCAL_RANK")?,
            None => rank,
        };
        let port_text = var("MASTER_PORT").unwrap_or_default();
        let master_port = port_text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                env_error(format!(
                    "MASTER_PORT={port_text:?} is not a port (1..65535)"
                ))
            })?;
        let timeout = match var("MTL_DIST_TIMEOUT_S") {
            None => DEFAULT_TIMEOUT,
            Some(t) => match t.trim().parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(env_error(format!(
                        "MTL_DIST_TIMEOUT_S={t:?} is not a positive number of seconds"
                    )))
                }
            },
        };
        let config = DistConfig {
            rank,
            world_size,
            local_rank,
            master_addr: var("MASTER_ADDR").unwrap_or_default().trim().to_string(),
            master_port,
            timeout,
        };
        config.check()?;
        if local_rank >= world_size {
            return Err(env_error(format!(
                "LOCAL_RANK={local_rank} contradicts WORLD_SIZE={world_size}: a node cannot \
                 run more ranks than the group has"
            )));
        }
        Ok(Some(config))
    }

    fn check(&self) -> Result<()> {
        if self.world_size == 0 {
            return Err(env_error(
                "WORLD_SIZE is 0: a group needs at least one rank",
            ));
        }
        if self.rank >= self.world_size {
            return Err(env_error(format!(
                "RANK={} is out of range for WORLD_SIZE={} (ranks are 0..{})",
                self.rank,
                self.world_size,
                self.world_size - 1
            )));
        }
        if self.master_addr.is_empty() {
            return Err(env_error("MASTER_ADDR is empty"));
        }
        Ok(())
    }
}

fn env_error(message: impl Into<String>) -> Error {
    Error::Distributed {
        rank: 0,
        world_size: 0,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn message(pairs: &[(&str, &str)]) -> String {
        DistConfig::from_vars(vars(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn reads_torchrun_variables() {
        let c = DistConfig::from_vars(vars(&[
            ("RANK", "1"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.2"),
            ("MASTER_PORT", "29500"),
            ("MTL_DIST_TIMEOUT_S", "2.5"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((c.rank, c.world_size, c.local_rank), (1, 4, 1));
        assert_eq!((c.master_addr.as_str(), c.master_port), ("10.0.0.2", 29500));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(DistConfig::from_vars(vars(&[])).unwrap(), None);
    }

    #[test]
    fn bad_environments_name_the_variable() {
        let m = message(&[("RANK", "0"), ("WORLD_SIZE", "2")]);
        assert!(m.contains("missing: MASTER_ADDR, MASTER_PORT"), "{m}");
        let base = [("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            message(&all)
        };
        assert!(with(&[("RANK", "2"), ("WORLD_SIZE", "2")]).contains("RANK=2 is out of range"));
        assert!(with(&[("RANK", "0"), ("WORLD_SIZE", "0")]).contains("WORLD_SIZE is 0"));
        assert!(with(&[("RANK", "x"), ("WORLD_SIZE", "2")]).contains("RANK=\"x\""));
        let m = with(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "3")]);
        assert!(m.contains("LOCAL_RANK=3 contradicts WORLD_SIZE=2"), "{m}");
        let m = message(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "70000"),
        ]);
        assert!(m.contains("MASTER_PORT=\"70000\""), "{m}");
    }
}
