//! `[data] npz = ...` or `safetensors = ...`: a file of named arrays, one of features and
//! one per task target (plus optional masks), read into a [`TensorDataset`].
//!
//! Everything a head or the architecture will need of its arrays is checked here, before
//! any training, with an [`Error::Input`] naming the file, the array and the task: a
//! missing array, a row count that differs from the features', a dtype or shape the
//! head cannot take, a class label outside `[0, classes)` that is not the ignore index
//! (with its row and pixel or token), images whose channel count or size does not fit
//! the model.

use crate::config::{ArchKind, ClassesConfig, InputKind, RunConfig, TargetKindConfig};
use mtl::core::{Error, Result};
use mtl::data::{
    image_folder_arrays, read_npz, read_safetensors, ImageFolder, NamedArrays, TensorDataset,
    TensorTask,
};
use mtl::heads::DEFAULT_IGNORE_INDEX;
use mtl::{ArchSpec, HeadSpec, ModelSpec};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// A file's arrays as a dataset, with the model they call for.
#[derive(Debug)]
pub struct TensorInput {
    /// Features and one task per target, in the config's order.
    pub data: TensorDataset,
    /// The model: the config's architecture over the features' shape, one head per
    /// target of the kind and size its array calls for.
    pub spec: ModelSpec,
}

/// Reads the arrays of the file the config names, checks them and builds the dataset
/// and the model spec.
pub fn load(cfg: &RunConfig, path: &Path, input: InputKind) -> Result<TensorInput> {
    let arrays = match input {
        InputKind::Npz => read_npz(path)?,
        InputKind::Safetensors => read_safetensors(path)?,
        InputKind::ImageFolder => {
            let mut folder = ImageFolder::new(path);
            if let Some(masks) = &cfg.data.masks {
                let beside = path.parent().unwrap_or(Path::new("."));
                folder = folder.with_masks(beside.join(masks), "segment");
            }
            image_folder_arrays(&folder)?
        }
        InputKind::Csv => {
            return Err(Error::config(
                "a CSV file is read as a table, not as arrays",
            ))
        }
    };
    let mut file = ArrayFile {
        path: path.to_path_buf(),
        arrays,
        taken: HashMap::new(),
    };
    let features_name = match (&cfg.data.features, input) {
        (Some(crate::config::FeaturesConfig::Array(a)), _) => a.clone(),
        // An image folder's features are its images.
        (None, InputKind::ImageFolder) => "image".to_string(),
        _ => return Err(Error::config("data.features must name the features' array")),
    };
    let features = file.fetch(&features_name, None)?;
    let features = features_to_float(&file.path, &features_name, features)?;
    let shape = features.size();
    let n = shape[0];
    let rows = |t: &Tensor, array: &str, task: &str| -> Result<()> {
        let got = t.size().first().copied().unwrap_or(0);
        if got != n {
            return Err(file_error(
                path,
                array,
                Some(task),
                format!(
                    "has {got} rows ({:?}); the features `{features_name}` have {n}",
                    t.size()
                ),
            ));
        }
        Ok(())
    };
    let arch = cfg.model.arch;
    // The layout the architecture reads: images for the conv net, rows (or, for
    // sequence targets, tokens of rows) for the MLP architectures.
    if arch == ArchKind::ConvNet {
        check_images(cfg, path, &features_name, &shape)?;
    }
    let mut tasks = Vec::with_capacity(cfg.data.targets.len());
    let mut heads = Vec::with_capacity(cfg.data.targets.len());
    for t in &cfg.data.targets {
        let array = t.source().to_string();
        let name = t.task_name();
        let task = name.as_str();
        let fail = |message: String| file_error(path, &array, Some(task), message);
        check_kind_fits_arch(t.kind, arch, &shape).map_err(fail)?;
        let raw = file.fetch(&array, Some(task))?;
        rows(&raw, &array, task)?;
        let values = target_values(t.kind, raw).map_err(fail)?;
        check_target_shape(t.kind, &values, &shape).map_err(fail)?;
        let mask = match &t.mask {
            None => None,
            Some(m) => {
                let mask = file.fetch(m, Some(task))?;
                rows(&mask, m, task)?;
                let mask = to_mask(mask).map_err(|e| file_error(path, m, Some(task), e))?;
                let (ms, vs) = (mask.size(), values.size());
                if ms != [n] && ms != vs {
                    return Err(file_error(
                        path,
                        m,
                        Some(task),
                        format!(
                            "a mask has shape [{n}] (rows) or the target's {vs:?} (elements), \
                             got {ms:?}"
                        ),
                    ));
                }
                Some(mask)
            }
        };
        if values.is_floating_point() {
            check_finite(&values, mask.as_ref()).map_err(fail)?;
        }
        let ignore = t.ignore_index.unwrap_or(DEFAULT_IGNORE_INDEX);
        let head = match t.kind {
            TargetKindConfig::Classes
            | TargetKindConfig::Segmentation
            | TargetKindConfig::Sequence => {
                let skipped = (t.kind != TargetKindConfig::Classes).then_some(ignore);
                let declared = match t.classes {
                    Some(ClassesConfig::Count(c)) => Some(c),
                    _ => None,
                };
                let classes = check_labels(&values, mask.as_ref(), declared, skipped, t.kind)
                    .map_err(fail)?;
                match t.kind {
                    TargetKindConfig::Classes => HeadSpec::Classification {
                        name: name.clone(),
                        classes,
                    },
                    TargetKindConfig::Segmentation => HeadSpec::Segmentation {
                        name: name.clone(),
                        classes,
                        ignore_index: ignore,
                    },
                    _ => HeadSpec::Sequence {
                        name: name.clone(),
                        classes,
                        padding_label: Some(ignore),
                    },
                }
            }
            TargetKindConfig::Binary | TargetKindConfig::Multilabel => {
                check_unit_interval(&values, mask.as_ref()).map_err(fail)?;
                if t.kind == TargetKindConfig::Binary {
                    HeadSpec::Binary { name: name.clone() }
                } else {
                    HeadSpec::MultiLabel {
                        name: name.clone(),
                        labels: values.size()[1],
                    }
                }
            }
            TargetKindConfig::Regression => HeadSpec::Regression {
                name: name.clone(),
                outputs: values.size()[1],
                loss: t.loss.unwrap_or_default(),
            },
            TargetKindConfig::Depth => HeadSpec::Depth { name: name.clone() },
            TargetKindConfig::Normals => HeadSpec::Normals { name: name.clone() },
        };
        heads.push(head);
        tasks.push(match mask {
            Some(m) => TensorTask::masked(name, values, m),
            None => TensorTask::new(name, values),
        });
    }
    let spec = ModelSpec {
        architecture: architecture(cfg, &shape),
        heads,
        input: None,
    };
    let data = TensorDataset::new(features, tasks)
        .map_err(|e| file_error(path, &features_name, None, e.to_string()))?;
    Ok(TensorInput { data, spec })
}

/// The architecture the config asks for over features of `shape` (`[N, ...]`).
fn architecture(cfg: &RunConfig, shape: &[i64]) -> ArchSpec {
    let m = &cfg.model;
    if m.arch == ArchKind::ConvNet {
        return ArchSpec::ConvNet {
            config: m.conv_net(shape[1]),
            decoders: m.decoders.unwrap_or_default(),
        };
    }
    // The MLP architectures read the last dimension (a row's features, or a token's).
    let inputs = shape.last().copied().unwrap_or(0);
    crate::run::mlp_arch(cfg, inputs, cfg.data.targets.len())
}

/// The arrays of one file, each taken once and shared by every task that names it.
struct ArrayFile {
    path: PathBuf,
    arrays: NamedArrays,
    taken: HashMap<String, Tensor>,
}

impl ArrayFile {
    fn fetch(&mut self, name: &str, task: Option<&str>) -> Result<Tensor> {
        if let Some(t) = self.taken.get(name) {
            return Ok(t.shallow_clone());
        }
        let array = self.arrays.take(name).map_err(|_| {
            let mut known: Vec<&str> = self.arrays.names();
            known.extend(self.taken.keys().map(String::as_str));
            file_error(
                &self.path,
                name,
                task,
                format!("no such array; the file holds {}", known.join(", ")),
            )
        })?;
        // Zero-copy: the array's storage becomes the tensor's.
        let t = array.into_tensor();
        self.taken.insert(name.to_string(), t.shallow_clone());
        Ok(t)
    }
}

fn file_error(path: &Path, array: &str, task: Option<&str>, message: impl Into<String>) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        array: array.to_string(),
        task: task.map(str::to_string),
        message: message.into(),
    }
}

fn is_integer(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Uint8 | Kind::Int8 | Kind::Int16 | Kind::Int | Kind::Int64
    )
}

fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    )
}

fn dtype_name(kind: Kind) -> String {
    format!("{kind:?}").to_lowercase()
}

/// Features as `f32`: floats converted, `uint8` images scaled to `[0, 1]` as
/// torchvision's `ToTensor` does; other integers refused (no architecture here embeds
/// token ids).
fn features_to_float(path: &Path, name: &str, x: Tensor) -> Result<Tensor> {
    let fail = |m: String| file_error(path, name, None, m);
    if x.dim() < 2 {
        return Err(fail(format!(
            "features need a row dimension and at least one more ([N, d] rows, [N, C, H, W] \
             images), got shape {:?}",
            x.size()
        )));
    }
    match x.kind() {
        k if is_float(k) => Ok(x.f_to_kind(Kind::Float)?),
        Kind::Uint8 => Ok(x.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?),
        k => Err(fail(format!(
            "features of dtype {} cannot feed the model: give floating-point values (or \
             uint8 images, scaled to [0, 1])",
            dtype_name(k)
        ))),
    }
}

/// Images for the conv net: `[N, C, H, W]`, `C` as `model.in_channels` says when
/// given, `H` and `W` multiples of the encoder's downsampling factor.
fn check_images(cfg: &RunConfig, path: &Path, name: &str, shape: &[i64]) -> Result<()> {
    let fail = |m: String| Err(file_error(path, name, None, m));
    if shape.len() != 4 {
        return fail(format!(
            "arch = \"conv_net\" reads images [N, C, H, W], got shape {shape:?}"
        ));
    }
    if let Some(c) = cfg.model.in_channels.filter(|&c| c != shape[1]) {
        return fail(format!(
            "images have {} channels ({shape:?}); the model is built for model.in_channels = {c}",
            shape[1]
        ));
    }
    let factor = cfg.model.conv_net(shape[1]).downsampling_factor()?;
    if shape[2] % factor != 0 || shape[3] % factor != 0 {
        return fail(format!(
            "images of {}×{} pixels: the conv net downsamples by {factor}, so height and \
             width must be multiples of {factor} (fewer strided stages: raise \
             model.dilated_stages)",
            shape[2], shape[3]
        ));
    }
    Ok(())
}

/// Which targets an architecture's features can feed: maps (segmentation, depth,
/// normals) need the conv net's feature maps; rows and tokens an MLP's features.
fn check_kind_fits_arch(
    kind: TargetKindConfig,
    arch: ArchKind,
    features: &[i64],
) -> std::result::Result<(), String> {
    let kname = kind.name();
    if arch == ArchKind::ConvNet {
        if !kind.is_dense() {
            return Err(format!(
                "a {kname} head reads one feature vector per row, but arch = \"conv_net\" \
                 gives feature maps; it takes segmentation, depth and normals targets"
            ));
        }
        return Ok(());
    }
    if kind.is_dense() {
        return Err(format!(
            "a {kname} head reads feature maps: use [model] arch = \"conv_net\" (arch = \"{}\" \
             gives one vector per row)",
            arch.name()
        ));
    }
    let rank = features.len();
    match kind {
        TargetKindConfig::Sequence if arch != ArchKind::HardSharing || rank != 3 => Err(format!(
            "a sequence head reads one feature vector per token: arch = \"hard_sharing\" over \
             features [N, T, d] (got arch = \"{}\", features {features:?})",
            arch.name()
        )),
        TargetKindConfig::Sequence => Ok(()),
        _ if rank != 2 => Err(format!(
            "a {kname} head over arch = \"{}\" needs features [N, d], got {features:?}",
            arch.name()
        )),
        _ => Ok(()),
    }
}

/// The target in the dtype its head trains on: integer labels as `int64`, real values
/// and 0/1 labels as `float32`; regression rows `[N]` become `[N, 1]`.
fn target_values(kind: TargetKindConfig, raw: Tensor) -> std::result::Result<Tensor, String> {
    let k = raw.kind();
    let name = kind.name();
    let bad = |wants: &str| {
        Err(format!(
            "{} values; a {name} head takes {wants}",
            dtype_name(k)
        ))
    };
    let tch = |e: tch::TchError| e.to_string();
    match kind {
        TargetKindConfig::Classes | TargetKindConfig::Segmentation | TargetKindConfig::Sequence => {
            if !is_integer(k) {
                return bad("integer class labels (int64, int32, uint8...)");
            }
            raw.f_to_kind(Kind::Int64).map_err(tch)
        }
        TargetKindConfig::Binary | TargetKindConfig::Multilabel => {
            if !(is_integer(k) || is_float(k) || k == Kind::Bool) {
                return bad("0/1 labels (bool, integers or floats)");
            }
            raw.f_to_kind(Kind::Float).map_err(tch)
        }
        TargetKindConfig::Regression | TargetKindConfig::Depth | TargetKindConfig::Normals => {
            if !is_float(k) {
                return bad("floating-point values");
            }
            let v = raw.f_to_kind(Kind::Float).map_err(tch)?;
            if kind == TargetKindConfig::Regression && v.dim() == 1 {
                return v.f_unsqueeze(1).map_err(tch);
            }
            Ok(v)
        }
    }
}

/// The target's shape against what its head reads from features of `features`' shape.
fn check_target_shape(
    kind: TargetKindConfig,
    values: &Tensor,
    features: &[i64],
) -> std::result::Result<(), String> {
    let s = values.size();
    let n = s[0];
    let (expected, ok) = match kind {
        TargetKindConfig::Classes | TargetKindConfig::Binary => (format!("[{n}]"), s.len() == 1),
        TargetKindConfig::Regression => (format!("[{n}] or [{n}, d]"), s.len() == 2),
        TargetKindConfig::Multilabel => (format!("[{n}, labels]"), s.len() == 2),
        TargetKindConfig::Sequence => (
            format!("[{n}, {}] (a tag per token)", features[1]),
            s == [n, features[1]],
        ),
        TargetKindConfig::Segmentation => {
            let (h, w) = (features[2], features[3]);
            (
                format!("[{n}, {h}, {w}] (the images' size)"),
                s == [n, h, w],
            )
        }
        TargetKindConfig::Depth => {
            let (h, w) = (features[2], features[3]);
            (
                format!("[{n}, {h}, {w}] or [{n}, 1, {h}, {w}]"),
                s == [n, h, w] || s == [n, 1, h, w],
            )
        }
        TargetKindConfig::Normals => {
            let (h, w) = (features[2], features[3]);
            (format!("[{n}, 3, {h}, {w}]"), s == [n, 3, h, w])
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {} target has shape {expected}, got {s:?}",
            kind.name()
        ))
    }
}

/// A mask as `Bool`: bool arrays as they are, integer 0/1 arrays converted.
fn to_mask(m: Tensor) -> std::result::Result<Tensor, String> {
    let tch = |e: tch::TchError| e.to_string();
    match m.kind() {
        Kind::Bool => Ok(m),
        k if is_integer(k) => {
            let outside = m
                .f_ne(0)
                .map_err(tch)?
                .f_logical_and(&m.f_ne(1).map_err(tch)?)
                .map_err(tch)?;
            if outside.f_any().map_err(tch)?.int64_value(&[]) != 0 {
                return Err("a mask holds booleans or 0/1, found other values".into());
            }
            m.f_ne(0).map_err(tch)
        }
        k => Err(format!(
            "a mask holds booleans (or 0/1 integers), got {}",
            dtype_name(k)
        )),
    }
}

/// Where a flat element index falls: the row and, for per-element targets, the
/// position within the row, as the message words it.
fn locate(shape: &[i64], flat: i64, kind: TargetKindConfig) -> String {
    let mut idx = vec![0i64; shape.len()];
    let mut rest = flat;
    for d in (0..shape.len()).rev() {
        idx[d] = rest % shape[d].max(1);
        rest /= shape[d].max(1);
    }
    match (kind, idx.as_slice()) {
        (TargetKindConfig::Segmentation, [r, y, x]) => format!("row {r}, pixel (y {y}, x {x})"),
        (TargetKindConfig::Sequence, [r, t]) => format!("row {r}, token {t}"),
        (_, [r]) => format!("row {r}"),
        (_, [r, rest @ ..]) => format!("row {r}, element {rest:?}"),
        _ => format!("element {flat}"),
    }
}

/// The labelled elements: all, or those the mask (per row or per element) marks.
fn labelled(values: &Tensor, mask: Option<&Tensor>) -> std::result::Result<Tensor, String> {
    let tch = |e: tch::TchError| e.to_string();
    let all = values
        .f_ones_like()
        .map_err(tch)?
        .f_to_kind(Kind::Bool)
        .map_err(tch)?;
    match mask {
        None => Ok(all),
        Some(m) if m.size() == values.size() => Ok(m.shallow_clone()),
        Some(m) => {
            // A row mask: broadcast over the row's elements.
            let mut shape = vec![values.size()[0]];
            shape.extend(std::iter::repeat_n(1, values.dim() - 1));
            all.f_logical_and(&m.f_reshape(shape.as_slice()).map_err(tch)?)
                .map_err(tch)
        }
    }
}

/// Checks class labels against `[0, classes)` (besides `ignore`) on the labelled
/// elements and returns the class count: `declared`, else the largest label plus one.
fn check_labels(
    values: &Tensor,
    mask: Option<&Tensor>,
    declared: Option<i64>,
    ignore: Option<i64>,
    kind: TargetKindConfig,
) -> std::result::Result<i64, String> {
    let tch = |e: tch::TchError| e.to_string();
    let mut keep = labelled(values, mask)?;
    if let Some(i) = ignore {
        keep = keep
            .f_logical_and(&values.f_ne(i).map_err(tch)?)
            .map_err(tch)?;
    }
    let flat = values.f_flatten(0, -1).map_err(tch)?;
    let keep = keep.f_flatten(0, -1).map_err(tch)?;
    let negative = flat
        .f_lt(0)
        .map_err(tch)?
        .f_logical_and(&keep)
        .map_err(tch)?;
    let found = |bad: &Tensor| -> std::result::Result<Option<(i64, i64)>, String> {
        let hits = bad.f_nonzero().map_err(tch)?;
        if hits.size()[0] == 0 {
            return Ok(None);
        }
        let at = hits.int64_value(&[0, 0]);
        Ok(Some((at, flat.int64_value(&[at]))))
    };
    let ignore_text = ignore
        .map(|i| format!(" and not the ignore index {i}"))
        .unwrap_or_default();
    let classes = match declared {
        Some(c) => c,
        None => {
            if let Some((at, v)) = found(&negative)? {
                return Err(format!(
                    "label {v} at {} is negative{ignore_text}",
                    locate(&values.size(), at, kind)
                ));
            }
            let labels = flat.f_masked_select(&keep).map_err(tch)?;
            if labels.numel() == 0 {
                return Err(
                    "no labelled element: the class count cannot be read from the \
                            labels; set classes"
                        .into(),
                );
            }
            (labels.max().int64_value(&[]) + 1).max(2)
        }
    };
    let outside = flat
        .f_ge(classes)
        .map_err(tch)?
        .f_logical_or(&flat.f_lt(0).map_err(tch)?)
        .map_err(tch)?
        .f_logical_and(&keep)
        .map_err(tch)?;
    if let Some((at, v)) = found(&outside)? {
        return Err(format!(
            "label {v} at {} is outside [0, {classes}){ignore_text}",
            locate(&values.size(), at, kind)
        ));
    }
    Ok(classes)
}

/// 0/1 labels (soft labels in `[0, 1]` allowed) on the labelled elements.
fn check_unit_interval(values: &Tensor, mask: Option<&Tensor>) -> std::result::Result<(), String> {
    let tch = |e: tch::TchError| e.to_string();
    let keep = labelled(values, mask)?.f_flatten(0, -1).map_err(tch)?;
    let flat = values.f_flatten(0, -1).map_err(tch)?;
    let outside = flat
        .f_lt(0.0)
        .map_err(tch)?
        .f_logical_or(&flat.f_gt(1.0).map_err(tch)?)
        .map_err(tch)?
        .f_logical_or(&flat.f_isnan().map_err(tch)?)
        .map_err(tch)?
        .f_logical_and(&keep)
        .map_err(tch)?
        .f_nonzero()
        .map_err(tch)?;
    if outside.size()[0] > 0 {
        let at = outside.int64_value(&[0, 0]);
        return Err(format!(
            "label {} at {} is not in [0, 1]",
            flat.double_value(&[at]),
            locate(&values.size(), at, TargetKindConfig::Multilabel)
        ));
    }
    Ok(())
}

/// No NaN or Inf among the labelled values (a head would turn it into a NaN loss).
fn check_finite(values: &Tensor, mask: Option<&Tensor>) -> std::result::Result<(), String> {
    let tch = |e: tch::TchError| e.to_string();
    let keep = labelled(values, mask)?.f_flatten(0, -1).map_err(tch)?;
    let flat = values.f_flatten(0, -1).map_err(tch)?;
    let bad = flat
        .f_isfinite()
        .map_err(tch)?
        .f_logical_not()
        .map_err(tch)?
        .f_logical_and(&keep)
        .map_err(tch)?
        .f_nonzero()
        .map_err(tch)?;
    if bad.size()[0] > 0 {
        let at = bad.int64_value(&[0, 0]);
        return Err(format!(
            "{} at {}: mask it out or fill it",
            flat.double_value(&[at]),
            locate(&values.size(), at, TargetKindConfig::Regression)
        ));
    }
    Ok(())
}
