//! The shipped olive-oil data set loads with the documented shape and class counts.

use mtl_data::{data_dir, olive_oil, TargetData};

#[test]
fn olive_oil_has_572_rows_8_features_and_two_class_tasks() {
    let ds = olive_oil(data_dir()).unwrap();
    assert_eq!(ds.len(), 572);
    assert_eq!(ds.num_features(), 8);
    assert_eq!(ds.task_names(), ["region", "area"]);
    let classes: Vec<usize> = ds.tasks().iter().map(|t| t.data.output_dim()).collect();
    assert_eq!(classes, [3, 9]);
    assert!(ds.tasks().iter().all(|t| t.mask.is_none()));
    assert_eq!(ds.class_counts(0).unwrap(), [323, 98, 151]);
    assert_eq!(
        ds.class_counts(1).unwrap(),
        [25, 56, 206, 36, 65, 33, 50, 50, 51]
    );
    assert_eq!(ds.class_names(0).unwrap()[1], "Sardinia");
    assert_eq!(ds.class_names(1).unwrap()[0], "North-Apulia");
    assert_eq!(ds.class_names(1).unwrap()[8], "Umbria");
    // First row of the file: 1,North-Apulia,1,1,1075,75,226,7823,672,36,60,29
    assert_eq!(
        ds.features().row(0).to_vec(),
        [1075.0, 75.0, 226.0, 7823.0, 672.0, 36.0, 60.0, 29.0]
    );
}

#[test]
fn areas_nest_inside_regions() {
    let ds = olive_oil(data_dir()).unwrap();
    let (TargetData::Classes { labels: region, .. }, TargetData::Classes { labels: area, .. }) =
        (&ds.tasks()[0].data, &ds.tasks()[1].data)
    else {
        panic!("both tasks are classification tasks");
    };
    // Areas 0-3 are southern, 4-5 Sardinian, 6-8 northern.
    for (&r, &a) in region.iter().zip(area) {
        let expected = match a {
            0..=3 => 0,
            4..=5 => 1,
            _ => 2,
        };
        assert_eq!(r, expected, "area {a}");
    }
}

#[test]
fn a_directory_without_the_data_is_an_io_error() {
    let dir = std::env::temp_dir().join("mtl-data-test-no-data-here");
    assert!(matches!(olive_oil(&dir), Err(mtl_core::Error::Io { .. })));
}
