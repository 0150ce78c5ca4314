//! The IDX format of the MNIST files (LeCun et al.), raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type code (`0x08` u8, `0x09` i8, `0x0B` i16, `0x0C` i32,
//! `0x0D` f32, `0x0E` f64), the number of dimensions `d`, then `d` big-endian `u32`
//! sizes and the big-endian payload in C order. Nothing may follow the payload.

use crate::array::{DType, DenseArray};
use crate::source::{show_bytes, Source};
use mtl_core::Result;
use std::path::Path;

/// Reads an IDX file, gunzipping it when it starts with the gzip magic bytes. The
/// payload is read straight into the returned array's tensor (multi-byte types are then
/// byte-swapped in place).
///
/// Errors: a missing or unreadable file is [`Error::Io`](mtl_core::Error::Io); a
/// wrong magic number, an unknown type code, a payload shorter or longer than the
/// header's sizes, or a truncated or corrupt gzip stream is
/// [`Error::Format`](mtl_core::Error::Format) with the byte offset (of the
/// decompressed stream for gzip files) and what was expected there.
///
/// ```no_run
/// let dir = mtl_data::data_root("mnist")?.join("mnist");
/// let labels = mtl_data::read_idx(dir.join("t10k-labels-idx1-ubyte.gz"))?;
/// assert_eq!(labels.shape(), [10_000]);
/// assert_eq!(labels.view::<u8>()?[0], 7);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_idx(path: impl AsRef<Path>) -> Result<DenseArray> {
    parse(Source::open(path.as_ref())?)
}

/// Parses IDX data held in memory (raw or gzip), as [`read_idx`] does a file; errors
/// name the path `<memory>`.
pub fn parse_idx(bytes: &[u8]) -> Result<DenseArray> {
    parse(Source::from_bytes(bytes, Path::new("<memory>")))
}

fn parse(mut src: Source<'_>) -> Result<DenseArray> {
    let mut magic = [0u8; 4];
    src.read_exact(&mut magic, "IDX magic number")?;
    if magic[..2] != [0, 0] {
        return Err(src.error_at(
            0,
            "an IDX magic number starting with two zero bytes",
            show_bytes(&magic),
        ));
    }
    let dtype = match magic[2] {
        0x08 => DType::U8,
        0x09 => DType::I8,
        0x0B => DType::I16,
        0x0C => DType::I32,
        0x0D => DType::F32,
        0x0E => DType::F64,
        other => {
            return Err(src.error_at(
                2,
                "an IDX type code (08, 09, 0b, 0c, 0d or 0e)",
                format!("{other:02x}"),
            ))
        }
    };
    let ndim = u64::from(magic[3]);
    let dims = src.read_vec(4 * ndim, "IDX dimension sizes")?;
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let mut array = src.read_array(dtype, &shape)?;
    src.expect_end()?;
    if cfg!(target_endian = "little") {
        array.swap_bytes();
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::Error;

    fn idx(code: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(payload);
        v
    }

    #[test]
    fn reads_every_type_big_endian() {
        let a = parse_idx(&idx(0x08, &[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(a.shape(), [2, 3]);
        assert_eq!(a.view::<u8>().unwrap()[[1, 2]], 6);
        let b = parse_idx(&idx(0x0B, &[2], &[0x01, 0x02, 0xff, 0xfe])).unwrap();
        assert_eq!(
            b.view::<i16>().unwrap().iter().copied().collect::<Vec<_>>(),
            [0x0102, -2]
        );
        let f = parse_idx(&idx(0x0D, &[1], &1.5f32.to_be_bytes())).unwrap();
        assert_eq!(f.view::<f32>().unwrap()[0], 1.5);
        let d = parse_idx(&idx(0x0E, &[1], &(-0.25f64).to_be_bytes())).unwrap();
        assert_eq!(d.view::<f64>().unwrap()[0], -0.25);
        let i = parse_idx(&idx(0x0C, &[1], &(-7i32).to_be_bytes())).unwrap();
        assert_eq!(i.view::<i32>().unwrap()[0], -7);
        let s = parse_idx(&idx(0x09, &[0], &[])).unwrap();
        assert!(s.is_empty());
    }

    #[test]
    fn unknown_type_code_names_byte_two() {
        let err = parse_idx(&idx(0x0A, &[1], &[0])).unwrap_err();
        assert!(matches!(err, Error::Format { offset: 2, .. }), "{err}");
    }

    #[test]
    fn short_dimension_list_is_reported_where_it_starts() {
        let err = parse_idx(&[0, 0, 8, 3, 0, 0, 0, 1]).unwrap_err();
        assert!(matches!(err, Error::Format { offset: 4, .. }), "{err}");
    }
}
