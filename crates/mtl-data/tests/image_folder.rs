//! Image folders: classes by sub-folder, label maps beside them, and files that cannot
//! be used named.

use mtl_data::{read_image_folder, ImageFolder, JointData};

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-images-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn classes_and_label_maps_line_up_with_their_images() {
    let dir = temp("ok");
    for (class, shade) in [("b", 200u8), ("a", 10u8)] {
        for i in 0..3u8 {
            let sub = dir.join("images").join(class);
            std::fs::create_dir_all(&sub).unwrap();
            image::RgbImage::from_pixel(5, 4, image::Rgb([shade, i, 0]))
                .save(sub.join(format!("{i}.png")))
                .unwrap();
            let masks = dir.join("masks").join(class);
            std::fs::create_dir_all(&masks).unwrap();
            image::GrayImage::from_fn(5, 4, |x, _| image::Luma([(x % 2) as u8 + i]))
                .save(masks.join(format!("{i}.png")))
                .unwrap();
        }
    }
    std::fs::write(dir.join("images").join("a").join("notes.txt"), "skipped").unwrap();
    let folder = ImageFolder::new(dir.join("images")).with_masks(dir.join("masks"), "segment");
    let (data, classes) = read_image_folder(&folder).unwrap();
    assert_eq!(classes, ["a", "b"]);
    assert_eq!(data.len(), 6);
    assert_eq!(data.features().size(), [6, 3, 4, 5]);
    assert_eq!(data.task_names(), ["class", "segment"]);
    let labels = Vec::<i64>::try_from(&data.tasks()[0].values).unwrap();
    assert_eq!(labels, [0, 0, 0, 1, 1, 1]);
    // Image 4 is b/1.png: red 200/255, green 1/255; its label map is x % 2 + 1.
    let x = data.features();
    assert!((x.double_value(&[4, 0, 0, 0]) - 200.0 / 255.0).abs() < 1e-6);
    assert!((x.double_value(&[4, 1, 2, 3]) - 1.0 / 255.0).abs() < 1e-6);
    assert_eq!(data.tasks()[1].values.int64_value(&[4, 0, 3]), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_or_odd_files_are_named() {
    let dir = temp("bad");
    let sub = dir.join("x");
    std::fs::create_dir_all(&sub).unwrap();
    image::GrayImage::new(4, 4).save(sub.join("0.png")).unwrap();
    std::fs::write(sub.join("1.png"), b"not a png").unwrap();
    let err = read_image_folder(&ImageFolder::new(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1.png") && err.contains("not a readable PNG"),
        "{err}"
    );
    image::GrayImage::new(5, 4).save(sub.join("1.png")).unwrap();
    let err = read_image_folder(&ImageFolder::new(&dir))
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.png") && err.contains("5×4"), "{err}");
    let empty = temp("empty");
    std::fs::create_dir_all(empty.join("c")).unwrap();
    assert!(read_image_folder(&ImageFolder::new(&empty))
        .unwrap_err()
        .to_string()
        .contains("no PNG"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
}
