//! `mtl-bench`: see `mtl-bench --help` and `cargo xtask bench`.

fn main() -> anyhow::Result<()> {
    mtl_bench::cli::main()
}
