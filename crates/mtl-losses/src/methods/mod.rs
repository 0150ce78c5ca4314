//! Every weighting and aggregator, one file each.

mod aligned_mtl;
mod cagrad;
mod constant;
mod dualproj;
mod equal;
mod gradnorm;
mod imtl_g;
mod mean;
mod mgda;
mod pcgrad;
mod static_weights;
mod sum;
mod uncertainty;
mod upgrad;

pub use aligned_mtl::{AlignedMtl, AlignedPreference, AlignedScale};
pub use cagrad::{CaGrad, CaGradConvention, CaGradRescale};
pub use constant::Constant;
pub use dualproj::DualProj;
pub use equal::EqualWeighting;
pub use gradnorm::{GradNorm, GradNormConfig};
pub use imtl_g::{ImtlG, ImtlGForm};
pub use mean::Mean;
pub use mgda::{Mgda, MgdaNormalization, MgdaSolver};
pub use pcgrad::{pcgrad_coefficients, pcgrad_weights, PcGrad, PcGradConfig};
pub use static_weights::StaticWeighting;
pub use sum::Sum;
pub use uncertainty::UncertaintyWeighting;
pub use upgrad::UpGrad;
