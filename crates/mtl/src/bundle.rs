//! A trained model saved for use elsewhere: a directory with `bundle.json` (the
//! [`ModelSpec`], the [`Preprocessing`], the method, the versions and the weights'
//! SHA-256) and `weights.safetensors` (every variable under its var-store name, so
//! PyTorch reads it as a state dict). [`Bundle::load`] rebuilds the model in a new
//! process with one call, ready to [`predict`](Bundle::predict). A text model's bundle
//! also holds its `tokenizer.json`, and `bundle.json` records the tokenizer's
//! vocabulary fingerprint and the encoding length ([`TextInput`]); see
//! [`TextPredictor`](crate::TextPredictor).

use crate::model::MultiTaskModel;
use crate::predict::{Preprocessing, TaskPrediction};
use crate::spec::ModelSpec;
use mtl_core::checkpoint::{save_weights, write_atomically};
use mtl_core::{Error, Result};
use mtl_data::text::TextTokenizer;
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tch::Device;

/// The `format` field of a bundle's `bundle.json`.
pub const BUNDLE_FORMAT: &str = "mtl-bundle";
/// The layout version this crate writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// The bundle's description, inside the bundle directory.
pub const MANIFEST_FILE: &str = "bundle.json";
/// The bundle's weights, inside the bundle directory.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
/// Where `mtl train` puts the bundle inside its output directory; [`Bundle::load`]
/// also accepts that output directory.
pub const RUN_BUNDLE_DIR: &str = "model";
/// A text model's tokenizer, inside the bundle directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// How a text model's bundle turns raw strings into token ids: its tokenizer file and
/// what that tokenizer must be, recorded in `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// The tokenizer's file name in the bundle directory ([`TOKENIZER_FILE`]).
    pub tokenizer: String,
    /// The tokenizer's [`vocab_fingerprint`](TextTokenizer::vocab_fingerprint): a
    /// tokenizer of another vocabulary is refused at load
    /// ([`Error::VocabularyMismatch`]).
    pub vocab_fingerprint: String,
    /// Tokens per encoded text, special tokens included (the model's input width).
    pub max_len: usize,
}

/// `bundle.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    /// The version of the `mtl` crate that wrote it.
    mtl_version: String,
    /// The registry name of the method the model was trained with.
    method: String,
    spec: ModelSpec,
    preprocessing: Preprocessing,
    weights: String,
    weights_sha256: String,
    /// Present for text models only, so other bundles stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<TextInput>,
}

/// A saved model, loaded: the model (with its spec and preprocessing), the method it
/// was trained with, and the version of `mtl` that saved it.
///
/// ```
/// use mtl::prelude::*;
/// use mtl::{Bundle, HeadSpec, ModelSpec, Preprocessing};
/// use mtl::data::{Standardizer, TaskData};
/// use ndarray::{array, Array2};
///
/// // Train a tiny model on standardised features...
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| (i * (j + 1)) as f32 / 10.0);
/// let y = x.column(0).mapv(|v| (v > 2.0) as i64);
/// let data = MultiTaskDataset::new(x.clone(), vec![TaskData::classes("big", y, 2)])?;
/// let scaler = Standardizer::fit(&data);
/// let spec = ModelSpec::hard_sharing(2, &[8], vec![HeadSpec::for_task(&data.tasks()[0], Default::default())]);
/// seed_everything(0);
/// let mut model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu)?;
/// Trainer::new(TrainerConfig::default().epochs(2).progress(false))?
///     .fit(&mut model, &scaler.apply(&data)?, None)?;
/// model.set_preprocessing(Preprocessing { features: Some(scaler), ..Default::default() })?;
///
/// // ...save it, load it as another process would, and predict the same.
/// let dir = std::env::temp_dir().join(format!("mtl-bundle-doc-{}", std::process::id()));
/// Bundle::save(&dir, &model, "ew")?;
/// let loaded = Bundle::load(&dir)?;
/// assert_eq!(loaded.method(), "ew");
/// assert_eq!(loaded.predict(x.view())?, model.predict(x.view())?);
/// std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mtl::core::Error>(())
/// ```
#[derive(Debug)]
pub struct Bundle {
    model: MultiTaskModel,
    method: String,
    mtl_version: String,
    text: Option<TextInput>,
    dir: PathBuf,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

impl Bundle {
    /// Saves `model` (built from a [`ModelSpec`], with its [`Preprocessing`]) and the
    /// name of the `method` it was trained with as a bundle in `dir`, created if
    /// needed. Both files are written atomically, the weights first, so a reader never
    /// sees a description without its weights. Returns the two files.
    ///
    /// Errors: [`Error::Config`] for a model without a spec (assembled by hand), or when
    /// `dir` holds a `bundle.json` that is not a bundle's (it is never overwritten);
    /// [`Error::Io`] when the files cannot be written.
    pub fn save(
        dir: impl AsRef<Path>,
        model: &MultiTaskModel,
        method: &str,
    ) -> Result<Vec<PathBuf>> {
        Self::save_with_text(dir.as_ref(), model, method, None)
    }

    /// [`Bundle::save`], with a text model's tokenizer and encoding length: the
    /// tokenizer is written as [`TOKENIZER_FILE`] after the weights and before
    /// `bundle.json`, which records its fingerprint.
    pub(crate) fn save_with_text(
        dir: &Path,
        model: &MultiTaskModel,
        method: &str,
        text: Option<(&TextTokenizer, usize)>,
    ) -> Result<Vec<PathBuf>> {
        let spec = model.spec().cloned().ok_or_else(|| {
            Error::config(
                "only a model built from a ModelSpec (MultiTaskModel::from_spec) can be saved \
                 as a bundle: a hand-assembled one has no description to rebuild it from",
            )
        })?;
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let manifest_path = dir.join(MANIFEST_FILE);
        if let Ok(existing) = std::fs::read(&manifest_path) {
            let ours = serde_json::from_slice::<serde_json::Value>(&existing)
                .ok()
                .is_some_and(|v| v.get("format").and_then(|f| f.as_str()) == Some(BUNDLE_FORMAT));
            if !ours {
                return Err(Error::config(format!(
                    "{} exists and is not an mtl bundle; not overwriting it",
                    manifest_path.display()
                )));
            }
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        save_weights(model.var_store(), &weights_path)?;
        let mut written = vec![manifest_path.clone(), weights_path.clone()];
        let text = match text {
            Some((tokenizer, max_len)) => {
                let path = dir.join(TOKENIZER_FILE);
                tokenizer.save(&path)?;
                written.push(path);
                Some(TextInput {
                    tokenizer: TOKENIZER_FILE.into(),
                    vocab_fingerprint: tokenizer.vocab_fingerprint(),
                    max_len,
                })
            }
            None => None,
        };
        let manifest = Manifest {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            mtl_version: env!("CARGO_PKG_VERSION").into(),
            method: method.to_string(),
            spec,
            preprocessing: model.preprocessing().clone(),
            weights: WEIGHTS_FILE.into(),
            weights_sha256: sha256_hex(&read(&weights_path)?),
            text,
        };
        let json = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::config(format!("bundle description is not serialisable: {e}")))?;
        write_atomically(&manifest_path, json.as_bytes())?;
        Ok(written)
    }

    /// Loads the bundle in `dir` on the CPU; `dir` may also be an output directory of
    /// `mtl train`, which holds the bundle in its `model/` folder.
    ///
    /// Errors: [`Error::Config`] when `dir` holds no bundle; [`Error::Parse`] for a
    /// `bundle.json` that is not valid (unknown fields included); [`Error::Checkpoint`]
    /// for another format or version, weights that do not match their SHA-256, or
    /// weights that do not fit the model (a missing, extra or differently shaped
    /// variable); [`Error::Io`] for unreadable files.
    pub fn load(dir: impl AsRef<Path>) -> Result<Bundle> {
        Self::load_on(dir, Device::Cpu)
    }

    /// [`Bundle::load`] with the model's weights on `device`.
    pub fn load_on(dir: impl AsRef<Path>, device: Device) -> Result<Bundle> {
        let dir = Self::locate(dir.as_ref())?;
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = read(&manifest_path)?;
        let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| Error::Parse {
            path: manifest_path.clone(),
            line: e.line() as u64,
            message: e.to_string(),
        })?;
        if manifest.format != BUNDLE_FORMAT || manifest.version != BUNDLE_VERSION {
            return Err(corrupt(
                &manifest_path,
                format!(
                    "format `{}` version {}, expected `{BUNDLE_FORMAT}` version {BUNDLE_VERSION}",
                    manifest.format, manifest.version
                ),
            ));
        }
        let weights_path = dir.join(&manifest.weights);
        let plain = |name: &str| Path::new(name).components().count() == 1;
        if !plain(&manifest.weights) {
            return Err(corrupt(
                &manifest_path,
                format!(
                    "weights file `{}` is not a plain file name",
                    manifest.weights
                ),
            ));
        }
        if let Some(t) = manifest.text.as_ref().filter(|t| !plain(&t.tokenizer)) {
            return Err(corrupt(
                &manifest_path,
                format!("tokenizer file `{}` is not a plain file name", t.tokenizer),
            ));
        }
        let bytes = read(&weights_path)?;
        if sha256_hex(&bytes) != manifest.weights_sha256 {
            return Err(corrupt(
                &weights_path,
                "the weights do not match the SHA-256 in bundle.json (corrupt or replaced file)",
            ));
        }
        let mut model = manifest.spec.build(device)?;
        load_weights(&mut model, &bytes, &weights_path)?;
        model.set_preprocessing(manifest.preprocessing)?;
        Ok(Bundle {
            model,
            method: manifest.method,
            mtl_version: manifest.mtl_version,
            text: manifest.text,
            dir,
        })
    }

    /// The bundle directory for `dir`: itself when it holds `bundle.json`, else its
    /// `model/` folder (an `mtl train` output directory).
    fn locate(dir: &Path) -> Result<PathBuf> {
        if dir.join(MANIFEST_FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
        let nested = dir.join(RUN_BUNDLE_DIR);
        if nested.join(MANIFEST_FILE).is_file() {
            return Ok(nested);
        }
        Err(Error::config(format!(
            "no model bundle in {}: neither {MANIFEST_FILE} nor {RUN_BUNDLE_DIR}/{MANIFEST_FILE} \
             is there",
            dir.display()
        )))
    }

    /// The model, ready to predict.
    pub fn model(&self) -> &MultiTaskModel {
        &self.model
    }

    /// The model, to keep training it or to change its device.
    pub fn into_model(self) -> MultiTaskModel {
        self.model
    }

    /// The registry name of the method the model was trained with.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The version of `mtl` that saved the bundle.
    pub fn mtl_version(&self) -> &str {
        &self.mtl_version
    }

    /// How a text model's raw strings become token ids; `None` for other models.
    pub fn text_input(&self) -> Option<&TextInput> {
        self.text.as_ref()
    }

    /// The bundle's directory (an `mtl train` output directory's `model/` folder when
    /// that was given).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// [`MultiTaskModel::predict`] with the bundle's model.
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Result<Vec<TaskPrediction>> {
        self.model.predict(x)
    }

    /// Predicts the rows of a CSV file, reading the feature columns the model was
    /// trained on by name (other columns, targets included, are ignored) and encoding
    /// them as in training (the bundle's [`TableEncoder`](mtl_data::TableEncoder):
    /// categories one-hot or as embedding ids, a category never seen in training as
    /// unknown).
    ///
    /// Errors: [`Error::Config`] when the bundle does not record its feature columns'
    /// names (a model trained from arrays); the errors of
    /// [`TableEncoder::read_csv`](mtl_data::TableEncoder::read_csv) (text in a column
    /// numeric in training, naming the column, line and text) or
    /// [`read_csv_features`](mtl_data::read_csv_features) for the file.
    pub fn predict_csv(&self, path: impl AsRef<Path>) -> Result<Vec<TaskPrediction>> {
        self.predict_csv_with_header(path, None)
    }

    /// [`Bundle::predict_csv`] with `header` replacing the file's header line.
    pub fn predict_csv_with_header(
        &self,
        path: impl AsRef<Path>,
        header: Option<&[String]>,
    ) -> Result<Vec<TaskPrediction>> {
        let x = self.read_features_csv(path, header)?;
        self.predict(x.view())
    }

    /// The feature columns of a CSV file as the model was trained on them, by name and
    /// encoded as in training (see [`Bundle::predict_csv`]), before the feature
    /// standardisation that [`MultiTaskModel::predict`] applies; `header` replaces the
    /// file's header line.
    ///
    /// Errors: those of [`Bundle::predict_csv`].
    pub fn read_features_csv(
        &self,
        path: impl AsRef<Path>,
        header: Option<&[String]>,
    ) -> Result<ndarray::Array2<f32>> {
        if let Some(table) = &self.model.preprocessing().table {
            return table.read_csv(path, header);
        }
        let names = self
            .model
            .preprocessing()
            .feature_names
            .as_ref()
            .ok_or_else(|| {
                Error::config(
                    "this bundle does not record the names of its feature columns, so it cannot \
                 read them from a CSV file; predict on an array instead",
                )
            })?;
        mtl_data::read_csv_features(path, names, header)
    }
}

/// Copies the weights in safetensors `bytes` into `model`, which must have exactly these
/// variables with these shapes.
fn load_weights(model: &mut MultiTaskModel, bytes: &[u8], path: &Path) -> Result<()> {
    let saved = mtl_data::parse_safetensors(bytes)?.into_vec();
    let vars = model.var_store().variables();
    let saved_names: BTreeSet<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(missing) = vars.keys().find(|n| !saved_names.contains(n.as_str())) {
        return Err(corrupt(
            path,
            format!("no weights for variable `{missing}`"),
        ));
    }
    for (name, array) in &saved {
        let var = vars
            .get(name)
            .ok_or_else(|| corrupt(path, format!("`{name}` is not a variable of the model")))?;
        let shape: Vec<i64> = array.shape().iter().map(|&d| d as i64).collect();
        if shape != var.size() || array.dtype().kind() != var.kind() {
            return Err(corrupt(
                path,
                format!(
                    "`{name}` is {:?} {shape:?}; the model's is {:?} {:?}",
                    array.dtype().kind(),
                    var.kind(),
                    var.size()
                ),
            ));
        }
    }
    let weights: Vec<(String, tch::Tensor)> = saved
        .into_iter()
        .map(|(n, a)| (n, a.into_tensor()))
        .collect();
    model.restore(&weights)
}
