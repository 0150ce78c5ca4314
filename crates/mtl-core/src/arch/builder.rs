//! How architectures build their experts, towers and encoders: a [`BackboneBuilder`].
//!
//! A mixture of experts builds the same kind of module many times, under different
//! var-store paths (shared experts under the architecture's path, task experts and
//! towers under `task_path(path, k)`), and sometimes with an input width only the
//! architecture knows (the second PLE layer reads the first layer's experts; a
//! cross-stitch stage reads the previous stage). So architectures do not take built
//! modules but a builder, called as `builder.build(&path, in_dim)`:
//!
//! * any closure `Fn(&nn::Path, i64) -> Result<Box<dyn Backbone>>`;
//! * [`MlpBuilder`]: an MLP `in_dim → hidden…`, the input width supplied by the
//!   architecture;
//! * an [`MlpConfig`] or [`CnnConfig`] (or a
//!   [`ConvNetConfig`](super::ConvNetConfig), whose width is its input channels), whose
//!   input width is fixed: building one for a different width is a [`Error::Shape`]
//!   naming the path.

use super::{Activation, Backbone, CnnConfig, MlpConfig};
use crate::init::Init;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Builds one [`Backbone`] under a var-store path for inputs of a given width.
pub trait BackboneBuilder {
    /// Builds the module under `path`; it will read `[batch, in_dim]` inputs.
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>>;
}

impl<F> BackboneBuilder for F
where
    F: Fn(&nn::Path, i64) -> Result<Box<dyn Backbone>>,
{
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        self(path, in_dim)
    }
}

fn path_name(path: &nn::Path) -> String {
    let name = path.components().collect::<Vec<_>>().join(".");
    if name.is_empty() {
        "<root>".into()
    } else {
        name
    }
}

fn check_fixed_width(path: &nn::Path, what: &str, fixed: i64, in_dim: i64) -> Result<()> {
    if fixed != in_dim {
        return Err(Error::shape(
            format!("{what} at `{}` input", path_name(path)),
            format!("width {in_dim} (what the architecture feeds it)"),
            format!("width {fixed} (its configured input)"),
        ));
    }
    Ok(())
}

impl BackboneBuilder for MlpConfig {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        let fixed = self.sizes.first().copied().unwrap_or(0);
        check_fixed_width(path, "MLP", fixed, in_dim)?;
        Ok(Box::new(MlpConfig::build(self, path)?))
    }
}

impl BackboneBuilder for CnnConfig {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        check_fixed_width(path, "CNN", self.in_dim(), in_dim)?;
        Ok(Box::new(CnnConfig::build(self, path)?))
    }
}

/// An MLP whose input width is supplied by the architecture: `in_dim → hidden[0] → … →
/// hidden[last]`, with the activation after every layer (last included unless turned
/// off) and optional dropout, as in [`MlpConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpBuilder {
    /// The widths after the input; at least one.
    pub hidden: Vec<i64>,
    /// The activation.
    pub activation: Activation,
    /// Dropout probability after each activation.
    pub dropout: f64,
    /// Whether the last layer is activated.
    pub activate_last: bool,
    /// How every layer starts (PyTorch's `nn.Linear` default unless set).
    #[serde(default)]
    pub init: Init,
    /// How the last layer starts, when it differs from `init`.
    #[serde(default)]
    pub last_init: Option<Init>,
}

impl MlpBuilder {
    /// ReLU layers of these widths, no dropout, last layer activated.
    pub fn new(hidden: impl Into<Vec<i64>>) -> Self {
        MlpBuilder {
            hidden: hidden.into(),
            activation: Activation::Relu,
            dropout: 0.0,
            activate_last: true,
            init: Init::default(),
            last_init: None,
        }
    }
    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    /// Sets the dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// Whether the last layer is activated.
    pub fn activate_last(mut self, yes: bool) -> Self {
        self.activate_last = yes;
        self
    }
    /// Sets how the layers are initialised.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }
    /// Sets how the last layer alone is initialised.
    pub fn last_layer_init(mut self, init: Init) -> Self {
        self.last_init = Some(init);
        self
    }
    /// The width of what it builds.
    pub fn out_dim(&self) -> Option<i64> {
        self.hidden.last().copied()
    }
}

impl BackboneBuilder for MlpBuilder {
    fn build(&self, path: &nn::Path, in_dim: i64) -> Result<Box<dyn Backbone>> {
        if self.hidden.is_empty() {
            return Err(Error::config(format!(
                "MLP builder for `{}` has no layers",
                path_name(path)
            )));
        }
        let mut sizes = vec![in_dim];
        sizes.extend(&self.hidden);
        let mlp = MlpConfig {
            sizes,
            activation: self.activation,
            dropout: self.dropout,
            activate_last: self.activate_last,
            init: self.init,
            last_init: self.last_init,
        }
        .build(path)?;
        Ok(Box::new(mlp))
    }
}

/// A boxed backbone is a backbone, so built modules can go wherever one is taken
/// (`HardSharing::new(builder.build(..)?, k)`).
impl Backbone for Box<dyn Backbone> {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        self.as_ref().forward_t(xs, train)
    }
    fn out_dim(&self) -> i64 {
        self.as_ref().out_dim()
    }
    fn in_dim(&self) -> Option<i64> {
        self.as_ref().in_dim()
    }
}

/// Builds `count` modules with `builder` under `path / "{prefix}{i}"`, checks each
/// accepts `in_dim` and that all produce the same width, and returns them with it.
/// `what` names them in errors ("mmoe expert").
pub(crate) fn build_group(
    builder: &dyn BackboneBuilder,
    path: &nn::Path,
    prefix: &str,
    count: usize,
    in_dim: i64,
    what: &str,
) -> Result<(Vec<Box<dyn Backbone>>, i64)> {
    let mut out = Vec::with_capacity(count);
    let mut width = None;
    for i in 0..count {
        let m = builder.build(&(path / format!("{prefix}{i}")), in_dim)?;
        if let Some(w) = m.in_dim() {
            if w != in_dim {
                return Err(Error::shape(
                    format!("{what} {i} input"),
                    format!("width {in_dim}"),
                    format!("width {w}"),
                ));
            }
        }
        match width {
            None => width = Some(m.out_dim()),
            Some(w) if w != m.out_dim() => {
                return Err(Error::shape(
                    format!("{what} {i} output"),
                    format!("width {w} (as {what} 0)"),
                    format!("width {}", m.out_dim()),
                ))
            }
            Some(_) => {}
        }
        out.push(m);
    }
    let width = width.ok_or_else(|| Error::config(format!("{what}: need at least one")))?;
    Ok((out, width))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn closures_configs_and_mlp_builders_all_build() {
        // Tests draw from libtorch's process-wide generator (initialisation, randn):
        // the lock keeps parallel tests from taking each other's seeded draws.
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let closure = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            Ok(Box::new(MlpConfig::new([d, 3]).build(p)?))
        };
        let a = closure.build(&(&root / "a"), 5).unwrap();
        let b = MlpBuilder::new([6, 3]).build(&(&root / "b"), 5).unwrap();
        let c = BackboneBuilder::build(&MlpConfig::new([5, 3]), &(&root / "c"), 5).unwrap();
        let x = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        for m in [a, b, c] {
            assert_eq!(m.forward_t(&x, false).unwrap().size(), vec![2, 3]);
            // A wrong width is libtorch's error, returned rather than panicking.
            let narrow = Tensor::zeros([2, 4], (Kind::Float, Device::Cpu));
            assert!(matches!(m.forward_t(&narrow, false), Err(Error::Torch(_))));
        }
        assert_eq!(vs.variables()["b.1.weight"].size(), vec![3, 6]);
    }

    #[test]
    fn fixed_width_configs_name_the_path() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let err = BackboneBuilder::build(&MlpConfig::new([4, 3]), &(vs.root() / "e0"), 5)
            .err()
            .unwrap();
        assert!(err.to_string().contains("MLP at `e0`"), "{err}");
        let err = BackboneBuilder::build(&CnnConfig::new(28, 28), &vs.root(), 100)
            .err()
            .unwrap();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }

    #[test]
    fn groups_must_agree_on_width() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let uneven = |p: &nn::Path, d: i64| -> Result<Box<dyn Backbone>> {
            let last = p.components().last().unwrap_or_default().to_string();
            let w = if last.ends_with('1') { 4 } else { 3 };
            Ok(Box::new(MlpConfig::new([d, w]).build(p)?))
        };
        let err = build_group(&uneven, &vs.root(), "expert", 2, 5, "test expert")
            .err()
            .unwrap();
        assert!(err.to_string().contains("test expert 1 output"), "{err}");
        let (g, w) = build_group(&MlpBuilder::new([2]), &vs.root(), "x", 3, 5, "x").unwrap();
        assert_eq!((g.len(), w), (3, 2));
    }
}
