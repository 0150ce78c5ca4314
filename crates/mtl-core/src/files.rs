//! Files that are never seen half-written, and output locations that one run owns at a
//! time.
//!
//! Every file `mtl` writes (checkpoints, reports, plots, arrays) goes through
//! [`write_atomically`] or [`write_atomically_with`]: the content is written to a
//! temporary file in the same directory, `.NAME.tmpPID` (with the extension repeated,
//! `.NAME.tmpPID.EXT`, for writers that choose a format by extension), flushed, and
//! renamed over the target, so a reader sees the old file or the new one and a killed
//! run leaves the old one intact. A run killed between the two leaves the temporary
//! behind; [`clean_stale_temps`] removes those of processes that are no longer alive.
//!
//! [`OutputLock`] keeps a second run from writing into the same place at the same time
//! (a lock file holding the owner's pid, removed when the lock is dropped; one left by a
//! dead process is taken over with a warning), [`check_writable`] finds an unwritable
//! output directory before a run spends hours training rather than after, and
//! [`same_file`] tells whether two paths name one file, for refusing to write an output
//! over an input.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, source }
}

/// The directory `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::config(format!("`{}` is not a file path", path.display())))
}

/// The temporary file [`write_atomically`] writes before renaming it over `path`:
/// `.NAME.tmpPID` beside it.
pub fn temp_path(path: &Path) -> Result<PathBuf> {
    Ok(parent_dir(path).join(format!(".{}.tmp{}", file_name(path)?, std::process::id())))
}

/// Like [`temp_path`], with `path`'s extension repeated at the end
/// (`.losses.png.tmpPID.png`), for writers that pick a format from the extension.
pub fn temp_path_keeping_extension(path: &Path) -> Result<PathBuf> {
    let tmp = temp_path(path)?;
    Ok(match path.extension() {
        Some(ext) => {
            let mut name = tmp.into_os_string();
            name.push(".");
            name.push(ext);
            PathBuf::from(name)
        }
        None => tmp,
    })
}

/// The pid in the name of a temporary file written by this module, if `name` is one.
fn temp_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp")?;
    let tail = &rest[at + 4..];
    let digits: &str = tail.split('.').next()?;
    // `.NAME.tmpPID` or `.NAME.tmpPID.EXT` where EXT repeats NAME's extension.
    let after = &tail[digits.len()..];
    let extension_ok = after.is_empty() || {
        let ext = &after[1..];
        rest[..at].ends_with(&format!(".{ext}"))
    };
    if at == 0 || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    extension_ok.then(|| digits.parse().ok()).flatten()
}

/// Writes the file at `path` through `write`, which is handed a temporary path beside
/// it (keeping the extension, see [`temp_path_keeping_extension`]) and must create the
/// complete file there; the temporary is then flushed to disk and renamed over `path`,
/// so readers see either the old or the new content. On an error the temporary is
/// removed and `path` is untouched.
pub fn write_atomically_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    replace_through(&temp_path_keeping_extension(path)?, path, write)
}

/// Lets `write` fill `tmp`, flushes it, renames it over `path` and syncs the directory;
/// on an error removes `tmp` and leaves `path` as it was.
fn replace_through(tmp: &Path, path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    let result = (|| -> Result<()> {
        write(tmp)?;
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_error(tmp))?;
        std::fs::rename(tmp, path).map_err(io_error(path))?;
        // The rename itself is durable only once the directory entry is on disk.
        #[cfg(unix)]
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&dir))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Writes `bytes` to a temporary file beside `path` (`.NAME.tmpPID`), flushes it to disk,
/// renames it over `path` and syncs the directory, so readers see either the old or the
/// new content, never an empty or torn file.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("mtl-doc-atomic-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("report.json");
/// mtl_core::files::write_atomically(&path, b"{}")?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_through(&temp_path(path)?, path, |tmp| {
        std::fs::write(tmp, bytes).map_err(io_error(tmp))
    })
}

/// Whether the process `pid` is alive (on a platform where that cannot be asked, every
/// process counts as alive, so nothing of a running process is ever taken).
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        // EPERM: it exists but belongs to someone else.
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Removes the temporary files that [`write_atomically`] left in `dir` when the
/// process writing them was killed (those whose pid is no longer alive), and returns
/// them. A missing directory has none.
pub fn clean_stale_temps(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir)(e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_owner(&name) else {
            continue;
        };
        if process_alive(pid) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::warn!(path = %path.display(), pid, "removed a temporary file left by a killed run");
                removed.push(path);
            }
            // Another run cleaned it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path)(e)),
        }
    }
    Ok(removed)
}

/// Creates `dir` if needed and checks that files can be created, renamed and removed
/// in it, so an unwritable output directory is found before training, not after.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    if !std::fs::metadata(dir).map_err(io_error(dir))?.is_dir() {
        return Err(Error::config(format!(
            "`{}` is not a directory",
            dir.display()
        )));
    }
    let probe = dir.join(format!(".mtl-write-probe.{}", std::process::id()));
    write_atomically(&probe, b"probe")?;
    std::fs::remove_file(&probe).map_err(io_error(&probe))
}

/// Whether `a` and `b` name the same file: the same file on disk when both exist (hard
/// and symbolic links included), else the same name in the same (canonical) directory.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    normalised(a) == normalised(b)
}

/// Refuses outputs that would overwrite an input or each other: every output is
/// compared with every input and every other output by [`same_file`], and a clash is an
/// [`Error::Config`] naming both (each path comes with what it is, such as
/// `"checkpoint"` or `"the input CSV"`).
///
/// ```
/// use std::path::Path;
/// let csv = Path::new("data/train.csv");
/// let inputs = [("the input CSV", csv)];
/// let ok = [("report", Path::new("runs/a/report.json"))];
/// assert!(mtl_core::files::check_distinct(&inputs, &ok).is_ok());
/// let clash = [("checkpoint", Path::new("data/./train.csv"))];
/// let err = mtl_core::files::check_distinct(&inputs, &clash).unwrap_err();
/// assert!(err.to_string().contains("checkpoint"));
/// ```
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    for (i, (what, out)) in outputs.iter().enumerate() {
        let earlier = outputs[..i].iter().map(|(w, p)| (w, p, "another output"));
        let clash = inputs
            .iter()
            .map(|(w, p)| (w, p, "an input"))
            .chain(earlier)
            .find(|(_, p, _)| same_file(out, p));
        if let Some((other, other_path, kind)) = clash {
            return Err(Error::config(format!(
                "the {what} `{}` is the same file as {kind}, the {other} `{}`: writing it \
                 would destroy that; choose another path",
                out.display(),
                other_path.display()
            )));
        }
    }
    Ok(())
}

/// `path` with its directory made canonical (the file itself may not exist yet).
fn normalised(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = parent_dir(path);
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// A lock on an output location, held by this process until dropped: a file holding
/// the owner's pid, created only if absent, so a second run writing to the same place
/// fails at once with the first run's pid. A lock whose process has died (killed runs
/// cannot remove theirs) is taken over with a warning.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    /// The lock file of output directory `dir`: `dir/.mtl.lock`.
    pub fn for_dir(dir: &Path) -> PathBuf {
        dir.join(".mtl.lock")
    }

    /// The lock file of the single output file `path`: `.NAME.lock` beside it.
    pub fn for_file(path: &Path) -> Result<PathBuf> {
        Ok(parent_dir(path).join(format!(".{}.lock", file_name(path)?)))
    }

    /// Takes the lock file at `lock` (see [`OutputLock::for_dir`] and
    /// [`OutputLock::for_file`]) for `what` (named in the error), or fails with
    /// [`Error::Locked`] when a live process holds it.
    pub fn acquire(lock: impl Into<PathBuf>, what: &Path) -> Result<Self> {
        let path = lock.into();
        let me = std::process::id();
        // Two rounds: the second after removing a dead owner's lock.
        for _ in 0..2 {
            match Self::create(&path, me) {
                Ok(()) => return Ok(OutputLock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_error(&path)(e)),
            }
            let owner = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            match owner {
                Some(pid) if !process_alive(pid) => {
                    tracing::warn!(lock = %path.display(), pid, "taking over the lock of a run that is no longer alive");
                    eprintln!(
                        "warning: taking over {} from process {pid}, which is no longer running",
                        path.display()
                    );
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error(&path)(e)),
                    }
                }
                owner => {
                    return Err(Error::Locked {
                        path: what.to_path_buf(),
                        lock: path,
                        pid: owner,
                    })
                }
            }
        }
        Err(Error::Locked {
            path: what.to_path_buf(),
            lock: path,
            pid: None,
        })
    }

    /// Creates the lock holding `pid`, atomically: the content is written to a
    /// temporary file first and hard-linked into place, which fails if the lock exists,
    /// so no reader ever sees a lock without its pid.
    fn create(path: &Path, pid: u32) -> std::io::Result<()> {
        let tmp = parent_dir(path).join(format!(
            ".{}.tmp{pid}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        std::fs::write(&tmp, format!("{pid}\n"))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                // A file system without hard links: create-if-absent, then the pid.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)?;
                f.write_all(format!("{pid}\n").as_bytes())
            }
            other => other,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Only our own lock: never one a later run took over.
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|s| s.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mtl-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A pid that is not running: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!process_alive(pid));
        pid
    }

    #[test]
    fn temp_names_are_recognised_with_their_owner() {
        assert_eq!(temp_owner(".report.json.tmp123"), Some(123));
        assert_eq!(temp_owner(".losses.png.tmp77.png"), Some(77));
        assert_eq!(temp_owner(".mtl.lock.tmp5"), Some(5));
        for other in [
            "report.json",
            ".tmp12",
            ".a.tmp",
            ".a.tmpx1",
            "a.tmp12",
            ".losses.png.tmp77.jpg",
        ] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
        let p = Path::new("out/losses.png");
        let t = temp_path_keeping_extension(p).unwrap();
        assert_eq!(
            temp_owner(&t.file_name().unwrap().to_string_lossy()),
            Some(std::process::id())
        );
        assert_eq!(t.extension().unwrap(), "png");
    }

    #[test]
    fn writes_replace_whole_files_and_leave_no_temporary() {
        let dir = temp_dir("write");
        let path = dir.join("report.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        write_atomically_with(&dir.join("plot.png"), |tmp| {
            assert_eq!(tmp.extension().unwrap(), "png");
            std::fs::write(tmp, b"png").map_err(io_error(tmp))
        })
        .unwrap();
        // A failing writer leaves the old file and no temporary.
        let err = write_atomically_with(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(Error::config("drawing failed"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["plot.png", "report.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_cleaned() {
        let dir = temp_dir("stale");
        let dead = dead_pid();
        let stale = dir.join(format!(".report.json.tmp{dead}"));
        let stale_png = dir.join(format!(".losses.png.tmp{dead}.png"));
        let live = dir.join(format!(".report.json.tmp{}", std::process::id()));
        let unrelated = dir.join("notes.tmp1");
        for p in [&stale, &stale_png, &live, &unrelated] {
            std::fs::write(p, b"x").unwrap();
        }
        let mut removed = clean_stale_temps(&dir).unwrap();
        removed.sort();
        let mut expected = vec![stale.clone(), stale_png.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(live.exists() && unrelated.exists());
        assert!(clean_stale_temps(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locks_exclude_a_second_owner_and_stale_ones_are_taken_over() {
        let dir = temp_dir("lock");
        let lock_path = OutputLock::for_dir(&dir);
        let lock = OutputLock::acquire(&lock_path, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(&lock_path).unwrap().trim(),
            std::process::id().to_string()
        );
        // Held by a live process (this one): refused, naming the pid.
        match OutputLock::acquire(&lock_path, &dir).unwrap_err() {
            Error::Locked { pid, .. } => assert_eq!(pid, Some(std::process::id())),
            e => panic!("{e}"),
        }
        drop(lock);
        assert!(!lock_path.exists());
        // Left by a dead process: taken over.
        std::fs::write(&lock_path, format!("{}\n", dead_pid())).unwrap();
        let lock = OutputLock::acquire(&lock_path, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(lock);
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_directories_and_same_files_are_found() {
        let dir = temp_dir("writable");
        check_writable(&dir.join("new/sub")).unwrap();
        assert!(dir.join("new/sub").is_dir());
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_writable(&file).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.join("ro");
            std::fs::create_dir_all(&ro).unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
            // Root writes anywhere: only check when the permission bites.
            if std::fs::write(ro.join("t"), b"").is_err() {
                assert!(matches!(check_writable(&ro), Err(Error::Io { .. })));
            }
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
            let link = dir.join("link");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert!(same_file(&link, &file));
        }
        assert!(same_file(&dir.join(".").join("file"), &file));
        assert!(same_file(&dir.join("x.json"), &dir.join("./x.json")));
        assert!(!same_file(&dir.join("x.json"), &dir.join("y.json")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
