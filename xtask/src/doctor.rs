//! `cargo xtask doctor`: what the libtorch set-up looks like and how to fix it.

use crate::cargo_config::{read_settings, Settings};
use crate::libtorch::{
    cache_dir, cargo_config_path, gpu_visible, locate, read_version, TORCH_VERSION,
};
use crate::util::dir_size;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Prints the state of the set-up and, for each problem, the command that fixes it.
pub fn doctor() -> Result<()> {
    let mut fixes: Vec<(String, &str)> = Vec::new();
    let located = locate();
    match &located {
        Ok(Some(lt)) => {
            println!("libtorch        {} ({:?})", lt.root.display(), lt.source);
            println!("version         {}", lt.version);
            let cuda_so = lt.lib_dir().join("libtorch_cuda.so").exists();
            let loadable = lt.cuda_loadable();
            println!(
                "libtorch_cuda   {}",
                match (cuda_so, loadable) {
                    (false, _) => "absent (CPU-only build)",
                    (true, false) => "present, but its CUDA libraries are not installed",
                    (true, true) => "present and loadable (mtl-core loads it at device init)",
                }
            );
            let gpu = gpu_visible();
            println!("GPU visible     {}", if gpu { "yes" } else { "no" });
            if gpu && !loadable {
                fixes.push((
                    "a GPU is visible but libtorch cannot use it".into(),
                    "cargo xtask setup --cuda",
                ));
            }
        }
        Ok(None) => {
            println!("libtorch        not found");
            fixes.push((
                format!("libtorch {TORCH_VERSION} is not installed"),
                "cargo xtask setup",
            ));
        }
        Err(e) => {
            println!("libtorch        error: {e}");
            fixes.push((
                "LIBTORCH points at an unusable libtorch".into(),
                "unset LIBTORCH && cargo xtask setup",
            ));
        }
    }
    let cache = cache_dir();
    println!(
        "cache           {} ({:.2} GB)",
        cache.display(),
        dir_size(&cache) as f64 / 1e9
    );
    let cfg = cargo_config_path();
    let located_root = match &located {
        Ok(Some(lt)) => Some(lt.root.clone()),
        _ => None,
    };
    match std::fs::read_to_string(&cfg) {
        Ok(text) => {
            println!("cargo config    {}", cfg.display());
            match read_settings(&text) {
                Ok(settings) => {
                    for line in config_report(&settings, located_root.as_deref()) {
                        println!("  {}", line.text);
                        if let Some(problem) = line.problem {
                            fixes.push((problem, "cargo xtask setup"));
                        }
                    }
                }
                Err(e) => {
                    println!("  unreadable: {e:#}");
                    fixes.push((
                        format!("{} is not a valid cargo config", cfg.display()),
                        "cargo xtask setup",
                    ));
                }
            }
        }
        Err(_) => {
            println!("cargo config    {} (missing)", cfg.display());
            fixes.push((
                "cargo is not pointed at libtorch".into(),
                "cargo xtask setup",
            ));
        }
    }
    if fixes.is_empty() {
        println!("\nno problems found");
    } else {
        println!("\nproblems:");
        for (what, fix) in fixes {
            println!("  - {what}\n    fix: {fix}");
        }
    }
    Ok(())
}

/// One line of the cargo-config report, with the problem it shows, if any.
#[derive(Debug)]
struct ReportLine {
    text: String,
    problem: Option<String>,
}

fn line(text: String, problem: Option<String>) -> ReportLine {
    ReportLine { text, problem }
}

/// What `setup` wrote into `.cargo/libtorch.toml`, checked against the disk and against
/// the libtorch that would be used now (`located`).
fn config_report(s: &Settings, located: Option<&Path>) -> Vec<ReportLine> {
    let mut lines = Vec::new();
    match &s.libtorch {
        None => lines.push(line(
            "LIBTORCH        not set".into(),
            Some("the cargo config does not set LIBTORCH".into()),
        )),
        Some(root) => {
            let version = read_version(root);
            let problem = match (&version, located) {
                (None, _) => Some(format!(
                    "the cargo config's LIBTORCH {} is not a libtorch (missing or moved)",
                    root.display()
                )),
                (Some(v), _) if !v.starts_with(TORCH_VERSION) => Some(format!(
                    "the cargo config's LIBTORCH is libtorch {v}, not {TORCH_VERSION}"
                )),
                (Some(_), Some(l)) if !same_dir(l, root) => Some(format!(
                    "the cargo config's LIBTORCH differs from the libtorch found now ({})",
                    l.display()
                )),
                _ => None,
            };
            lines.push(line(
                format!(
                    "LIBTORCH        {} ({})",
                    root.display(),
                    version.as_deref().unwrap_or("no version file")
                ),
                problem,
            ));
        }
    }
    if s.rpaths.is_empty() {
        lines.push(line(
            "rpath           none in build.rustflags".into(),
            Some("binaries will not find libtorch at run time (no rpath)".into()),
        ));
    }
    for dir in &s.rpaths {
        let ok = dir.join("libtorch_cpu.so").exists() || dir.join("libtorch_cpu.dylib").exists();
        lines.push(line(
            format!(
                "rpath           {} ({})",
                dir.display(),
                if ok {
                    "holds libtorch_cpu"
                } else {
                    "no libtorch_cpu here"
                }
            ),
            (!ok).then(|| format!("the rpath {} holds no libtorch_cpu", dir.display())),
        ));
    }
    lines.push(line(
        format!(
            "doctest rpath   {}",
            if s.rustdoc_rpath { "set" } else { "missing" }
        ),
        (!s.rustdoc_rpath)
            .then(|| "doctests will not find libtorch (no rustdocflags rpath)".into()),
    ));
    lines
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| PathBuf::from(p));
    canon(a) == canon(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cargo_config::generated_text;

    fn problems(s: &Settings, located: Option<&Path>) -> Vec<String> {
        config_report(s, located)
            .into_iter()
            .filter_map(|l| l.problem)
            .collect()
    }

    #[test]
    fn doctor_reads_what_setup_wrote() {
        let dir = std::env::temp_dir().join(format!("xtask-doctor-{}", std::process::id()));
        let lib = dir.join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(
            dir.join("version.py"),
            format!("__version__ = '{TORCH_VERSION}+cpu'\n"),
        )
        .unwrap();
        std::fs::write(lib.join("libtorch_cpu.so"), b"").unwrap();
        let s = read_settings(&generated_text(&dir, &lib)).unwrap();
        let report = config_report(&s, Some(&dir));
        let text: Vec<&str> = report.iter().map(|l| l.text.as_str()).collect();
        assert!(text[0].contains(&dir.display().to_string()), "{text:?}");
        assert!(text[0].contains(TORCH_VERSION), "{text:?}");
        assert!(
            text.iter().any(|t| t.contains("holds libtorch_cpu")),
            "{text:?}"
        );
        assert!(problems(&s, Some(&dir)).is_empty());

        // Another libtorch found now, or the configured one gone: both are reported.
        assert_eq!(problems(&s, Some(Path::new("/elsewhere"))).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let gone = problems(&s, None);
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(gone[0].contains("missing or moved"), "{gone:?}");
        assert!(gone[1].contains("holds no libtorch_cpu"), "{gone:?}");
    }

    #[test]
    fn doctor_reports_a_config_without_rpaths() {
        let s = read_settings("[env]\nLIBTORCH = \"/nowhere\"\n").unwrap();
        let p = problems(&s, None);
        assert!(p.iter().any(|p| p.contains("no rpath")), "{p:?}");
        assert!(p.iter().any(|p| p.contains("doctests")), "{p:?}");
    }
}
