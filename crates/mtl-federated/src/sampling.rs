//! Which clients take part in a round.

use mtl::core::{derive_rng, Error, Result};
use rand::seq::index;

/// The clients the server asks to train in round `round`: `m = max(1, round(f · C))`
/// of the `C` clients, drawn uniformly without replacement (FedAvg's client fraction
/// `f`, McMahan et al. 2017), ascending. The draw depends only on `(seed, round)`, so a
/// run is reproducible and rounds are independent.
///
/// ```
/// let a = mtl_federated::sample_clients(10, 0.3, 7, 4)?;
/// assert_eq!(a.len(), 3);
/// assert_eq!(a, mtl_federated::sample_clients(10, 0.3, 7, 4)?);
/// assert!(mtl_federated::sample_clients(0, 0.3, 7, 4).is_err());
/// # Ok::<(), mtl::core::Error>(())
/// ```
pub fn sample_clients(
    clients: usize,
    fraction: f64,
    seed: u64,
    round: usize,
) -> Result<Vec<usize>> {
    if clients == 0 {
        return Err(Error::config(
            "client sampling: zero clients; a federation needs at least one",
        ));
    }
    if !(fraction.is_finite() && fraction > 0.0 && fraction <= 1.0) {
        return Err(Error::config(format!(
            "client sampling: fraction must be in (0, 1], got {fraction}"
        )));
    }
    let m = ((fraction * clients as f64).round() as usize).clamp(1, clients);
    let mut rng = derive_rng(seed, &format!("federated-sampling-round{round}"));
    let mut chosen = index::sample(&mut rng, clients, m).into_vec();
    chosen.sort_unstable();
    Ok(chosen)
}
