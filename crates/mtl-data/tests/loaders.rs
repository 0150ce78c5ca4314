//! The binary loaders: files NumPy and the Python safetensors package wrote
//! (`tests/fixtures`), the real MNIST files, and one test per kind of bad input, each
//! checking the typed error's file, offset and expectation.

mod common;

use common::{gzip, slices};
use mtl_core::Error;
use mtl_data::{
    encode_npy, parse_idx, parse_npy, parse_npz, parse_safetensors, read_idx, read_npy, read_npz,
    read_safetensors, DType, DenseArray,
};
use ndarray::array;
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn idx_u8(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend(payload);
    v
}

/// A unique temporary file, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("mtl-data-loaders-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn format_error(err: Error) -> (PathBuf, u64, String, String) {
    match err {
        Error::Format {
            path,
            offset,
            expected,
            found,
        } => (path, offset, expected, found),
        other => panic!("expected a format error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- NPY

/// The NPY file `name` with `from` replaced by `to` in its header, the padding
/// adjusted so the header keeps its length.
fn edit_header(name: &str, from: &str, to: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(name)).unwrap();
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains(from));
    let mut edited = header.replace(from, to).trim_end().to_string();
    while edited.len() < len - 1 {
        edited.push(' ');
    }
    edited.push('\n');
    let mut out = bytes[..10].to_vec();
    out.extend(edited.as_bytes());
    out.extend(&bytes[10 + len..]);
    out
}

#[test]
fn npy_files_numpy_wrote() {
    let a = read_npy(fixture("f32_c.npy")).unwrap();
    assert_eq!(a.dtype(), DType::F32);
    assert_eq!(
        a.view::<f32>().unwrap(),
        array![[-2.5f32, -1.5, -0.5], [0.5, 1.5, 2.5]].into_dyn()
    );
    // Fortran order comes back in C order with the same logical values.
    let f = read_npy(fixture("f64_fortran.npy")).unwrap();
    assert_eq!(
        f.view::<f64>().unwrap(),
        array![[0.0, 0.5], [1.0, 1.5], [2.0, 2.5]].into_dyn()
    );
    let be = read_npy(fixture("i64_be.npy")).unwrap();
    assert_eq!(
        be.view::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [1, -2, 300, -40000]
    );
    let u = read_npy(fixture("u8_3d.npy")).unwrap();
    assert_eq!(u.shape(), [2, 2, 2]);
    assert_eq!(u.view::<u8>().unwrap()[[1, 1, 1]], 210);
    let b = read_npy(fixture("bool.npy")).unwrap();
    assert_eq!(
        b.view::<bool>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [true, false, true, true, false]
    );
}

#[test]
fn npy_encoding_matches_numpy_byte_for_byte() {
    for name in ["f32_c.npy", "u8_3d.npy", "bool.npy"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let a = parse_npy(&bytes).unwrap();
        assert_eq!(encode_npy(&a).unwrap(), bytes, "{name}");
    }
}

#[test]
fn npy_to_tensor_keeps_values() {
    let a = read_npy(fixture("f32_c.npy")).unwrap();
    let t = a.into_tensor();
    assert_eq!(t.size(), [2, 3]);
    assert_eq!(t.kind(), tch::Kind::Float);
    assert_eq!(t.double_value(&[1, 2]), 2.5);
}

#[test]
fn npy_bad_magic_is_at_offset_zero() {
    let mut bytes = std::fs::read(fixture("f32_c.npy")).unwrap();
    bytes[1] = b'X';
    let (path, offset, expected, found) = format_error(parse_npy(&bytes).unwrap_err());
    assert_eq!((path, offset), (PathBuf::from("<memory>"), 0));
    assert!(
        expected.contains("NUMPY") && found.contains("58"),
        "{expected} / {found}"
    );
}

#[test]
fn npy_bad_header_points_into_the_header() {
    let bytes = std::fs::read(fixture("f32_c.npy")).unwrap();
    let text = String::from_utf8_lossy(&bytes[10..128]).into_owned();
    let broken = text.replace("False", "Nope ");
    let mut file = bytes[..10].to_vec();
    file.extend(broken.as_bytes());
    file.extend(&bytes[128..]);
    let f = TempFile::new("bad-header.npy", &file);
    let (path, offset, expected, found) = format_error(read_npy(&f.0).unwrap_err());
    assert_eq!(path, f.0);
    assert_eq!(offset, 10 + text.find("False").unwrap() as u64);
    assert_eq!(expected, "True or False");
    assert!(found.starts_with("`Nope"), "{found}");
}

#[test]
fn npy_unsupported_descr_and_version() {
    let bytes = std::fs::read(fixture("f32_c.npy")).unwrap();
    let text = edit_header("f32_c.npy", "<f4", "<U1");
    let (_, offset, expected, found) = format_error(parse_npy(&text).unwrap_err());
    assert_eq!(offset, 10);
    assert!(expected.contains("f8") && found.contains("<U1"), "{found}");
    let mut v9 = bytes.clone();
    v9[6] = 9;
    let (_, offset, _, found) = format_error(parse_npy(&v9).unwrap_err());
    assert_eq!((offset, found.as_str()), (6, "version 9.0"));
}

#[test]
fn npy_short_and_long_payloads() {
    let bytes = std::fs::read(fixture("f32_c.npy")).unwrap();
    let (_, offset, expected, found) =
        format_error(parse_npy(&bytes[..bytes.len() - 3]).unwrap_err());
    assert_eq!(offset, 128);
    assert!(
        expected.starts_with("24 bytes of float32 payload"),
        "{expected}"
    );
    // The room check fires before anything is allocated or read.
    assert!(found.contains("21 bytes left"), "{found}");
    let mut long = bytes.clone();
    long.push(0);
    let (_, offset, expected, _) = format_error(parse_npy(&long).unwrap_err());
    assert_eq!((offset, expected.as_str()), (152, "the end of the data"));
}

#[test]
fn npy_invalid_bool_byte_is_located() {
    let mut bytes = std::fs::read(fixture("bool.npy")).unwrap();
    let last = bytes.len() - 2;
    bytes[last] = 7;
    let (_, offset, expected, _) = format_error(parse_npy(&bytes).unwrap_err());
    assert_eq!(
        (offset, expected.as_str()),
        (last as u64, "a bool byte, 0 or 1")
    );
}

#[test]
fn npy_huge_shape_is_rejected_without_allocating() {
    let text = edit_header("f32_c.npy", "(2, 3)", "(9999999999, 99)");
    let err = parse_npy(&text).unwrap_err();
    assert!(matches!(err, Error::Format { offset: 128, .. }), "{err}");
}

#[test]
fn gzipped_npy_is_read_and_truncated_gzip_is_a_format_error() {
    let bytes = std::fs::read(fixture("f32_c.npy")).unwrap();
    let gz = gzip(&bytes);
    let a = parse_npy(&gz).unwrap();
    assert_eq!(a.view::<f32>().unwrap()[[0, 0]], -2.5);
    let cut = &gz[..gz.len() - 12];
    let (_, offset, expected, found) = format_error(parse_npy(cut).unwrap_err());
    // The offset is how far decompression got, inside the payload (which starts at 128).
    assert!((128..152).contains(&offset), "{offset}");
    assert_eq!(expected, "a complete, valid gzip stream");
    assert!(found.contains("incomplete"), "{found}");
}

// ---------------------------------------------------------------- NPZ

#[test]
fn npz_stored_and_deflated() {
    let plain = read_npz(fixture("arrays.npz")).unwrap();
    assert_eq!(plain.names(), ["x", "y"]);
    assert_eq!(
        plain.get("x").unwrap().view::<f32>().unwrap(),
        array![[0.0f32, 1.0], [2.0, 3.0]].into_dyn()
    );
    assert_eq!(
        plain
            .get("y")
            .unwrap()
            .view::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [7, 8, 9]
    );
    let mut packed = read_npz(fixture("arrays_compressed.npz")).unwrap();
    assert_eq!(packed.names(), ["x", "mask"]);
    let mask = packed.take("mask").unwrap();
    assert_eq!(
        mask.view::<bool>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(packed.len(), 1);
    assert!(matches!(packed.get("mask"), Err(Error::Unknown { .. })));
}

#[test]
fn npz_errors_name_the_member() {
    let bytes = std::fs::read(fixture("arrays.npz")).unwrap();
    let (path, offset, _, _) = format_error(parse_npz(&bytes[..100]).unwrap_err());
    assert_eq!((path, offset), (PathBuf::from("<memory>"), 0));
    // A member that is not NPY data.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("junk.npy", zip::write::FileOptions::default())
        .unwrap();
    zip.write_all(b"not numpy").unwrap();
    let archive = zip.finish().unwrap().into_inner();
    let (path, offset, _, _) = format_error(parse_npz(&archive).unwrap_err());
    assert_eq!((path, offset), (Path::new("<memory>").join("junk.npy"), 0));
}

// ---------------------------------------------------------------- safetensors

#[test]
fn safetensors_file_python_wrote() {
    let mut s = read_safetensors(fixture("sample.safetensors")).unwrap();
    let mut names = s.names();
    names.sort_unstable();
    assert_eq!(names, ["flags", "ids", "pixels", "weight"]);
    assert_eq!(
        s.get("weight").unwrap().view::<f32>().unwrap(),
        array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn()
    );
    assert_eq!(
        s.get("ids")
            .unwrap()
            .view::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [5, -6]
    );
    assert_eq!(
        s.get("flags")
            .unwrap()
            .view::<bool>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        [false, true]
    );
    let pixels = s.take("pixels").unwrap().into_tensor();
    assert_eq!(
        (pixels.size(), pixels.kind()),
        (vec![1, 2], tch::Kind::Uint8)
    );
    assert_eq!(pixels.int64_value(&[0, 1]), 255);
}

#[test]
fn safetensors_errors() {
    let bytes = std::fs::read(fixture("sample.safetensors")).unwrap();
    let (_, offset, expected, _) =
        format_error(parse_safetensors(&bytes[..bytes.len() - 1]).unwrap_err());
    assert_eq!(
        (offset, expected.as_str()),
        (0, "a valid safetensors header")
    );
    let (_, offset, _, _) = format_error(parse_safetensors(&bytes[..5]).unwrap_err());
    assert_eq!(offset, 0);
    assert!(matches!(
        read_safetensors("/nonexistent/x.safetensors"),
        Err(Error::Io { .. })
    ));
}

// ---------------------------------------------------------------- IDX

#[test]
fn idx_raw_and_gzip_agree() {
    let raw = idx_u8(&[2, 2], &[1, 2, 3, 4]);
    let a = parse_idx(&raw).unwrap();
    let b = parse_idx(&gzip(&raw)).unwrap();
    assert_eq!(a.view::<u8>().unwrap(), b.view::<u8>().unwrap());
    assert_eq!(a.view::<u8>().unwrap()[[1, 0]], 3);
}

#[test]
fn idx_wrong_magic() {
    let mut raw = idx_u8(&[2], &[1, 2]);
    raw[0] = 0x1f;
    let f = TempFile::new("wrong-magic.idx", &raw);
    let (path, offset, expected, found) = format_error(read_idx(&f.0).unwrap_err());
    assert_eq!((path, offset), (f.0.clone(), 0));
    assert!(expected.contains("two zero bytes"), "{expected}");
    assert!(found.starts_with("bytes 1f 00 08 01"), "{found}");
}

#[test]
fn idx_short_payload_says_how_much_is_missing() {
    let raw = idx_u8(&[3, 2], &[1, 2, 3, 4]);
    let (_, offset, expected, found) = format_error(parse_idx(&raw).unwrap_err());
    assert_eq!(offset, 12);
    assert_eq!(expected, "6 bytes of uint8 payload of shape [3, 2]");
    assert_eq!(found, "4 bytes left");
    // Through gzip the bound is looser, so the read itself runs out.
    let (_, offset, _, found) = format_error(parse_idx(&gzip(&raw)).unwrap_err());
    assert_eq!(offset, 12);
    assert_eq!(found, "the end of the data after 4");
}

#[test]
fn idx_trailing_bytes_are_rejected() {
    let raw = idx_u8(&[2], &[1, 2, 3]);
    let (_, offset, expected, _) = format_error(parse_idx(&raw).unwrap_err());
    assert_eq!((offset, expected.as_str()), (10, "the end of the data"));
}

#[test]
fn idx_gzip_cut_short() {
    let raw = idx_u8(&[64, 64], &[7u8; 4096]);
    let gz = gzip(&raw);
    let f = TempFile::new("cut.idx.gz", &gz[..gz.len() / 2]);
    let (path, _, expected, found) = format_error(read_idx(&f.0).unwrap_err());
    assert_eq!(path, f.0);
    assert_eq!(expected, "a complete, valid gzip stream");
    assert!(found.contains("incomplete"), "{found}");
    // A corrupted (not truncated) stream: the CRC or the deflate data no longer fit.
    let mut bad = gz.clone();
    let mid = bad.len() - 6;
    bad[mid] ^= 0xff;
    let (_, _, expected, _) = format_error(parse_idx(&bad).unwrap_err());
    assert!(expected.contains("gzip"), "{expected}");
}

#[test]
fn idx_missing_file_is_io() {
    let err = read_idx("/nonexistent/train-images-idx3-ubyte.gz").unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn real_mnist_test_labels_have_the_reference_counts() {
    // The slice holds MNIST's first 300 test labels; the counts were taken from the
    // original file with Python's gzip + collections.Counter.
    let dir = slices("mnist").unwrap().join("mnist");
    let labels = read_idx(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let mut counts = [0usize; 10];
    for &l in labels.view::<u8>().unwrap().iter() {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [24, 41, 32, 24, 37, 29, 24, 34, 21, 34]);
    let images = read_idx(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!(images.shape(), [300, 28, 28]);
    let rows = images.to_f32_rows().unwrap();
    assert_eq!(rows.dim(), (300, 784));
    assert_eq!(rows.iter().cloned().fold(0.0f32, f32::max), 255.0);
}

#[test]
fn dense_array_from_ndarray_round_trips_through_npy() {
    let a = DenseArray::from_array(&array![[1.0f64, -2.0], [3.5, 4.0]].into_dyn()).unwrap();
    let b = parse_npy(&encode_npy(&a).unwrap()).unwrap();
    assert_eq!(b.view::<f64>().unwrap(), a.view::<f64>().unwrap());
}
