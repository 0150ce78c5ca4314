//! # custom-head
//!
//! A task head that `mtl-heads` does not ship, written the way a crate outside the
//! workspace would write one: quantile regression. Instead of one number per row, the
//! [`QuantileHead`] predicts several quantiles of the target's conditional distribution
//! (say the 10th, 50th and 90th percentiles), which together give a prediction interval.
//! It is trained with the pinball loss ([`pinball_loss`]) and evaluated by
//! [`QuantileMetrics`]: the pinball loss again, and how far each quantile's empirical
//! coverage is from its level. The three live together in one module, as `mtl-heads`
//! lays out its own heads, and are built from `mtl_heads::kit`, so the layer, the
//! checks, the masking and the running totals are those of the built-in heads.
//!
//! The head implements [`mtl_heads::TaskHead`], so it sits in a
//! `Vec<Box<dyn TaskHead>>` next to the built-in heads and trains in an `mtl`
//! `MultiTaskModel` like any of them; `src/main.rs` does that on the olive-oil data, and
//! `docs/custom-heads.md` walks through the code.
//!
//! ```
//! use custom_head::QuantileHead;
//! use mtl_heads::{TaskHead, TaskTarget};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let head = QuantileHead::new(&(vs.root() / "task0" / "head"), "oleic", 16, &[0.1, 0.5, 0.9])?;
//! let quantiles = head.forward_t(&Tensor::randn([4, 16], (Kind::Float, Device::Cpu)), true)?;
//! assert_eq!(quantiles.size(), [4, 3]);
//! let target = TaskTarget::new(Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.0]));
//! assert!(head.loss(&quantiles, &target)?.double_value(&[]) > 0.0);
//! # Ok::<(), mtl_heads::Error>(())
//! ```

mod quantile;

pub use quantile::{check_quantiles, pinball_loss, QuantileHead, QuantileMetrics};
