//! NumPy's `.npz` archives: a zip file of `.npy` members, stored (`np.savez`) or
//! deflated (`np.savez_compressed`); [`write_npz`] writes the former.

use crate::named::NamedArrays;
use crate::npy;
use crate::source::Source;
use mtl_core::{Error, Result};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Reads every member of an `.npz` archive, named without the `.npy` suffix, in archive
/// order. Each member's payload is read (inflated, for compressed archives) straight
/// into its array's tensor; see [`read_npy`](crate::read_npy) for the copies a member
/// may still need.
///
/// Errors: [`Error::Io`] for a missing or unreadable file; [`Error::Format`] for a file
/// that is not a zip archive (offset 0), a member that is not `.npy` data (the path is
/// `archive/member`, the offset within the member), or a corrupt member.
///
/// ```
/// use mtl_data::{encode_npy, parse_npz, DenseArray};
/// use std::io::Write;
/// let a = DenseArray::from_array(&ndarray::array![1.0f32, 2.0].into_dyn())?;
/// let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
/// zip.start_file("x.npy", zip::write::FileOptions::default()).unwrap();
/// zip.write_all(&encode_npy(&a)?).unwrap();
/// let bytes = zip.finish().unwrap().into_inner();
/// let arrays = parse_npz(&bytes)?;
/// assert_eq!(arrays.names(), ["x"]);
/// assert_eq!(arrays.get("x")?.view::<f32>()?.iter().copied().collect::<Vec<_>>(), [1.0, 2.0]);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_npz(path: impl AsRef<Path>) -> Result<NamedArrays> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_archive(std::io::BufReader::new(file), path)
}

/// Parses an `.npz` archive held in memory, as [`read_npz`] does a file; errors name
/// the path `<memory>`.
pub fn parse_npz(bytes: &[u8]) -> Result<NamedArrays> {
    read_archive(std::io::Cursor::new(bytes), Path::new("<memory>"))
}

/// Writes `arrays` as an `.npz` archive, as `np.savez(path, name=array, ...)` does:
/// one stored (uncompressed) `name.npy` member per array, in order. The archive is
/// written to a temporary beside `path` and renamed into place, so a reader never sees
/// half a file.
///
/// Errors: [`Error::Config`] for two arrays of one name or a name that is not a plain
/// file name; [`Error::Io`] when the file cannot be written.
///
/// ```
/// use mtl_data::{read_npz, write_npz, DenseArray};
/// let x = DenseArray::from_array(&ndarray::array![[1.0f32, 2.0]].into_dyn())?;
/// let y = DenseArray::from_array(&ndarray::array![3i64].into_dyn())?;
/// let path = std::env::temp_dir().join(format!("mtl-npz-doc-{}.npz", std::process::id()));
/// write_npz(&path, &[("x", &x), ("y", &y)])?;
/// let back = read_npz(&path)?;
/// assert_eq!(back.names(), ["x", "y"]);
/// assert_eq!(back.get("y")?.view::<i64>()?[[0]], 3);
/// std::fs::remove_file(&path).unwrap();
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(&str, &crate::DenseArray)]) -> Result<()> {
    let path = path.as_ref();
    for (i, (name, _)) in arrays.iter().enumerate() {
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(Error::config(format!(
                "npz member name `{name}` is not a plain file name"
            )));
        }
        if arrays[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::config(format!("two arrays are named `{name}`")));
        }
    }
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let zip_io = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(source) => io(source),
        other => io(std::io::Error::other(other.to_string())),
    };
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Stored, as `np.savez`: the members' payloads stay readable without inflating.
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, array) in arrays {
        let bytes = npy::encode_npy(array)?;
        // Members over 4 GiB need the zip64 extension.
        zip.start_file(
            format!("{name}.npy"),
            options.large_file(bytes.len() as u64 >= u32::MAX as u64),
        )
        .map_err(zip_io)?;
        zip.write_all(&bytes).map_err(io)?;
    }
    let bytes = zip.finish().map_err(zip_io)?.into_inner();
    mtl_core::files::write_atomically(path, &bytes)
}

fn read_archive(reader: impl Read + Seek, path: &Path) -> Result<NamedArrays> {
    let zip_error = |member: Option<&str>, e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => Error::Format {
            path: member.map_or_else(|| path.to_path_buf(), |m| path.join(m)),
            offset: 0,
            expected: "a readable zip archive of .npy members".into(),
            found: other.to_string(),
        },
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| zip_error(None, e))?;
    let mut out = NamedArrays::default();
    for i in 0..archive.len() {
        let member = archive.by_index(i).map_err(|e| zip_error(None, e))?;
        if member.is_dir() {
            continue;
        }
        let full = member.name().to_string();
        let name = full.strip_suffix(".npy").unwrap_or(&full).to_string();
        let len = member.size();
        let mut src = Source::from_zip_member(member, PathBuf::from(path).join(&full), len);
        let array = npy::read_from(&mut src)?;
        out.push(name, array)?;
    }
    Ok(out)
}
