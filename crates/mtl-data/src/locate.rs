//! Where the data sets live: an explicit directory, the repository's `data/`, the
//! shared `../shared/data` beside the repository, or the cache `cargo xtask data` fills.

use mtl_core::{Error, Result};
use std::path::{Path, PathBuf};

/// The directory holding the shipped data sets: `$MTL_DATA_DIR` when set, else the
/// first that exists of the repository's `data/`, `../shared/data` beside the
/// repository and the download cache ([`cache_data_dir`]); the repository's `data/`
/// when none does.
///
/// Not every data set is in every place (the repository ships only the small ones): to
/// find one by name use [`data_root`].
pub fn data_dir() -> PathBuf {
    if let Some(dir) = env_data_dir() {
        return dir;
    }
    let candidates = candidates();
    candidates
        .iter()
        .find(|d| d.is_dir())
        .unwrap_or(&candidates[0])
        .clone()
}

/// The first directory, of `$MTL_DATA_DIR`, the repository's `data/`,
/// `../shared/data` and [`cache_data_dir`], that holds the data set `name` (a folder
/// such as `mnist`, `census-income-kdd`, `sklearn-bundled` or `olive-oil`). The loaders
/// take this directory (the parent of the data set's folder).
///
/// Errors: [`Error::Config`] naming every place searched and the command that
/// downloads the data set.
///
/// ```
/// let root = mtl_data::data_root("olive-oil")?;
/// assert!(root.join("olive-oil").join("olive.csv").is_file());
/// assert!(mtl_data::data_root("no-such-set").is_err());
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn data_root(name: &str) -> Result<PathBuf> {
    let mut searched = Vec::new();
    for dir in env_data_dir().into_iter().chain(candidates()) {
        if dir.join(name).is_dir() {
            return Ok(dir);
        }
        searched.push(dir.display().to_string());
    }
    Err(Error::config(format!(
        "data set `{name}` not found in any of {}; run `cargo xtask data {name}` to \
         download it into the cache, or set MTL_DATA_DIR to a directory holding `{name}/`",
        searched.join(", ")
    )))
}

/// Where `cargo xtask data` unpacks the data sets: `$MTL_CACHE_DIR/data`, else
/// `~/.cache/mtl/data`.
pub fn cache_data_dir() -> PathBuf {
    let cache = match std::env::var_os("MTL_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".cache")
            .join("mtl"),
    };
    cache.join("data")
}

fn env_data_dir() -> Option<PathBuf> {
    std::env::var_os("MTL_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

fn candidates() -> Vec<PathBuf> {
    // The crate lives at <repo>/crates/mtl-data.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = manifest.ancestors().nth(2).unwrap_or(manifest);
    vec![
        repo.join("data"),
        repo.join("../shared/data"),
        cache_data_dir(),
    ]
}
