//! Every weighting and aggregator, one file each.

mod equal;
mod static_weights;

pub use equal::EqualWeighting;
pub use static_weights::StaticWeighting;
