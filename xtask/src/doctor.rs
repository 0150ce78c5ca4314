//! `cargo xtask doctor`: what the libtorch set-up looks like and how to fix it.

use crate::libtorch::{cache_dir, cargo_config_path, gpu_visible, locate, TORCH_VERSION};
use crate::util::dir_size;
use anyhow::Result;

/// Prints the state of the set-up and, for each problem, the command that fixes it.
pub fn doctor() -> Result<()> {
    let mut fixes: Vec<(String, &str)> = Vec::new();
    match locate() {
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
    println!(
        "cargo config    {} ({})",
        cfg.display(),
        if cfg.exists() { "present" } else { "missing" }
    );
    if !cfg.exists() {
        fixes.push((
            "cargo is not pointed at libtorch".into(),
            "cargo xtask setup",
        ));
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
