//! The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
//! header naming each tensor's dtype, shape and byte range, then the little-endian data.

use crate::array::{DType, DenseArray};
use crate::named::NamedArrays;
use mtl_core::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors};
use std::path::Path;

/// Reads every tensor of a safetensors file, in the order of their data in the file.
///
/// The header is parsed and checked by the `safetensors` crate, which needs the whole
/// file in memory: the file is read once, then each tensor's bytes are copied into its
/// own array (two copies in all, so that no array shares memory with another).
///
/// Errors: [`Error::Io`] for a missing or unreadable file; [`Error::Format`] for a
/// malformed header or data ranges that do not match the shapes (offset 0, with the
/// crate's diagnosis), an unsupported dtype (`U16`, `U32`, `U64`), or a bool byte other
/// than 0 or 1 (at that byte).
///
/// ```
/// use safetensors::tensor::{Dtype, TensorView};
/// let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
/// let view = TensorView::new(Dtype::F32, vec![2, 2], &data).unwrap();
/// let bytes = safetensors::tensor::serialize([("w", view)], &None).unwrap();
/// let arrays = mtl_data::parse_safetensors(&bytes)?;
/// assert_eq!(arrays.get("w")?.shape(), [2, 2]);
/// assert_eq!(arrays.get("w")?.view::<f32>()?[[1, 0]], 3.0);
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<NamedArrays> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path)
}

/// Parses safetensors data held in memory, as [`read_safetensors`] does a file; errors
/// name the path `<memory>`.
pub fn parse_safetensors(bytes: &[u8]) -> Result<NamedArrays> {
    parse(bytes, Path::new("<memory>"))
}

fn parse(bytes: &[u8], path: &Path) -> Result<NamedArrays> {
    let format = |offset: u64, expected: &str, found: String| Error::Format {
        path: path.to_path_buf(),
        offset,
        expected: expected.into(),
        found,
    };
    let (header_len, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format(0, "a valid safetensors header", format!("{e:?}")))?;
    let data_start = 8 + header_len;
    let mut tensors: Vec<_> = metadata.tensors().into_iter().collect();
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut out = NamedArrays::default();
    for (name, info) in tensors {
        let (begin, end) = info.data_offsets;
        let at = (data_start + begin) as u64;
        let dtype = match info.dtype {
            Dtype::BOOL => DType::Bool,
            Dtype::U8 => DType::U8,
            Dtype::I8 => DType::I8,
            Dtype::I16 => DType::I16,
            Dtype::I32 => DType::I32,
            Dtype::I64 => DType::I64,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::F32 => DType::F32,
            Dtype::F64 => DType::F64,
            other => {
                return Err(format(
                    at,
                    "a dtype libtorch has (BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64)",
                    format!("{other:?} for tensor `{name}`"),
                ))
            }
        };
        // `read_metadata` checked that the ranges tile the data section and match the
        // shapes, so this slice is in bounds and of the payload's size.
        let data = &bytes[data_start + begin..data_start + end];
        let mut array = DenseArray::zeros(dtype, &info.shape)?;
        if array.as_bytes().len() != data.len() {
            return Err(format(
                at,
                &format!("{} bytes for tensor `{name}`", array.as_bytes().len()),
                format!("{} bytes", data.len()),
            ));
        }
        array.bytes_mut().copy_from_slice(data);
        if cfg!(target_endian = "big") {
            array.swap_bytes();
        }
        if let Some(i) = array.first_invalid_bool() {
            return Err(format(
                at + i as u64,
                "a bool byte, 0 or 1",
                format!("{:#04x} in tensor `{name}`", data[i]),
            ));
        }
        out.push(name, array)?;
    }
    Ok(out)
}
