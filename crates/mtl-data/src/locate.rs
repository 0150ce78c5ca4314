//! Where the data sets live, decided at run time: the directories in `$MTL_DATA_DIR`,
//! the current directory's `data/`, then the cache `cargo xtask data` fills.
//!
//! Nothing here is fixed when the crate is compiled: a binary built from this crate and
//! copied elsewhere looks in the same places as one run from its source tree, and a
//! crate that depends on `mtl-data` never looks inside the checkout it was built from.

use mtl_core::{Error, Result};
use std::path::PathBuf;

/// The directory holding the data sets: the first directory listed in `$MTL_DATA_DIR`
/// when it is set, else the first that exists of `./data` (under the current
/// directory) and the download cache ([`cache_data_dir`]); `./data` when neither does.
///
/// `$MTL_DATA_DIR` holds one directory or several separated as in `PATH` (`:` on Unix);
/// an empty value counts as unset. This workspace's `.cargo/config.toml` sets it to the
/// repository's `data/` for everything cargo runs, since tests run in their crate's
/// directory.
///
/// Not every data set is in every place (the repository ships only the small ones): to
/// find one by name use [`data_root`].
pub fn data_dir() -> PathBuf {
    if let Some(first) = env_data_dirs().into_iter().next() {
        return first;
    }
    let local = local_data_dir();
    if local.is_dir() {
        return local;
    }
    let cache = cache_data_dir();
    if cache.is_dir() {
        cache
    } else {
        local
    }
}

/// The first directory that holds the data set `name` (a folder such as `mnist`,
/// `census-income-kdd`, `sklearn-bundled` or `olive-oil`) among, in order, those listed
/// in `$MTL_DATA_DIR`, `./data` under the current directory, and [`cache_data_dir`].
/// The loaders take this directory (the parent of the data set's folder).
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
    for dir in search_path() {
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

/// Every directory [`data_root`] searches, in order.
fn search_path() -> Vec<PathBuf> {
    let mut dirs = env_data_dirs();
    dirs.push(local_data_dir());
    dirs.push(cache_data_dir());
    dirs
}

fn env_data_dirs() -> Vec<PathBuf> {
    match std::env::var_os("MTL_DATA_DIR").filter(|d| !d.is_empty()) {
        Some(list) => std::env::split_paths(&list)
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
        None => Vec::new(),
    }
}

/// `data/` under the current directory (absolute, so the answer does not change meaning
/// if the process later changes directory).
fn local_data_dir() -> PathBuf {
    std::env::current_dir()
        .unwrap_or_else(|_| PathBuf::from("."))
        .join("data")
}
