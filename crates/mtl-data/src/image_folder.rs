//! Images from a folder, as torchvision's `ImageFolder` reads them: one sub-folder per
//! class (`root/cat/001.png`, `root/dog/002.png`), classes numbered in the sorted order
//! of their folder names; optionally a second folder of per-pixel label maps with the
//! same relative paths (`masks/cat/001.png`), for a segmentation task on the same
//! images.
//!
//! PNG files are read (8-bit gray, gray-alpha, RGB or RGBA; 16-bit is converted to 8);
//! every image must have the first image's size and channel count, since a batch is
//! one tensor. Features are `Float [N, C, H, W]` scaled to [0, 1] (torchvision's
//! `ToTensor`); a label map is one class per pixel, its gray value (`Int64 [N, H, W]`).
//! Files with other extensions are skipped; a file that cannot be decoded, or whose
//! size or channels differ, is an error naming it.

use crate::named::NamedArrays;
use crate::tensor_dataset::{TensorDataset, TensorTask};
use crate::DenseArray;
use mtl_core::{Error, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What [`read_image_folder`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    /// The folder of class sub-folders.
    pub root: PathBuf,
    /// The name of the class task (`"class"` by default).
    pub class_task: String,
    /// A folder of per-pixel label maps with the same relative paths, if any, and the
    /// name of that task.
    pub masks: Option<(PathBuf, String)>,
}

impl ImageFolder {
    /// The class sub-folders of `root`, as a task named `class`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ImageFolder {
            root: root.into(),
            class_task: "class".into(),
            masks: None,
        }
    }
    /// Adds a segmentation task named `task` from the label maps under `masks`.
    pub fn with_masks(mut self, masks: impl Into<PathBuf>, task: impl Into<String>) -> Self {
        self.masks = Some((masks.into(), task.into()));
        self
    }
}

/// One decoded image: its size, channels and 8-bit samples in row-major, interleaved
/// (HWC) order.
struct Decoded {
    width: u32,
    height: u32,
    channels: u8,
    samples: Vec<u8>,
}

fn decode(path: &Path) -> Result<Decoded> {
    let bad = |why: String| Error::config(format!("{}: {why}", path.display()));
    let img = image::open(path).map_err(|e| match e {
        image::ImageError::IoError(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => bad(format!("not a readable PNG image ({other})")),
    })?;
    let (width, height) = (img.width(), img.height());
    let (channels, samples) = match img.color().channel_count() {
        1 => (1, img.into_luma8().into_raw()),
        2 => (2, img.into_luma_alpha8().into_raw()),
        3 => (3, img.into_rgb8().into_raw()),
        _ => (4, img.into_rgba8().into_raw()),
    };
    Ok(Decoded {
        width,
        height,
        channels,
        samples,
    })
}

/// The PNG files of `dir`, sorted by name.
fn png_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if path.is_file() && png {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads `folder` into a [`TensorDataset`] with the class task (and the mask task when
/// given), returning the class names in class-id order too.
///
/// ```
/// use mtl_data::{read_image_folder, ImageFolder, JointData};
///
/// let dir = std::env::temp_dir().join(format!("mtl-doc-images-{}", std::process::id()));
/// for (class, shade) in [("dark", 20u8), ("light", 230u8)] {
///     std::fs::create_dir_all(dir.join(class)).unwrap();
///     for i in 0..2 {
///         let img = image::GrayImage::from_pixel(4, 3, image::Luma([shade + i]));
///         img.save(dir.join(class).join(format!("{i}.png"))).unwrap();
///     }
/// }
/// let (data, classes) = read_image_folder(&ImageFolder::new(&dir))?;
/// assert_eq!(classes, ["dark", "light"]);
/// assert_eq!(data.features().size(), [4, 1, 3, 4]);
/// assert_eq!(data.task_names(), ["class"]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn read_image_folder(folder: &ImageFolder) -> Result<(TensorDataset, Vec<String>)> {
    let root = &folder.root;
    let io = |source| Error::Io {
        path: root.clone(),
        source,
    };
    let mut classes: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(root).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                classes.push(name.to_string());
            }
        }
    }
    classes.sort();
    let mut files: Vec<(PathBuf, i64)> = Vec::new();
    for (c, class) in classes.iter().enumerate() {
        files.extend(
            png_files(&root.join(class))?
                .into_iter()
                .map(|f| (f, c as i64)),
        );
    }
    if files.is_empty() {
        return Err(Error::config(format!(
            "{}: no PNG image in any class sub-folder (found {} sub-folders)",
            root.display(),
            classes.len()
        )));
    }
    let first = decode(&files[0].0)?;
    let (w, h, c) = (first.width, first.height, first.channels);
    let mut pixels: Vec<u8> = Vec::with_capacity(files.len() * first.samples.len());
    let mut masks: Vec<i64> = Vec::new();
    for (path, _) in &files {
        let img = if pixels.is_empty() {
            first.samples.clone()
        } else {
            let d = decode(path)?;
            if (d.width, d.height, d.channels) != (w, h, c) {
                return Err(Error::shape(
                    format!("image {}", path.display()),
                    format!("{w}×{h} with {c} channels (as {})", files[0].0.display()),
                    format!("{}×{} with {} channels", d.width, d.height, d.channels),
                ));
            }
            d.samples
        };
        pixels.extend(img);
        if let Some((mask_root, _)) = &folder.masks {
            let rel = path.strip_prefix(root).unwrap_or(path);
            let mask_path = mask_root.join(rel);
            let m = decode(&mask_path)?;
            if (m.width, m.height, m.channels) != (w, h, 1) {
                return Err(Error::shape(
                    format!("label map {}", mask_path.display()),
                    format!("a {w}×{h} gray image, one class per pixel"),
                    format!("{}×{} with {} channels", m.width, m.height, m.channels),
                ));
            }
            masks.extend(m.samples.iter().map(|&v| i64::from(v)));
        }
    }
    let n = files.len() as i64;
    let (h, w, c) = (i64::from(h), i64::from(w), i64::from(c));
    let features = Tensor::from_slice(&pixels)
        .f_view([n, h, w, c])?
        .f_permute([0, 3, 1, 2])?
        .f_to_kind(tch::Kind::Float)?
        .f_div_scalar(255.0)?
        .f_contiguous()?;
    let labels: Vec<i64> = files.iter().map(|(_, c)| *c).collect();
    let mut tasks = vec![TensorTask::new(
        folder.class_task.clone(),
        Tensor::from_slice(&labels),
    )];
    if let Some((_, task)) = &folder.masks {
        tasks.push(TensorTask::new(
            task.clone(),
            Tensor::from_slice(&masks).f_view([n, h, w])?,
        ));
    }
    Ok((TensorDataset::new(features, tasks)?, classes))
}

/// [`read_image_folder`] as named arrays — `image` (`Float [N, C, H, W]`), the class
/// task's and, with masks, the mask task's — for readers of named arrays (`mtl train`'s
/// `[data] image_folder`).
pub fn image_folder_arrays(folder: &ImageFolder) -> Result<NamedArrays> {
    let (data, _) = read_image_folder(folder)?;
    let mut arrays = NamedArrays::default();
    arrays.push("image".into(), DenseArray::from_tensor(data.features())?)?;
    for task in data.tasks() {
        arrays.push(task.name.clone(), DenseArray::from_tensor(&task.values)?)?;
    }
    Ok(arrays)
}
