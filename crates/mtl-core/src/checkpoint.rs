//! Checkpoint files: named tensors plus a JSON document of everything else, in one
//! safetensors file, written atomically and verified on load.
//!
//! The format is plain safetensors, so PyTorch reads it with
//! `safetensors.torch.load_file(path)`. Model weights are stored under their var-store
//! names (`trunk.0.weight`, the names a PyTorch `state_dict` of the same module tree
//! would use); any other tensor (optimiser moments, a method's parameters, the best
//! weights under early stopping) lives in a group, as `group::name`, so
//! `{k: v for k, v in load_file(p).items() if "::" not in k}` is the model's state dict.
//! The safetensors header metadata holds the format name and version, the JSON state and
//! a SHA-256 digest of every byte of state: the format, the version, the JSON state
//! text, and every tensor's name, dtype, shape and bytes. A truncated, bit-flipped,
//! edited or foreign file is a typed [`Error::Checkpoint`], never a silently wrong
//! resume.

use crate::{Error, Result, SeededRng};
use rand::SeedableRng;
use safetensors::tensor::{Dtype, SafeTensors, View};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

pub use crate::files::write_atomically;
use tch::{Device, Kind, Tensor};

/// The `format` metadata value of an `mtl` checkpoint.
pub const FORMAT: &str = "mtl-checkpoint";
/// The version of the layout this crate writes and reads. Version 1's digest left the
/// JSON state out; version 2's covers it.
pub const VERSION: u32 = 2;
/// Separates a tensor group from the tensor name (`optimizer::first.0`).
pub const GROUP_SEPARATOR: &str = "::";

/// A checkpoint in memory.
#[derive(Debug)]
pub struct Checkpoint {
    /// Named tensors: model weights under their own names, the rest as `group::name`.
    pub tensors: Vec<(String, Tensor)>,
    /// Everything that is not a tensor.
    pub state: serde_json::Value,
}

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A tensor's bytes, ready for the serializer.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(name: &str, t: &Tensor) -> Result<Bytes> {
    let t = t.f_detach()?.f_to_device(Device::Cpu)?.f_contiguous()?;
    let kind = t.f_kind()?;
    let dtype = Dtype::try_from(kind).map_err(|_| {
        Error::config(format!(
            "checkpoint tensor `{name}` has dtype {kind:?}, which safetensors cannot hold"
        ))
    })?;
    let numel = t.numel();
    let mut data = vec![0u8; numel * kind.elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, numel)?;
    Ok(Bytes {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

/// SHA-256 over the format, the version, the JSON state text and (name, dtype, shape,
/// bytes) of every tensor in name order: everything the checkpoint holds but the digest.
fn digest<'a>(
    state: &str,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    // Length-prefixed, so no two different (format, version, state) give one stream.
    for text in [FORMAT, &VERSION.to_string(), state] {
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.update((sorted.len() as u64).to_le_bytes());
    for (name, dtype, shape, data) in sorted {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(format!("{dtype:?}").as_bytes());
        h.update((shape.len() as u64).to_le_bytes());
        for d in shape {
            h.update((*d as u64).to_le_bytes());
        }
        h.update((data.len() as u64).to_le_bytes());
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    /// An empty checkpoint holding `state`.
    pub fn new(state: serde_json::Value) -> Self {
        Checkpoint {
            tensors: Vec::new(),
            state,
        }
    }

    /// Adds tensors under `group` (`None`: model weights, stored under their own names).
    pub fn extend(
        &mut self,
        group: Option<&str>,
        tensors: impl IntoIterator<Item = (String, Tensor)>,
    ) {
        for (name, t) in tensors {
            let name = match group {
                Some(g) => format!("{g}{GROUP_SEPARATOR}{name}"),
                None => name,
            };
            self.tensors.push((name, t));
        }
    }

    /// The tensors of `group` (`None`: the model weights), with the group prefix removed.
    pub fn group(&self, group: Option<&str>) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter_map(|(name, t)| {
                let local = match group {
                    Some(g) => name.strip_prefix(g)?.strip_prefix(GROUP_SEPARATOR)?,
                    None if name.contains(GROUP_SEPARATOR) => return None,
                    None => name.as_str(),
                };
                Some((local.to_string(), t.shallow_clone()))
            })
            .collect()
    }

    /// Serialises the checkpoint to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut seen = std::collections::HashSet::new();
        let mut bytes = Vec::with_capacity(self.tensors.len());
        for (name, t) in &self.tensors {
            if !seen.insert(name.as_str()) {
                return Err(Error::config(format!(
                    "checkpoint tensor name `{name}` is used twice"
                )));
            }
            bytes.push((name.as_str(), to_bytes(name, t)?));
        }
        let state = serde_json::to_string(&self.state)
            .map_err(|e| Error::config(format!("checkpoint state is not serialisable: {e}")))?;
        let sha = digest(
            &state,
            bytes
                .iter()
                .map(|(n, b)| (*n, b.dtype, b.shape.as_slice(), b.data.as_slice())),
        );
        let metadata: HashMap<String, String> = [
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), VERSION.to_string()),
            ("state".to_string(), state),
            ("sha256".to_string(), sha),
        ]
        .into_iter()
        .collect();
        safetensors::tensor::serialize(bytes.iter().map(|(n, b)| (*n, b)), &Some(metadata))
            .map_err(|e| Error::config(format!("checkpoint serialisation failed: {e:?}")))
    }

    /// Parses bytes written by [`Checkpoint::to_bytes`]; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| corrupt(path, format!("not a safetensors file ({e:?})")))?;
        let meta = meta
            .metadata()
            .clone()
            .ok_or_else(|| corrupt(path, "a safetensors file without mtl checkpoint metadata"))?;
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| corrupt(path, format!("metadata lacks `{k}`")))
        };
        if field("format")? != FORMAT {
            return Err(corrupt(
                path,
                format!("format is `{}`, expected `{FORMAT}`", field("format")?),
            ));
        }
        if field("version")? != &VERSION.to_string() {
            return Err(corrupt(
                path,
                format!(
                    "layout version {} is not the supported {VERSION} (a checkpoint of \
                     another mtl version, or a corrupt one)",
                    field("version")?
                ),
            ));
        }
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| corrupt(path, format!("malformed tensor data ({e:?})")))?;
        let views = st.tensors();
        let sha = digest(
            field("state")?,
            views
                .iter()
                .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
        );
        if &sha != field("sha256")? {
            return Err(corrupt(
                path,
                "the state or tensor data does not match its SHA-256 digest (corrupt or \
                 edited file)",
            ));
        }
        let state = serde_json::from_str(field("state")?)
            .map_err(|e| corrupt(path, format!("state is not valid JSON: {e}")))?;
        let mut tensors = Vec::with_capacity(views.len());
        for (name, view) in views {
            let kind = Kind::try_from(view.dtype())
                .map_err(|_| corrupt(path, format!("tensor `{name}` has an unsupported dtype")))?;
            let size: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &size, kind)?;
            tensors.push((name, t));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Checkpoint { tensors, state })
    }

    /// Writes the checkpoint to `path` atomically: a crash leaves the old file or the
    /// new one, never half of one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), &self.to_bytes()?)
    }

    /// The JSON state of the checkpoint at `path`, read from its header alone (without
    /// the tensors and without verifying the digest): enough to tell whose checkpoint a
    /// file is before deciding to replace it. A file that is not an `mtl` checkpoint is
    /// an [`Error::Checkpoint`] saying so.
    pub fn peek_state(path: impl AsRef<Path>) -> Result<serde_json::Value> {
        let path = path.as_ref();
        let not_ours = |why: &str| corrupt(path, format!("not an mtl checkpoint ({why})"));
        let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut len = [0u8; 8];
        f.read_exact(&mut len)
            .map_err(|_| not_ours("shorter than a safetensors header"))?;
        let len = u64::from_le_bytes(len);
        // safetensors caps its header at 100 MB; a larger count is not a header.
        if len > 100_000_000 {
            return Err(not_ours("no safetensors header"));
        }
        let mut header = vec![0u8; len as usize];
        f.read_exact(&mut header)
            .map_err(|_| not_ours("truncated safetensors header"))?;
        let header: serde_json::Value =
            serde_json::from_slice(&header).map_err(|_| not_ours("no safetensors header"))?;
        let meta = header
            .get("__metadata__")
            .ok_or_else(|| not_ours("no metadata"))?;
        if meta.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_ours("its format is not `mtl-checkpoint`"));
        }
        let state = meta
            .get("state")
            .and_then(|s| s.as_str())
            .ok_or_else(|| not_ours("no state"))?;
        serde_json::from_str(state)
            .map_err(|e| corrupt(path, format!("state is not valid JSON: {e}")))
    }

    /// Reads and verifies a checkpoint.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes, path)
    }
}

/// Saves every variable of `vs` under its own name as a plain safetensors file (no
/// `mtl` metadata), written atomically: `model.load_state_dict(load_file(path))` in
/// PyTorch for a module tree with the same names.
pub fn save_weights(vs: &tch::nn::VarStore, path: impl AsRef<Path>) -> Result<()> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let bytes = vars
        .iter()
        .map(|(n, t)| Ok((n.as_str(), to_bytes(n, t)?)))
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::tensor::serialize(bytes.iter().map(|(n, b)| (*n, b)), &None)
        .map_err(|e| Error::config(format!("weight serialisation failed: {e:?}")))?;
    write_atomically(path.as_ref(), &data)
}

/// The exact position of a [`SeededRng`] as JSON: its seed, stream and word position
/// (128-bit numbers as decimal strings, which JSON numbers cannot hold).
pub fn rng_state(rng: &SeededRng) -> serde_json::Value {
    let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "seed": seed,
        "stream": rng.get_stream().to_string(),
        "word_pos": rng.get_word_pos().to_string(),
    })
}

/// Rebuilds a [`SeededRng`] from [`rng_state`]'s JSON.
pub fn rng_from_state(state: &serde_json::Value) -> Result<SeededRng> {
    let bad = || Error::config(format!("malformed RNG state {state}"));
    let text = |k: &str| state.get(k).and_then(|v| v.as_str()).ok_or_else(bad);
    let hex = text("seed")?;
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    let stream: u64 = text("stream")?.parse().map_err(|_| bad())?;
    let word_pos: u128 = text("word_pos")?.parse().map_err(|_| bad())?;
    let mut rng = SeededRng::from_seed(seed);
    rng.set_stream(stream);
    rng.set_word_pos(word_pos);
    Ok(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::new(serde_json::json!({"epoch": 3, "x": 0.1f64 + 0.2}));
        c.extend(
            None,
            [(
                "trunk.0.weight".to_string(),
                Tensor::from_slice(&[1.0f32, 2.0, 3.0]).view([3, 1]),
            )],
        );
        c.extend(
            Some("optimizer"),
            [("first.0".to_string(), Tensor::from_slice(&[0.5f64]))],
        );
        c
    }

    #[test]
    fn round_trip_keeps_tensors_groups_and_state() {
        let c = sample();
        let back = Checkpoint::from_bytes(&c.to_bytes().unwrap(), Path::new("x")).unwrap();
        assert_eq!(back.state, c.state);
        assert_eq!(back.state["x"].as_f64(), Some(0.1 + 0.2));
        let model = back.group(None);
        assert_eq!(model.len(), 1);
        assert_eq!(model[0].0, "trunk.0.weight");
        assert!(model[0].1.equal(&c.tensors[0].1));
        let opt = back.group(Some("optimizer"));
        assert_eq!(opt[0].0, "first.0");
        assert_eq!(opt[0].1.kind(), Kind::Double);
    }

    #[test]
    fn corruption_is_a_typed_error() {
        let bytes = sample().to_bytes().unwrap();
        let p = Path::new("ckpt");
        // Flip one bit in the last tensor byte.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let truncated = &bytes[..bytes.len() - 3];
        for bad in [&flipped[..], truncated, b"not a checkpoint at all"] {
            let err = Checkpoint::from_bytes(bad, p).unwrap_err();
            assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
        }
        // A plain safetensors file (weights only) is not a resumable checkpoint.
        let plain =
            safetensors::tensor::serialize(std::iter::empty::<(&str, &Bytes)>(), &None).unwrap();
        assert!(matches!(
            Checkpoint::from_bytes(&plain, p),
            Err(Error::Checkpoint { .. })
        ));
    }

    /// Every single-bit flip anywhere in the file (header, JSON state, digest, tensor
    /// bytes) is refused, or (a flip the parser cannot see, such as in header padding)
    /// loads exactly the original. Version 1 accepted flips in the JSON state.
    #[test]
    fn every_single_bit_flip_is_refused() {
        let c = sample();
        let bytes = c.to_bytes().unwrap();
        let p = Path::new("ckpt");
        let mut accepted = 0;
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                match Checkpoint::from_bytes(&b, p) {
                    Err(Error::Checkpoint { .. }) => {}
                    Err(e) => panic!("byte {i} bit {bit}: untyped error {e}"),
                    Ok(back) => {
                        accepted += 1;
                        assert_eq!(back.state, c.state, "byte {i} bit {bit}");
                        assert_eq!(back.tensors.len(), c.tensors.len());
                        for ((na, ta), (nb, tb)) in back.tensors.iter().zip(&c.tensors) {
                            assert_eq!(na, nb);
                            assert!(ta.equal(tb), "byte {i} bit {bit}");
                        }
                    }
                }
            }
        }
        assert!(accepted < bytes.len(), "{accepted} flips accepted");
    }

    #[test]
    fn an_edited_state_is_refused() {
        let mut bytes = sample().to_bytes().unwrap();
        // Same length, so the header stays well-formed: only the digest can tell.
        let needle = br#"\"epoch\":3"#;
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("the state holds the epoch");
        bytes[at + needle.len() - 1] = b'9';
        let err = Checkpoint::from_bytes(&bytes, Path::new("c")).unwrap_err();
        assert!(err.to_string().contains("digest"), "{err}");
    }

    #[test]
    fn peek_reads_the_state_of_checkpoints_only() {
        let dir = std::env::temp_dir().join(format!("mtl-ckpt-peek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.safetensors");
        sample().save(&path).unwrap();
        assert_eq!(Checkpoint::peek_state(&path).unwrap(), sample().state);
        let csv = dir.join("data.csv");
        std::fs::write(&csv, "a,b\n1,2\n").unwrap();
        let plain = dir.join("w.safetensors");
        std::fs::write(
            &plain,
            safetensors::tensor::serialize(std::iter::empty::<(&str, &Bytes)>(), &None).unwrap(),
        )
        .unwrap();
        for other in [&csv, &plain] {
            let err = Checkpoint::peek_state(other).unwrap_err();
            assert!(err.to_string().contains("not an mtl checkpoint"), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_save_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("mtl-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.safetensors");
        sample().save(&path).unwrap();
        sample().save(&path).unwrap();
        assert!(Checkpoint::load(&path).is_ok());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("a.safetensors")]);
        assert!(matches!(
            Checkpoint::load(dir.join("missing")),
            Err(Error::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rng_state_resumes_the_stream() {
        let mut a = crate::derive_rng(9, "batches");
        for _ in 0..13 {
            let _: u32 = a.gen();
        }
        let mut b = rng_from_state(&rng_state(&a)).unwrap();
        let xa: Vec<u64> = (0..5).map(|_| a.gen()).collect();
        let xb: Vec<u64> = (0..5).map(|_| b.gen()).collect();
        assert_eq!(xa, xb);
        assert!(rng_from_state(&serde_json::json!({"seed": "zz"})).is_err());
    }
}
