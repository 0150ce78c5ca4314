//! NumPy's `.npy` format (versions 1.0, 2.0 and 3.0).
//!
//! Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length
//! (little-endian `u16` for 1.0, `u32` after), and a header that is a Python dict
//! literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and a newline; then the payload. Element types: `b1` (bool), `u1`, `i1`, `i2`,
//! `i4`, `i8`, `f2`, `f4`, `f8`, either byte order.

use crate::array::{DType, DenseArray};
use crate::source::{show_bytes, Source};
use mtl_core::Result;
use std::path::Path;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads a `.npy` file (a gzip-compressed one is gunzipped).
///
/// The payload is read straight into the returned array's tensor: no copy beyond the
/// read itself when the file is little-endian and in C order. A big-endian file is
/// byte-swapped in place; a Fortran-order file (`fortran_order: True`) is read and
/// then transposed into C order, which copies it once more.
///
/// Errors: [`Error::Io`](mtl_core::Error::Io) for a missing or unreadable file;
/// [`Error::Format`](mtl_core::Error::Format), with the byte offset and what was
/// expected there, for a wrong magic or version, a header that is not the dict NumPy
/// writes, an unsupported `descr` (structured, string or object arrays), a bool
/// byte other than 0 or 1, or a payload shorter or longer than the shape says.
///
/// ```
/// use mtl_data::{encode_npy, parse_npy, DenseArray};
/// let a = DenseArray::from_array(&ndarray::array![[3i64, -4], [5, 6]].into_dyn())?;
/// let b = parse_npy(&encode_npy(&a)?)?;
/// assert_eq!(b.view::<i64>()?, a.view::<i64>()?);
/// assert!(parse_npy(b"\x93NUMPX\x01\x00").is_err());
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<DenseArray> {
    let mut src = Source::open(path.as_ref())?;
    read_from(&mut src)
}

/// Parses `.npy` data held in memory, as [`read_npy`] does a file; errors name the
/// path `<memory>`.
pub fn parse_npy(bytes: &[u8]) -> Result<DenseArray> {
    read_from(&mut Source::from_bytes(bytes, Path::new("<memory>")))
}

/// The `.npy` (version 1.0) encoding of an array: little-endian, C order, the header
/// padded so that the payload starts at a multiple of 64 bytes, as NumPy writes it.
/// Fails for bfloat16, which NumPy lacks.
pub fn encode_npy(array: &DenseArray) -> Result<Vec<u8>> {
    let descr = match array.dtype() {
        DType::Bool => "|b1",
        DType::U8 => "|u1",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::F16 => "<f2",
        DType::BF16 => {
            return Err(mtl_core::Error::config(
                "NumPy has no bfloat16 type: convert the array before writing it as .npy",
            ))
        }
        DType::F32 => "<f4",
        DType::F64 => "<f8",
    };
    let dims: Vec<String> = array.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while !(MAGIC.len() + 4 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + array.as_bytes().len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    if cfg!(target_endian = "little") || array.dtype().size() == 1 {
        out.extend_from_slice(array.as_bytes());
    } else {
        for chunk in array.as_bytes().chunks_exact(array.dtype().size()) {
            out.extend(chunk.iter().rev());
        }
    }
    Ok(out)
}

/// Writes an array as a `.npy` file (see [`encode_npy`]), atomically: a temporary file
/// beside it is renamed over it, so a reader never sees half an array.
pub fn write_npy(path: impl AsRef<Path>, array: &DenseArray) -> Result<()> {
    mtl_core::files::write_atomically(path.as_ref(), &encode_npy(array)?)
}

/// Reads one whole `.npy` stream (also an `.npz` member).
/// An NPY file's layout: what its header says and where its payload starts.
pub(crate) struct NpyLayout {
    pub(crate) dtype: DType,
    /// Whether the payload is big-endian (its bytes need swapping).
    pub(crate) swap: bool,
    pub(crate) fortran_order: bool,
    /// The shape as the header gives it.
    pub(crate) shape: Vec<usize>,
}

/// Reads the magic, version and header dict, leaving `src` at the payload.
pub(crate) fn read_layout(src: &mut Source<'_>) -> Result<NpyLayout> {
    let mut magic = [0u8; 8];
    src.read_exact(&mut magic, "NPY magic and version")?;
    if &magic[..6] != MAGIC {
        return Err(src.error_at(0, "the NPY magic \\x93NUMPY", show_bytes(&magic[..6])));
    }
    let (major, minor) = (magic[6], magic[7]);
    let header_len = match (major, minor) {
        (1, 0) => {
            let mut b = [0u8; 2];
            src.read_exact(&mut b, "NPY header length")?;
            u64::from(u16::from_le_bytes(b))
        }
        (2 | 3, 0) => {
            let mut b = [0u8; 4];
            src.read_exact(&mut b, "NPY header length")?;
            u64::from(u32::from_le_bytes(b))
        }
        _ => {
            return Err(src.error_at(
                6,
                "NPY version 1.0, 2.0 or 3.0",
                format!("version {major}.{minor}"),
            ))
        }
    };
    let header_start = src.offset();
    let raw = src.read_vec(header_len, "NPY header")?;
    let header = parse_header(&raw).map_err(|(at, expected)| {
        let found = String::from_utf8_lossy(&raw[at.min(raw.len())..])
            .chars()
            .take(24)
            .collect::<String>();
        src.error_at(
            header_start + at as u64,
            expected,
            if found.is_empty() {
                "the end of the header".into()
            } else {
                format!("`{found}`")
            },
        )
    })?;
    let (dtype, swap) = header.dtype.map_err(|descr| {
        src.error_at(
            header_start,
            "a descr of b1, u1, i1, i2, i4, i8, f2, f4 or f8",
            format!("descr `{descr}`"),
        )
    })?;
    Ok(NpyLayout {
        dtype,
        swap,
        fortran_order: header.fortran_order,
        shape: header.shape,
    })
}

pub(crate) fn read_from(src: &mut Source<'_>) -> Result<DenseArray> {
    let NpyLayout {
        dtype,
        swap,
        fortran_order,
        shape: header_shape,
    } = read_layout(src)?;
    let payload_start = src.offset();
    let mut shape = header_shape.clone();
    if fortran_order {
        shape.reverse();
    }
    let mut array = src.read_array(dtype, &shape)?;
    src.expect_end()?;
    if swap {
        array.swap_bytes();
    }
    if let Some(i) = array.first_invalid_bool() {
        return Err(src.error_at(
            payload_start + i as u64,
            "a bool byte, 0 or 1",
            show_bytes(&array.as_bytes()[i..i + 1]),
        ));
    }
    if fortran_order && header_shape.len() > 1 {
        // Read as the C-order array of the reversed shape, i.e. the transpose.
        let t = array.into_tensor();
        let dims: Vec<i64> = (0..header_shape.len() as i64).rev().collect();
        let c_order = t.f_permute(dims.as_slice())?.f_contiguous()?;
        array = DenseArray::from_tensor(&c_order)?;
    }
    Ok(array)
}

/// What the header says. `dtype` is `Err(descr)` for an unsupported type.
struct Header {
    dtype: std::result::Result<(DType, bool), String>,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header dict; on failure, the byte position and what was expected.
fn parse_header(raw: &[u8]) -> std::result::Result<Header, (usize, String)> {
    let mut p = Parser { s: raw, at: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key_at = p.at;
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(p.string()?),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            _ => {
                return Err((
                    key_at,
                    "one each of the keys 'descr', 'fortran_order' and 'shape'".into(),
                ))
            }
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.at != raw.len() {
        return Err((p.at, "only spaces after the header dict".into()));
    }
    let missing = |k: &str| (raw.len(), format!("the key '{k}' in the header"));
    let descr = descr.ok_or_else(|| missing("descr"))?;
    Ok(Header {
        dtype: parse_descr(&descr).ok_or(descr),
        fortran_order: fortran.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// The element type and whether its bytes need swapping.
fn parse_descr(descr: &str) -> Option<(DType, bool)> {
    let (order, ty) = match descr.as_bytes().first()? {
        b'<' | b'>' | b'|' | b'=' => descr.split_at(1),
        _ => ("=", descr),
    };
    let dtype = match ty {
        "b1" | "?" => DType::Bool,
        "u1" => DType::U8,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => return None,
    };
    let big = match order {
        ">" => true,
        "<" => false,
        _ => cfg!(target_endian = "big"),
    };
    let swap = dtype.size() > 1 && big != cfg!(target_endian = "big");
    Some((dtype, swap))
}

/// A cursor over the header text.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

type Parsed<T> = std::result::Result<T, (usize, String)>;

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Parsed<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err((self.at, format!("`{}` in the header dict", c as char)))
        }
    }

    /// A quoted string without escapes (all NumPy writes for these keys and types).
    fn string(&mut self) -> Parsed<String> {
        let quote = match self.s.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err((self.at, "a quoted string".into())),
        };
        let start = self.at + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or((self.at, "a closed string".into()))?;
        let text = std::str::from_utf8(&self.s[start..start + len])
            .map_err(|_| (start, "UTF-8 text".to_string()))?;
        self.at = start + len + 1;
        Ok(text.to_string())
    }

    fn boolean(&mut self) -> Parsed<bool> {
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err((self.at, "True or False".into()))
    }

    /// A tuple of non-negative integers: `()`, `(3,)`, `(3, 4)`, `(3L, 4L)`.
    fn tuple(&mut self) -> Parsed<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.at;
            while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
            let d = digits.parse::<usize>().map_err(|_| {
                (
                    start,
                    "a dimension size (a non-negative integer)".to_string(),
                )
            })?;
            dims.push(d);
            self.eat(b'L');
            self.skip_ws();
            if !self.eat(b',') {
                self.skip_ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_variants_numpy_writes() {
        let h = parse_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }    \n")
            .unwrap();
        assert_eq!(h.dtype.unwrap(), (DType::F32, false));
        assert_eq!((h.fortran_order, h.shape), (false, vec![3, 4]));
        let h = parse_header(b"{\"shape\": (7L,), \"fortran_order\": True, \"descr\": \">i8\"}")
            .unwrap();
        assert_eq!(h.dtype.unwrap(), (DType::I64, true));
        assert_eq!((h.fortran_order, h.shape), (true, vec![7]));
        let h = parse_header(b"{'descr': '|b1', 'fortran_order': False, 'shape': ()}").unwrap();
        assert_eq!(h.shape, Vec::<usize>::new());
        assert!(
            parse_header(b"{'descr': '<U8', 'fortran_order': False, 'shape': (1,)}")
                .unwrap()
                .dtype
                .is_err()
        );
    }

    #[test]
    fn header_errors_point_into_the_header() {
        let at = |s: &[u8]| parse_header(s).err().unwrap().0;
        assert_eq!(at(b"{'descr': '<f4', 'fortran_order': Maybe}"), 34);
        assert_eq!(
            at(b"{'descr': '<f4', 'shape': (2, -1), 'fortran_order': False}"),
            30
        );
        assert_eq!(at(b"{'descr': '<f4', 'descr': '<f4'}"), 17);
        assert_eq!(at(b"{'descr': '<f4', 'shape': (2,)}"), 31);
        assert_eq!(at(b"['descr']"), 0);
        assert_eq!(
            at(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x"),
            56
        );
    }
}
