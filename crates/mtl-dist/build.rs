//! Compiles the c10d shim against the libtorch `torch-sys` found (it reports its
//! library folder as `DEP_TCH_LIBTORCH_LIB`), with the vendored gloo headers.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/c10d_shim.cpp");
    println!("cargo:rerun-if-changed=gloo-include");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        // torch-sys in doc-only mode (docs.rs) reports no libtorch: nothing to link.
        println!(
            "cargo:warning=mtl-dist: torch-sys reported no libtorch; the c10d shim is not built"
        );
        return;
    };
    let root = lib
        .parent()
        .expect("libtorch's lib folder has a parent")
        .to_path_buf();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .include("gloo-include")
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .define("USE_C10D_GLOO", None)
        .define("USE_DISTRIBUTED", None)
        .define("GLOG_USE_GLOG_EXPORT", None)
        .file("csrc/c10d_shim.cpp")
        .compile("mtl_c10d");
    // The shim's c10d symbols live in libtorch_cpu (and c10); name them after the
    // static library so the linker resolves them.
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
