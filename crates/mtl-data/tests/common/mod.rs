//! Helpers shared by the mtl-data test files.
#![allow(dead_code)] // each test binary uses part of it

use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The committed slices of the real data sets (`tests/data`, see its README), so these
/// tests need neither network nor `../shared/data`.
pub fn slices(name: &str) -> mtl_core::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    if root.join(name).is_dir() {
        Ok(root)
    } else {
        Err(mtl_core::Error::config(format!("no test slice `{name}`")))
    }
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
