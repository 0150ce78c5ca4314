//! Every weighting and aggregator, one file each.

mod equal;

pub use equal::EqualWeighting;
