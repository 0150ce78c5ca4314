//! Writes the generated dense scenes (`mtl_data::dense_scenes`: one-channel images with
//! a class, a depth and a surface normal per pixel) as an `.npz` archive, the data of
//! `examples/configs/dense_scenes.toml`:
//!
//!     cargo run -p mtl-cli --example dense_scenes_npz -- examples/configs/dense_scenes.npz
//!     cargo run -p mtl-cli --bin mtl -- train examples/configs/dense_scenes.toml
//!
//! Optional arguments after the path: the number of images (240) and their size (16).
//! NumPy reads the file as any `np.savez` archive (`x`, `segment`, `depth`, `normals`).

use mtl::data::{dense_scenes, write_npz, DenseArray, DenseScenesConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .ok_or("usage: dense_scenes_npz OUT.npz [IMAGES] [SIZE]")?;
    let images = args.next().map(|a| a.parse()).transpose()?.unwrap_or(240);
    let size = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    write(&out, images, size)?;
    println!("{out}: {images} scenes of {size}×{size}");
    Ok(())
}

/// Draws `images` scenes of `size`×`size` pixels (seed 0) and writes them to `out`.
fn write(out: &str, images: usize, size: usize) -> mtl::core::Result<()> {
    let data = dense_scenes(&DenseScenesConfig {
        images,
        size,
        ..Default::default()
    })?;
    let mut arrays = vec![("x".to_string(), DenseArray::from_tensor(data.features())?)];
    for t in data.tasks() {
        arrays.push((t.name.clone(), DenseArray::from_tensor(&t.values)?));
    }
    let named: Vec<(&str, &DenseArray)> = arrays.iter().map(|(n, a)| (n.as_str(), a)).collect();
    write_npz(out, &named)
}
