//! Loading weights trained elsewhere into a model by name: PyTorch's
//! `model.load_state_dict(state_dict, strict=...)` after renaming keys, for a
//! [`VarStore`].
//!
//! The file's tensor names are mapped to var-store names by prefix renames
//! ([`LoadOptions::rename`]: `bert.encoder.` → `trunk.`), keys can be left out
//! ([`LoadOptions::skip`]), and the outcome is a [`LoadReport`] naming what was loaded,
//! what the model has that the file lacks (*missing*), what the file has that the model
//! lacks (*unexpected*) and every shape that disagrees. Nothing is copied unless the
//! whole load can go ahead, so a failed load leaves the model as it was.
//!
//! # Formats
//!
//! * **safetensors** (what [`save_weights`](crate::checkpoint::save_weights) writes, what
//!   Hugging Face publishes, `safetensors.torch.save_file` in Python). An `mtl`
//!   checkpoint is a safetensors file too; its optimiser and method tensors (the names
//!   with `::`) are left out, so a training checkpoint loads as its model weights.
//! * **libtorch archives** written by `tch` (`VarStore::save` to a `.ot` file), read with
//!   libtorch's own loader.
//!
//! A PyTorch `torch.save(model.state_dict(), "w.pt")` file is a Python pickle, which
//! libtorch's C++ API cannot read (`tch` offers no reader for it either), so it is
//! refused with the conversion to use instead — one line of Python:
//!
//! ```text
//! import torch, safetensors.torch
//! safetensors.torch.save_file(torch.load("w.pt", map_location="cpu"), "w.safetensors")
//! ```
//!
//! (or `safetensors.torch.save_file(model.state_dict(), "w.safetensors")` where the model
//! is at hand; tied weights need `safetensors.torch.save_model`).

use crate::checkpoint::{FORMAT, GROUP_SEPARATOR};
use crate::{Error, Result};
use safetensors::tensor::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

/// How a weights file maps onto a model: prefix renames, keys to leave out, and whether
/// anything left unmatched is an error.
///
/// Serialisable (a config file's `{ rename = [["bert.", "trunk."]], skip = ["cls."],
/// strict = false }`), with unknown fields refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadOptions {
    /// `(from, to)` prefix renames applied to the file's names: a name starting with
    /// `from` has that prefix replaced by `to`. The first rule whose `from` matches
    /// applies (one rename per name); names that match none keep their name.
    pub rename: Vec<(String, String)>,
    /// Prefixes of the file's names (as stored, before renaming) to leave out: a
    /// pretrained head, a pooler. Skipped names are listed in
    /// [`LoadReport::skipped`], never as unexpected.
    pub skip: Vec<String>,
    /// Every variable of the model must be loaded and every (not skipped) tensor of the
    /// file used, as PyTorch's `load_state_dict(strict=True)` (the default). With
    /// `false` what matches is loaded and the rest reported.
    pub strict: bool,
}

impl Default for LoadOptions {
    /// Strict, with no renames and nothing skipped: PyTorch's `load_state_dict` default,
    /// so nothing is silently left at its initial value.
    fn default() -> Self {
        LoadOptions {
            rename: Vec::new(),
            skip: Vec::new(),
            strict: true,
        }
    }
}

impl LoadOptions {
    /// Strict, no renames, nothing skipped.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a prefix rename: file names starting with `from` load into `to…`.
    pub fn rename(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.rename.push((from.into(), to.into()));
        self
    }
    /// Leaves out the file's tensors whose names start with `prefix`.
    pub fn skip(mut self, prefix: impl Into<String>) -> Self {
        self.skip.push(prefix.into());
        self
    }
    /// Sets strict mode (see [`LoadOptions::strict`]).
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The name a file tensor loads into, after the first matching rename.
    pub fn map_name(&self, name: &str) -> String {
        for (from, to) in &self.rename {
            if let Some(rest) = name.strip_prefix(from.as_str()) {
                return format!("{to}{rest}");
            }
        }
        name.to_string()
    }

    /// Checks the options: an empty skip prefix would skip every tensor, and an empty
    /// `from` would rename every name (it matches all), shadowing every later rule.
    pub fn check(&self) -> Result<()> {
        if let Some(i) = self.skip.iter().position(String::is_empty) {
            return Err(Error::config(format!(
                "skip[{i}] is empty: it would leave out every tensor of the file"
            )));
        }
        if let Some(i) = self.rename.iter().position(|(from, _)| from.is_empty()) {
            if i + 1 < self.rename.len() {
                return Err(Error::config(format!(
                    "rename[{i}] renames from the empty prefix, which matches every name: \
                     the renames after it could never apply (put it last)"
                )));
            }
        }
        Ok(())
    }
}

/// A tensor whose shape in the file differs from its variable's in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeMismatch {
    /// The model's (var-store) name.
    pub name: String,
    /// The name in the file, before renaming.
    pub file_name: String,
    /// The shape in the file.
    pub file_shape: Vec<i64>,
    /// The variable's shape.
    pub model_shape: Vec<i64>,
}

/// What [`load_weights`] did, every list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Model variables given the file's values.
    pub loaded: Vec<String>,
    /// Model variables the file has no tensor for (after renaming): still at their
    /// initial values.
    pub missing: Vec<String>,
    /// File tensors (names as stored) that fit no model variable after renaming.
    pub unexpected: Vec<String>,
    /// File tensors left out by [`LoadOptions::skip`] (names as stored).
    pub skipped: Vec<String>,
    /// Tensors whose shapes disagree. Never loaded: a load with any is an error, so a
    /// report only holds them when it comes from [`plan_load`].
    pub mismatched: Vec<ShapeMismatch>,
}

impl LoadReport {
    /// Every variable loaded and every tensor used (skipped ones aside).
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }

    /// What refuses the load under `opts`, one clause each: shape mismatches always
    /// (as PyTorch's `load_state_dict` even with strict=False: a partial copy would
    /// train from a silently wrong start), missing and unexpected names when strict.
    fn problems(&self, opts: &LoadOptions) -> Vec<String> {
        let mut out = Vec::new();
        if !self.mismatched.is_empty() {
            let list: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| {
                    let from = if m.file_name == m.name {
                        String::new()
                    } else {
                        format!(" (from `{}`)", m.file_name)
                    };
                    format!(
                        "`{}`{from}: file {:?}, model {:?}",
                        m.name, m.file_shape, m.model_shape
                    )
                })
                .collect();
            out.push(format!("shape mismatches: {}", list.join("; ")));
        }
        if !opts.strict {
            return out;
        }
        if !self.missing.is_empty() {
            out.push(format!(
                "missing (in the model, not in the file after renaming): {}",
                quoted(&self.missing)
            ));
        }
        if !self.unexpected.is_empty() {
            let list: Vec<String> = self
                .unexpected
                .iter()
                .map(|n| {
                    let to = opts.map_name(n);
                    if &to == n {
                        format!("`{n}`")
                    } else {
                        format!("`{n}` (as `{to}`)")
                    }
                })
                .collect();
            out.push(format!(
                "unexpected (in the file, not in the model): {}",
                list.join(", ")
            ));
        }
        out
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} loaded, {} missing, {} unexpected, {} skipped, {} shape mismatches",
            self.loaded.len(),
            self.missing.len(),
            self.unexpected.len(),
            self.skipped.len(),
            self.mismatched.len()
        )?;
        for (what, names) in [("missing", &self.missing), ("unexpected", &self.unexpected)] {
            if !names.is_empty() {
                write!(f, "; {what}: {}", names.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Reads the named tensors of a weights file (see the [module docs](self) for the
/// formats), on the CPU in their stored dtypes. The tensors of an `mtl` checkpoint's
/// groups (optimiser moments, method state: names with `::`) are left out.
pub fn read_weights(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.starts_with(b"PK\x03\x04") {
        // A zip archive: libtorch's (tch's `.ot`) or a `torch.save` pickle. Only
        // libtorch's loader can tell; what it cannot read is a pickle.
        return Tensor::load_multi(path).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            offset: 0,
            expected: "a safetensors file or a libtorch archive (tch's VarStore::save)".into(),
            found: format!(
                "a zip archive libtorch cannot read ({}); a PyTorch `torch.save` file is a \
                 Python pickle: convert it with `safetensors.torch.save_file(torch.load(\
                 \"{}\", map_location=\"cpu\"), \"weights.safetensors\")`",
                first_line(&e.to_string()),
                path.display()
            ),
        });
    }
    let not_safetensors = |why: String| Error::Format {
        path: path.to_path_buf(),
        offset: 0,
        expected: "a safetensors file (or a libtorch archive)".into(),
        found: format!(
            "{why}; a PyTorch `.pt`/`.pth` state dict converts with \
             `safetensors.torch.save_file(model.state_dict(), \"weights.safetensors\")`"
        ),
    };
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| not_safetensors(format!("no safetensors header ({e:?})")))?;
    let is_checkpoint = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format"))
        .is_some_and(|f| f == FORMAT);
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| not_safetensors(format!("malformed safetensors data ({e:?})")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if is_checkpoint && name.contains(GROUP_SEPARATOR) {
            continue;
        }
        let kind = Kind::try_from(view.dtype()).map_err(|_| Error::Format {
            path: path.to_path_buf(),
            offset: 0,
            expected: "a dtype libtorch has".into(),
            found: format!("tensor `{name}` of dtype {:?}", view.dtype()),
        })?;
        let size: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.push((name, Tensor::f_from_data_size(view.data(), &size, kind)?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Matches named tensors against the variables of `vs` without copying anything: the
/// report [`load_weights`] would act on, shape mismatches included. Two file names
/// renamed onto one variable are an [`Error::Config`].
pub fn plan_load(
    vs: &VarStore,
    tensors: &[(String, Tensor)],
    opts: &LoadOptions,
) -> Result<LoadReport> {
    opts.check()?;
    let vars = vs.variables();
    let mut report = LoadReport::default();
    // Model name → file name, to catch two file tensors landing on one variable.
    let mut targets: BTreeMap<String, &str> = BTreeMap::new();
    for (file_name, t) in tensors {
        if opts.skip.iter().any(|p| file_name.starts_with(p.as_str())) {
            report.skipped.push(file_name.clone());
            continue;
        }
        let name = opts.map_name(file_name);
        let Some(var) = vars.get(&name) else {
            report.unexpected.push(file_name.clone());
            continue;
        };
        if let Some(first) = targets.insert(name.clone(), file_name) {
            return Err(Error::config(format!(
                "`{first}` and `{file_name}` both load into `{name}` after renaming: \
                 change the renames or skip one"
            )));
        }
        if var.size() != t.size() {
            report.mismatched.push(ShapeMismatch {
                name,
                file_name: file_name.clone(),
                file_shape: t.size(),
                model_shape: var.size(),
            });
        } else {
            report.loaded.push(name);
        }
    }
    report.missing = vars
        .keys()
        .filter(|n| !targets.contains_key(*n))
        .cloned()
        .collect();
    for list in [
        &mut report.loaded,
        &mut report.missing,
        &mut report.unexpected,
        &mut report.skipped,
    ] {
        list.sort();
    }
    report.mismatched.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

/// Loads named tensors into the variables of `vs` as [`load_weights`] does a file;
/// `source` names them in errors.
pub fn load_tensors(
    vs: &VarStore,
    tensors: &[(String, Tensor)],
    opts: &LoadOptions,
    source: &Path,
) -> Result<LoadReport> {
    let report = plan_load(vs, tensors, opts)?;
    let problems = report.problems(opts);
    if !problems.is_empty() {
        return Err(Error::Checkpoint {
            path: source.to_path_buf(),
            message: format!(
                "does not fit the model{}: {}; nothing was loaded",
                if opts.strict { " (strict)" } else { "" },
                problems.join(". ")
            ),
        });
    }
    let vars = vs.variables();
    let by_model: HashMap<String, &Tensor> = tensors
        .iter()
        .filter(|(n, _)| !opts.skip.iter().any(|p| n.starts_with(p.as_str())))
        .map(|(n, t)| (opts.map_name(n), t))
        .collect();
    tch::no_grad(|| -> Result<()> {
        for name in &report.loaded {
            let (Some(var), Some(src)) = (vars.get(name), by_model.get(name)) else {
                continue;
            };
            // Into the variable's own storage (so an optimiser's flat buffer still
            // holds it), converted to its dtype and device.
            let src = src.f_to_kind(var.kind())?.f_to_device(var.device())?;
            var.shallow_clone().f_copy_(&src)?;
        }
        Ok(())
    })?;
    Ok(report)
}

/// Loads the weights file at `path` into the variables of `vs` by name:
/// `model.load_state_dict(renamed_state_dict, strict=opts.strict)`.
///
/// Each file name is renamed by the first matching [`LoadOptions::rename`] prefix and
/// loaded into the variable of that name, converted to its dtype and onto its device,
/// under `no_grad`. With [`LoadOptions::strict`] (the default) a variable the file
/// lacks or a file tensor the model lacks is an [`Error::Checkpoint`] naming each;
/// without it they are listed in the [`LoadReport`]. A shape mismatch is an
/// [`Error::Checkpoint`] in either mode, naming the tensor and both shapes. On any error
/// nothing has been copied. Formats: see the [module docs](self) (safetensors; PyTorch
/// `.pt` files convert with one line of Python).
///
/// ```
/// use mtl_core::checkpoint::save_weights;
/// use mtl_core::pretrained::{load_weights, LoadOptions};
/// use tch::{nn, Device, Kind, Tensor};
///
/// # fn main() -> mtl_core::Result<()> {
/// // A "pretrained" encoder saved under `encoder.`...
/// let src = nn::VarStore::new(Device::Cpu);
/// let w = src.root().sub("encoder").randn("weight", &[4, 3], 0.0, 1.0);
/// let _ = src.root().sub("classifier").zeros("weight", &[2, 4]);
/// let path = std::env::temp_dir().join(format!("mtl-doc-pre-{}.safetensors", std::process::id()));
/// save_weights(&src, &path)?;
///
/// // ...loads into a model whose trunk is called `trunk.` and that has its own head.
/// let dst = nn::VarStore::new(Device::Cpu);
/// let v = dst.root().sub("trunk").zeros("weight", &[4, 3]);
/// let _ = dst.root().sub("task0").zeros("weight", &[1, 4]);
/// let opts = LoadOptions::new()
///     .rename("encoder.", "trunk.")
///     .skip("classifier.")
///     .strict(false);
/// let report = load_weights(&dst, &path, &opts)?;
/// assert_eq!(report.loaded, ["trunk.weight"]);
/// assert_eq!(report.missing, ["task0.weight"]);
/// assert_eq!(report.skipped, ["classifier.weight"]);
/// assert!(v.equal(&w));
///
/// // Strict mode refuses the head the file does not have, and names it.
/// let err = load_weights(&dst, &path, &opts.clone().strict(true)).unwrap_err();
/// assert!(err.to_string().contains("`task0.weight`"), "{err}");
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn load_weights(
    vs: &VarStore,
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<LoadReport> {
    let path = path.as_ref();
    opts.check()?;
    let tensors = read_weights(path)?;
    load_tensors(vs, &tensors, opts, path)
}
