//! The cargo settings that point a build at libtorch: `LIBTORCH` for `torch-sys`'s build
//! script, and an rpath so the binaries, tests and doctests find `libtorch_cpu.so` at
//! run time. `setup` writes them into this workspace's git-ignored
//! `.cargo/libtorch.toml`, merges them into another crate's `.cargo/config.toml`
//! (`--cargo-config DIR`) or prints them as shell exports (`--print-env`); `doctor`
//! reads them back.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use toml_edit::{Array, DocumentMut, Item, Table, Value};

/// The linker flag that records `lib` as a run-time search path.
fn rpath_arg(lib: &Path) -> String {
    format!("link-arg=-Wl,-rpath,{}", lib.display())
}

/// The text of this workspace's generated `.cargo/libtorch.toml`.
pub fn generated_text(root: &Path, lib: &Path) -> String {
    let root = root.display().to_string();
    let arg = rpath_arg(lib);
    format!(
        "# Written by `cargo xtask setup`; machine-specific, do not commit.\n\
         [env]\n\
         LIBTORCH = {root:?}\n\
         \n\
         [build]\n\
         # Binaries carry no rpath to libtorch otherwise, and cargo ignores a\n\
         # LD_LIBRARY_PATH set in [env] when it runs them.\n\
         rustflags = [\"-C\", {arg:?}]\n\
         # Doctests are linked by rustdoc, which does not read `rustflags`.\n\
         rustdocflags = [\"-C\", {arg:?}]\n"
    )
}

/// Where `--cargo-config DIR` writes: `DIR/.cargo/config.toml` for a crate or workspace
/// directory, `DIR/config.toml` when `DIR` is itself a `.cargo` directory.
pub fn config_file_in(dir: &Path) -> PathBuf {
    if dir.file_name().is_some_and(|n| n == ".cargo") {
        dir.join("config.toml")
    } else {
        dir.join(".cargo").join("config.toml")
    }
}

/// `existing` (the text of a cargo config, possibly empty) with `env.LIBTORCH` set to
/// `root` and the rpath to `lib` in `build.rustflags` and `build.rustdocflags`. Every
/// other setting and comment is kept; an rpath to an older libtorch (a directory that
/// held `libtorch_cpu.so` or whose name ends in `torch/lib`) is replaced rather than
/// added to, so running it again changes nothing.
pub fn merge(existing: &str, root: &Path, lib: &Path) -> Result<String> {
    let mut doc: DocumentMut = existing
        .parse()
        .context("the existing cargo config is not valid TOML")?;
    let env = table(&mut doc, "env")?;
    env.insert("LIBTORCH", toml_edit::value(root.display().to_string()));
    let build = table(&mut doc, "build")?;
    for key in ["rustflags", "rustdocflags"] {
        let flags = match build.get(key) {
            None => Vec::new(),
            Some(item) => flag_list(item).with_context(|| format!("build.{key}"))?,
        };
        let mut kept = without_libtorch_rpaths(&flags);
        kept.push("-C".into());
        kept.push(rpath_arg(lib));
        build.insert(key, toml_edit::value(Array::from_iter(kept)));
    }
    Ok(doc.to_string())
}

/// Writes [`merge`] of the config file under `dir` (created when absent); returns the
/// file and whether it changed.
pub fn merge_into(dir: &Path, root: &Path, lib: &Path) -> Result<(PathBuf, bool)> {
    if !dir.is_dir() {
        bail!("--cargo-config {}: no such directory", dir.display());
    }
    let path = config_file_in(dir);
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let merged = merge(&existing, root, lib).with_context(|| format!("{}", path.display()))?;
    if merged == existing {
        return Ok((path, false));
    }
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    // Temp file and rename: an interrupted write never leaves the user's config torn.
    let tmp = parent.join(format!(".config.toml.tmp{}", std::process::id()));
    std::fs::write(&tmp, &merged).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok((path, true))
}

/// Shell lines that make a build and its binaries find libtorch without any cargo
/// config: `eval "$(cargo xtask setup --print-env)"`.
pub fn env_lines(root: &Path, lib: &Path) -> String {
    let var = if cfg!(target_os = "macos") {
        "DYLD_LIBRARY_PATH"
    } else {
        "LD_LIBRARY_PATH"
    };
    format!(
        "export LIBTORCH={}\nexport {var}={}${{{var}:+:${var}}}\n",
        shell_quote(&root.display().to_string()),
        shell_quote(&lib.display().to_string()),
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What a cargo config says about libtorch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// `env.LIBTORCH`.
    pub libtorch: Option<PathBuf>,
    /// The rpath directories in `build.rustflags`.
    pub rpaths: Vec<PathBuf>,
    /// Whether `build.rustdocflags` has an rpath too (doctests need it).
    pub rustdoc_rpath: bool,
}

/// Reads the libtorch settings of a cargo config's text.
pub fn read_settings(text: &str) -> Result<Settings> {
    let doc: DocumentMut = text.parse().context("not valid TOML")?;
    let libtorch = match doc.get("env").and_then(|e| e.get("LIBTORCH")) {
        None => None,
        // `LIBTORCH = "..."` or `LIBTORCH = { value = "..." }`.
        Some(item) => Some(PathBuf::from(
            item.as_str()
                .or_else(|| item.get("value").and_then(Item::as_str))
                .context("env.LIBTORCH is not a string")?,
        )),
    };
    let flags = |key: &str| -> Result<Vec<String>> {
        match doc.get("build").and_then(|b| b.get(key)) {
            None => Ok(Vec::new()),
            Some(item) => flag_list(item).with_context(|| format!("build.{key}")),
        }
    };
    Ok(Settings {
        libtorch,
        rpaths: rpaths(&flags("rustflags")?),
        rustdoc_rpath: !rpaths(&flags("rustdocflags")?).is_empty(),
    })
}

fn table<'a>(doc: &'a mut DocumentMut, key: &str) -> Result<&'a mut Table> {
    doc.entry(key)
        .or_insert(toml_edit::table())
        .as_table_mut()
        .with_context(|| format!("`{key}` in the cargo config is not a table"))
}

/// A flags setting as a list: cargo takes an array of strings or one string split at
/// whitespace.
fn flag_list(item: &Item) -> Result<Vec<String>> {
    match item.as_value() {
        Some(Value::String(s)) => Ok(s.value().split_whitespace().map(String::from).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .context("a flag is not a string")
            })
            .collect(),
        _ => bail!("expected a string or an array of strings"),
    }
}

/// The directories of `-C link-arg=-Wl,-rpath,DIR` flags (also the `-Clink-arg=` form).
fn rpaths(flags: &[String]) -> Vec<PathBuf> {
    flags.iter().filter_map(|f| rpath_of(f)).collect()
}

fn rpath_of(flag: &str) -> Option<PathBuf> {
    let arg = flag.strip_prefix("-C").unwrap_or(flag);
    arg.strip_prefix("link-arg=-Wl,-rpath,").map(PathBuf::from)
}

/// `flags` without the rpaths that point at a libtorch, and without the `-C` before each.
fn without_libtorch_rpaths(flags: &[String]) -> Vec<String> {
    let is_libtorch =
        |dir: &Path| dir.join("libtorch_cpu.so").exists() || dir.ends_with("torch/lib");
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for flag in flags {
        match rpath_of(flag) {
            Some(dir) if is_libtorch(&dir) => {
                // `-C` and its argument are separate entries in the usual form.
                if !flag.starts_with("-C") && out.last().is_some_and(|f| f == "-C") {
                    out.pop();
                }
            }
            _ => out.push(flag.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/opt/venv/lib/python3.11/site-packages/torch";
    const LIB: &str = "/opt/venv/lib/python3.11/site-packages/torch/lib";

    fn merged(existing: &str) -> String {
        merge(existing, Path::new(ROOT), Path::new(LIB)).unwrap()
    }

    #[test]
    fn merge_into_an_empty_config_writes_libtorch_and_both_rpaths() {
        let text = merged("");
        let s = read_settings(&text).unwrap();
        assert_eq!(s.libtorch.as_deref(), Some(Path::new(ROOT)));
        assert_eq!(s.rpaths, [PathBuf::from(LIB)]);
        assert!(s.rustdoc_rpath);
    }

    #[test]
    fn merge_keeps_every_other_setting_and_comment() {
        let existing = "\
# my settings
[alias]
b = \"build --release\"

[env]
RUST_LOG = \"info\" # keep me

[build]
rustflags = [\"-C\", \"target-cpu=native\"]
jobs = 4
";
        let text = merged(existing);
        for kept in [
            "# my settings",
            "b = \"build --release\"",
            "RUST_LOG = \"info\" # keep me",
            "jobs = 4",
            "\"target-cpu=native\"",
        ] {
            assert!(text.contains(kept), "lost `{kept}`:\n{text}");
        }
        let doc: DocumentMut = text.parse().unwrap();
        let flags = flag_list(&doc["build"]["rustflags"]).unwrap();
        assert_eq!(
            flags,
            [
                "-C",
                "target-cpu=native",
                "-C",
                &format!("link-arg=-Wl,-rpath,{LIB}")
            ]
        );
    }

    #[test]
    fn merge_is_idempotent_and_replaces_an_older_libtorch() {
        let once = merged(
            "[build]\nrustflags = \"-C link-arg=-Wl,-rpath,/old/torch/lib -C opt-level=2\"\n",
        );
        assert_eq!(merged(&once), once);
        let s = read_settings(&once).unwrap();
        assert_eq!(s.rpaths, [PathBuf::from(LIB)], "{once}");
        assert!(once.contains("opt-level=2"), "{once}");
        // An rpath that is not libtorch's stays.
        let other = merged("[build]\nrustflags = [\"-C\", \"link-arg=-Wl,-rpath,/opt/mylibs\"]\n");
        assert_eq!(
            read_settings(&other).unwrap().rpaths,
            [PathBuf::from("/opt/mylibs"), PathBuf::from(LIB)]
        );
    }

    #[test]
    fn merge_refuses_a_config_it_cannot_read() {
        assert!(merge("[build\n", Path::new(ROOT), Path::new(LIB)).is_err());
        assert!(merge("build = 3\n", Path::new(ROOT), Path::new(LIB)).is_err());
        assert!(merge("[build]\nrustflags = 3\n", Path::new(ROOT), Path::new(LIB)).is_err());
    }

    #[test]
    fn the_generated_file_reads_back() {
        let s = read_settings(&generated_text(Path::new(ROOT), Path::new(LIB))).unwrap();
        assert_eq!(s.libtorch.as_deref(), Some(Path::new(ROOT)));
        assert_eq!(s.rpaths, [PathBuf::from(LIB)]);
        assert!(s.rustdoc_rpath);
        // The table form of an [env] entry.
        let t = read_settings("[env]\nLIBTORCH = { value = \"/x\", force = true }\n").unwrap();
        assert_eq!(t.libtorch.as_deref(), Some(Path::new("/x")));
    }

    #[test]
    fn env_lines_are_shell_exports() {
        let lines = env_lines(Path::new("/a b/torch"), Path::new("/a b/torch/lib"));
        assert!(
            lines.starts_with("export LIBTORCH='/a b/torch'\n"),
            "{lines}"
        );
        assert!(
            lines.contains("_LIBRARY_PATH='/a b/torch/lib'${"),
            "{lines}"
        );
        assert_eq!(
            env_lines(Path::new("it's"), Path::new("x")).lines().next(),
            Some("export LIBTORCH='it'\\''s'")
        );
    }

    #[test]
    fn config_file_in_a_crate_or_its_cargo_dir() {
        assert_eq!(
            config_file_in(Path::new("/p")),
            Path::new("/p/.cargo/config.toml")
        );
        assert_eq!(
            config_file_in(Path::new("/p/.cargo")),
            Path::new("/p/.cargo/config.toml")
        );
    }
}
