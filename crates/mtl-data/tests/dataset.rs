//! Validation of `MultiTaskDataset::new`, splits and the standardizer.

use mtl_core::Error;
use mtl_data::{
    parse_csv, CsvSpec, CsvTarget, MultiTaskDataset, Standardizer, TargetKind, TaskData,
    MAX_CLASSES,
};
use ndarray::{array, Array1, Array2};

fn features(n: usize, f: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, f), |(r, c)| (r * f + c) as f32)
}

#[test]
fn rows_that_disagree_in_count_name_the_task() {
    let err = MultiTaskDataset::new(
        features(4, 2),
        vec![
            TaskData::classes("ok", array![0, 1, 0, 1], 2),
            TaskData::binary("short", array![0.0, 1.0, 1.0]),
        ],
    )
    .unwrap_err();
    match err {
        Error::RowCount {
            what,
            expected: 4,
            got: 3,
        } => assert!(what.contains("short"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn label_out_of_range_names_task_and_row() {
    let err = MultiTaskDataset::new(
        features(3, 1),
        vec![
            TaskData::binary("b", array![0.0, 1.0, 1.0]),
            TaskData::classes("c", array![0, 3, 1], 3),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                task: 1,
                row: 1,
                label: 3,
                classes: 3
            }
        ),
        "{err:?}"
    );
    let negative = MultiTaskDataset::new(
        features(2, 1),
        vec![TaskData::classes("c", array![-1, 0], 2)],
    );
    assert!(matches!(
        negative,
        Err(Error::LabelOutOfRange {
            row: 0,
            label: -1,
            ..
        })
    ));
}

/// A class count is the largest label plus one: a label of 99,999,999,999 asked the head
/// for 10¹¹ outputs (12.8 TB of weights), and one of i64::MAX wrapped the count to
/// −2⁶³ ("label 1 out of range 0..-9223372036854775808"). Both are refused by name.
#[test]
fn class_counts_beyond_the_bound_are_refused_naming_the_label() {
    let err = MultiTaskDataset::new(
        features(3, 1),
        vec![TaskData::classes("c", array![0, 5, 1], MAX_CLASSES + 1)],
    )
    .unwrap_err();
    assert!(err.to_string().contains("label 5 at row 1"), "{err}");
    // A count inferred as the largest label + 1, as readers do: i64::MAX + 1 used to
    // wrap to a negative count.
    for label in [99_999_999_999i64, i64::MAX] {
        let classes = label as usize + 1;
        let err = MultiTaskDataset::new(
            features(3, 1),
            vec![TaskData::classes("c", array![1, label, 0], classes)],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(&format!("label {label} at row 1")), "{err}");
        assert!(!err.contains("0..-"), "{err}");
    }
    // Through the CSV reader the same labels are refused by name.
    let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Classes)]);
    for label in ["99999999999", &i64::MAX.to_string()] {
        let csv = format!("x,y\n0.5,1\n1.5,{label}\n2.5,0\n");
        let message = parse_csv(csv.as_bytes(), &spec).unwrap_err().to_string();
        assert!(message.contains(label), "{message}");
        assert!(!message.contains("0..-"), "{message}");
    }
    // At the bound itself, a dataset is fine.
    let ok = MultiTaskDataset::new(
        features(2, 1),
        vec![TaskData::classes("c", array![0, 1], MAX_CLASSES)],
    );
    assert!(ok.is_ok());
}

#[test]
fn out_of_range_label_on_an_unlabelled_row_is_ignored() {
    let ds = MultiTaskDataset::new(
        features(2, 1),
        vec![TaskData::classes("c", array![0, 99], 2).with_mask(array![true, false])],
    )
    .unwrap();
    assert_eq!(ds.tasks()[0].labelled(), 1);
}

#[test]
fn nan_and_inf_features_name_row_and_column() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = features(3, 4);
        x[[2, 1]] = bad;
        let err =
            MultiTaskDataset::new(x, vec![TaskData::binary("b", Array1::zeros(3))]).unwrap_err();
        match err {
            Error::NonFinite {
                what, task: None, ..
            } => assert!(
                what.contains("row 2") && what.contains("column 1"),
                "{what}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn zero_tasks_is_a_task_count_error() {
    let err = MultiTaskDataset::new(features(3, 2), vec![]).unwrap_err();
    assert!(matches!(err, Error::TaskCount { got: 0, .. }), "{err:?}");
}

#[test]
fn zero_feature_columns_are_rejected() {
    let err = MultiTaskDataset::new(
        Array2::zeros((2, 0)),
        vec![TaskData::binary("b", Array1::zeros(2))],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
}

#[test]
fn split_sizes_are_exact_and_parts_disjoint() {
    let n = 103;
    let ds = MultiTaskDataset::new(
        features(n, 2),
        vec![TaskData::classes(
            "c",
            Array1::from_shape_fn(n, |i| (i % 3) as i64),
            3,
        )],
    )
    .unwrap();
    let rows = ds.split_rows(0.2, 0.1, 5).unwrap();
    // round(103 * 0.2) = 21, round(103 * 0.1) = 10.
    assert_eq!(
        (rows.train.len(), rows.validation.len(), rows.test.len()),
        (72, 21, 10)
    );
    let mut all: Vec<usize> = [&rows.train, &rows.validation, &rows.test]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..n).collect::<Vec<_>>());

    let split = ds.split(0.2, 0.1, 5).unwrap();
    assert_eq!(split.validation.len(), 21);
    // The parts carry the rows they claim: feature row r starts with 2r.
    for (part, idx) in [(&split.train, &rows.train), (&split.test, &rows.test)] {
        let firsts: Vec<usize> = part
            .features()
            .column(0)
            .iter()
            .map(|&v| v as usize / 2)
            .collect();
        assert_eq!(&firsts, idx);
    }
    assert_eq!(ds.split_rows(0.2, 0.1, 5).unwrap(), rows);
    assert_ne!(ds.split_rows(0.2, 0.1, 6).unwrap(), rows);
}

#[test]
fn standardizer_gives_zero_mean_unit_variance_on_train() {
    let n = 200;
    let x = Array2::from_shape_fn((n, 3), |(r, c)| match c {
        0 => 1000.0 + (r as f32 * 0.37).sin() * 50.0,
        1 => 7.0, // constant
        _ => (r % 13) as f32 * 0.01 - 2.0,
    });
    let ds = MultiTaskDataset::new(x, vec![TaskData::binary("b", Array1::zeros(n))]).unwrap();
    let split = ds.split(0.25, 0.0, 1).unwrap();
    let s = Standardizer::fit(&split.train);
    let train = s.apply(&split.train).unwrap();
    let t = train.features();
    for c in [0, 2] {
        let col = t.column(c);
        let mean = col.iter().map(|&v| v as f64).sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / col.len() as f64;
        assert!(mean.abs() < 1e-5, "column {c} mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "column {c} variance {var}");
    }
    assert_eq!(s.std()[1], 1.0);
    assert!(t.column(1).iter().all(|&v| v == 0.0));
    // Validation is scaled with the train statistics, so it is not exactly standard.
    let val = s.apply(&split.validation).unwrap();
    assert_eq!(val.len(), split.validation.len());
    let expected = (split.validation.features()[[0, 0]] - s.mean()[0]) / s.std()[0];
    assert_eq!(val.features()[[0, 0]], expected);
    assert_eq!(val.tasks(), split.validation.tasks());
}
