//! The byte stream a binary loader reads: a file or a buffer, gunzipped on the fly
//! when it starts with the gzip magic, with the offset reached so far and an upper bound
//! on what is left, so that errors name the byte and a lying header cannot make a
//! loader allocate more than the input can hold.

use crate::array::{payload_len, DType, DenseArray};
use flate2::read::MultiGzDecoder;
use mtl_core::{Error, Result};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// The most a deflate stream can expand: 1032 to 1.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// A byte stream being parsed.
pub(crate) struct Source<'a> {
    reader: Box<dyn Read + 'a>,
    path: PathBuf,
    offset: u64,
    // The decoder the bytes pass through ("gzip", "zip"), whose errors are format errors.
    codec: Option<&'static str>,
    // The most bytes the stream can still yield.
    max_len: u64,
}

impl<'a> Source<'a> {
    /// Opens the file at `path`.
    pub(crate) fn open(path: &Path) -> Result<Source<'static>> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut magic = [0u8; 2];
        let got = read_up_to(&mut file, &mut magic).map_err(io)?;
        let head = std::io::Cursor::new(magic[..got].to_vec());
        let reader = std::io::BufReader::new(head.chain(file));
        Ok(Source::new(reader, path, len, magic[..got] == GZIP_MAGIC))
    }

    /// Reads from memory; `name` stands for the path in errors.
    pub(crate) fn from_bytes(bytes: &'a [u8], name: &Path) -> Source<'a> {
        let gzip = bytes.starts_with(&GZIP_MAGIC);
        Source::new(bytes, name, bytes.len() as u64, gzip)
    }

    /// Reads a zip archive member of `len` uncompressed bytes.
    pub(crate) fn from_zip_member(reader: impl Read + 'a, name: PathBuf, len: u64) -> Source<'a> {
        Source {
            reader: Box::new(reader),
            path: name,
            offset: 0,
            codec: Some("zip"),
            max_len: len,
        }
    }

    fn new(reader: impl Read + 'a, path: &Path, len: u64, gzip: bool) -> Source<'a> {
        let (reader, max_len): (Box<dyn Read + 'a>, u64) = if gzip {
            (
                Box::new(MultiGzDecoder::new(reader)),
                len.saturating_mul(MAX_DEFLATE_RATIO),
            )
        } else {
            (Box::new(reader), len)
        };
        Source {
            reader,
            path: path.to_path_buf(),
            offset: 0,
            codec: gzip.then_some("gzip"),
            max_len,
        }
    }

    /// The offset reached.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// A format error at `offset`.
    pub(crate) fn error_at(
        &self,
        offset: u64,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Error {
        Error::Format {
            path: self.path.clone(),
            offset,
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Fills `buf` with the next bytes, which hold `what`.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let start = self.offset;
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(self.error_at(
                        start,
                        format!("{} bytes of {what}", buf.len()),
                        format!("the end of the data after {filled}"),
                    ))
                }
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.stream_error(e)),
            }
        }
        Ok(())
    }

    /// Reads `n` bytes into a new vector (for headers: `n` is checked against what is
    /// left first).
    pub(crate) fn read_vec(&mut self, n: u64, what: &str) -> Result<Vec<u8>> {
        self.check_room(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.read_exact(&mut buf, what)?;
        Ok(buf)
    }

    /// Reads a payload of `shape` and `dtype` straight into the memory of a new array.
    pub(crate) fn read_array(&mut self, dtype: DType, shape: &[usize]) -> Result<DenseArray> {
        let what = format!("{dtype} payload of shape {shape:?}");
        let n = payload_len(dtype, shape).ok_or_else(|| {
            self.error_at(
                self.offset,
                "a payload size that fits in 64 bits",
                format!("shape {shape:?}"),
            )
        })?;
        self.check_room(n, &what)?;
        let mut array = DenseArray::zeros(dtype, shape)?;
        self.read_exact(array.bytes_mut(), &what)?;
        Ok(array)
    }

    /// Fails unless the stream has ended.
    pub(crate) fn expect_end(&mut self) -> Result<()> {
        let mut byte = [0u8; 1];
        loop {
            match self.reader.read(&mut byte) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(self.error_at(
                        self.offset,
                        "the end of the data",
                        "more bytes after the payload",
                    ))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.stream_error(e)),
            }
        }
    }

    fn check_room(&self, n: u64, what: &str) -> Result<()> {
        let left = self.max_len.saturating_sub(self.offset);
        if n > left {
            let bound = match self.codec {
                Some("gzip") => {
                    format!("a gzip stream of this size holds at most {left} more bytes")
                }
                _ => format!("{left} bytes left"),
            };
            return Err(self.error_at(self.offset, format!("{n} bytes of {what}"), bound));
        }
        Ok(())
    }

    fn stream_error(&self, e: std::io::Error) -> Error {
        match e.kind() {
            // What a decoder reports about a corrupt or truncated stream.
            ErrorKind::InvalidInput | ErrorKind::InvalidData | ErrorKind::UnexpectedEof
                if self.codec.is_some() =>
            {
                let codec = self.codec.unwrap_or_default();
                self.error_at(
                    self.offset,
                    format!("a complete, valid {codec} stream"),
                    e.to_string(),
                )
            }
            _ => Error::Io {
                path: self.path.clone(),
                source: e,
            },
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Shows up to 16 bytes for an error message.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 16 { " …" } else { "" };
    format!("bytes {}{more}", shown.join(" "))
}
