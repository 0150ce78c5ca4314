//! `read_csv`: parsing, missing labels, and errors that point at file, line and column.

use mtl_core::Error;
use mtl_data::{
    parse_csv, parse_csv_summary, read_csv, ColumnKind, CsvSpec, CsvTarget, MissingValues,
    TargetData, TargetKind,
};
use ndarray::array;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A CSV file in the temp dir with a unique name, removed on drop.
struct TempCsv(PathBuf);

impl TempCsv {
    fn new(text: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "mtl-data-test-{}-{}.csv",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        TempCsv(path)
    }
}

impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spec() -> CsvSpec {
    CsvSpec::new(vec![
        CsvTarget::new("kind", TargetKind::Classes),
        CsvTarget::named("price", "cost", TargetKind::Regression),
    ])
}

#[test]
fn reads_features_targets_and_masks() {
    let f = TempCsv::new("a,kind,b,price\n1,cat,2,0.5\n3,dog,4,\n5,,6,1.5\n7,cat,8,2.5\n");
    let ds = read_csv(&f.0, &spec()).unwrap();
    assert_eq!(
        ds.features(),
        &array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]
    );
    assert_eq!(ds.task_names(), ["kind", "cost"]);
    assert_eq!(
        ds.tasks()[0].data,
        TargetData::Classes {
            labels: array![0, 1, 0, 0],
            classes: 2
        }
    );
    assert_eq!(ds.class_names(0).unwrap(), ["cat", "dog"]);
    assert_eq!(ds.tasks()[0].mask, Some(array![true, true, false, true]));
    assert_eq!(
        ds.tasks()[1].data,
        TargetData::Regression(array![[0.5f32], [0.0], [1.5], [2.5]])
    );
    assert_eq!(ds.tasks()[1].mask, Some(array![true, false, true, true]));
    assert_eq!(ds.tasks()[1].labelled(), 3);
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let path = std::env::temp_dir().join("mtl-data-test-does-not-exist.csv");
    match read_csv(&path, &spec()) {
        Err(Error::Io { path: p, .. }) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_column_is_named() {
    let f = TempCsv::new("a,kind,b\n1,cat,2\n");
    let err = read_csv(&f.0, &spec()).unwrap_err();
    match &err {
        Error::Parse {
            line: 1, message, ..
        } => assert!(message.contains("`price`"), "{message}"),
        other => panic!("{other:?}"),
    }
    let mut s = spec();
    s.features = Some(vec!["a".into(), "nope".into()]);
    let f = TempCsv::new("a,kind,price\n1,cat,2\n");
    assert!(read_csv(&f.0, &s)
        .unwrap_err()
        .to_string()
        .contains("`nope`"));
}

#[test]
fn malformed_number_gives_line_column_text_and_file() {
    let f = TempCsv::new("a,kind,b,price\n1,cat,2,0.5\n3,dog,4,1.0\n5,cat,6x,1.5\n");
    // Undeclared, `b` would be categorical (numbers and text); declared numeric, the
    // text is an error.
    let mut declared = spec();
    declared.numeric = vec!["b".into()];
    let err = read_csv(&f.0, &declared).unwrap_err();
    match &err {
        Error::Parse {
            path,
            line,
            message,
        } => {
            assert_eq!(path, &f.0);
            assert_eq!(*line, 4);
            assert!(
                message.contains("`b`") && message.contains("6x"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let shown = err.to_string();
    let file_name = f.0.file_name().unwrap().to_str().unwrap();
    assert!(
        shown.contains(file_name) && shown.contains(":4:"),
        "{shown}"
    );

    let bad_target = TempCsv::new("a,kind,price\n1,cat,0.5\n2,dog,cheap\n");
    let err = read_csv(&bad_target.0, &spec()).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 3, .. }), "{err:?}");
}

#[test]
fn non_finite_and_empty_feature_cells_are_parse_errors() {
    let nan = TempCsv::new("a,kind,price\n1,cat,0.5\nNaN,dog,1\n");
    assert!(matches!(
        read_csv(&nan.0, &spec()),
        Err(Error::Parse { line: 3, .. })
    ));
    let empty = TempCsv::new("a,kind,price\n1,cat,0.5\n,dog,1\n");
    let mut s = spec();
    s.features = Some(vec!["a".into()]);
    assert!(matches!(
        read_csv(&empty.0, &s),
        Err(Error::Parse { line: 3, .. })
    ));
}

#[test]
fn ragged_row_is_a_parse_error_at_its_line() {
    let f = TempCsv::new("a,kind,price\n1,cat,0.5\n2,dog\n3,cat,1.5\n");
    let err = read_csv(&f.0, &spec()).unwrap_err();
    match err {
        Error::Parse {
            line: 3, message, ..
        } => assert!(message.contains("found 2"), "{message}"),
        other => panic!("{other:?}"),
    }
    let long = TempCsv::new("a,kind,price\n1,cat,0.5\n2,dog,1,9\n");
    assert!(matches!(
        read_csv(&long.0, &spec()),
        Err(Error::Parse { line: 3, .. })
    ));
}

#[test]
fn supplied_header_replaces_the_files() {
    // The file's header is one name short, as in the olive-oil file.
    let f = TempCsv::new(",kind,price\n10,1,cat,0.5\n11,2,dog,1.5\n");
    let mut s = spec();
    assert!(matches!(
        read_csv(&f.0, &s),
        Err(Error::Parse { line: 2, .. })
    ));
    s.header = Some(vec!["id".into(), "x".into(), "kind".into(), "price".into()]);
    s.exclude = vec!["id".into()];
    let ds = read_csv(&f.0, &s).unwrap();
    assert_eq!(ds.features(), &array![[1.0f32], [2.0]]);
}

#[test]
fn line_numbers_count_quoted_newlines() {
    let f = TempCsv::new("a,kind,price\n1,\"two\nlines\",0.5\n2,dog,oops\n");
    let err = read_csv(&f.0, &spec()).unwrap_err();
    assert!(matches!(err, Error::Parse { line: 4, .. }), "{err:?}");
}

#[test]
fn in_memory_csv_reports_bad_utf8_at_its_line() {
    let spec = CsvSpec::new(vec![CsvTarget::new("kind", TargetKind::Classes)]);
    let ok = mtl_data::parse_csv(b"a,kind\n1,cat\n2,dog\n", &spec).unwrap();
    assert_eq!(ok.class_names(0).unwrap(), ["cat", "dog"]);
    match mtl_data::parse_csv(b"a,kind\n1,cat\n2,d\xffg\n", &spec) {
        Err(Error::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!((path, line), (PathBuf::from("<memory>"), 3));
            assert!(message.contains("UTF-8"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// The message of a parse error at `line`, or a panic naming what came instead.
fn parse_message(result: mtl_core::Result<mtl_data::MultiTaskDataset>, line: u64) -> String {
    match result {
        Err(Error::Parse {
            line: l, message, ..
        }) if l == line => message,
        other => panic!("expected a parse error at line {line}, got {other:?}"),
    }
}

fn one_target(column: &str, kind: TargetKind) -> CsvSpec {
    CsvSpec::new(vec![CsvTarget::new(column, kind)])
}

#[test]
fn blank_feature_cell_in_the_first_row_is_an_error_not_a_dropped_column() {
    // Inferring from the first row alone dropped column `a` here (2 features -> 1).
    let spec = one_target("y", TargetKind::Regression);
    let message = parse_message(parse_csv(b"a,b,y\n,2,1\n3,4,0\n5,6,1\n", &spec), 2);
    assert!(
        message.contains("`a`") && message.contains("missing"),
        "{message}"
    );
    // The same blank further down is the same error at its own line.
    let message = parse_message(parse_csv(b"a,b,y\n1,2,1\n3,4,0\n,6,1\n", &spec), 4);
    assert!(message.contains("`a`"), "{message}");
}

#[test]
fn missing_feature_values_follow_the_declared_policy() {
    let mut spec = one_target("y", TargetKind::Regression);
    // `NA` is text until it is declared missing: `b` mixes numbers and text, so it is
    // categorical, and the summary names the text that made it so.
    let na = b"a,b,y\n1,2,1\n3,4,0\n5,NA,1\n";
    let (_, summary) = parse_csv_summary(na, &spec).unwrap();
    assert_eq!(summary.columns[1].mixed, Some((4, "NA".to_string())));
    assert!(summary.columns[1].describe().contains("na_values"));
    spec.na_values = vec!["NA".into()];
    let message = parse_message(parse_csv(na, &spec), 4);
    assert!(message.contains("missing"), "{message}");

    let text = b"a,b,y\n,2,1\n3,4,0\n5,NA,1\n";

    spec.missing = MissingValues::DropRows;
    let (ds, summary) = parse_csv_summary(text, &spec).unwrap();
    assert_eq!(ds.features(), &array![[3.0f32, 4.0]]);
    assert_eq!((summary.dropped_rows, summary.lines.clone()), (2, vec![3]));
    assert_eq!(
        summary.missing,
        [("a".to_string(), 1), ("b".to_string(), 1)]
    );
    assert_eq!(ds.tasks()[0].data, TargetData::Regression(array![[0.0f32]]));

    spec.missing = MissingValues::FillMean;
    let ds = parse_csv(text, &spec).unwrap();
    assert_eq!(
        ds.features(),
        &array![[4.0f32, 2.0], [3.0, 4.0], [5.0, 3.0]]
    );
}

#[test]
fn columns_are_typed_over_all_rows() {
    let spec = one_target("y", TargetKind::Binary);
    // Text first, a number later: one categorical column over both.
    let (ds, summary) = parse_csv_summary(b"a,n,y\n1,x,1\n2,7,0\n", &spec).unwrap();
    assert_eq!(ds.features().column(1).to_vec(), [0.0, 1.0]);
    assert_eq!(
        summary.columns[1].kind,
        ColumnKind::Categorical {
            categories: vec!["x".into(), "7".into()],
            exact: false
        }
    );
    // A text-only or empty column is a feature too; the empty one is constant.
    let (ds, summary) = parse_csv_summary(b"a,t,e,y\n1,x,,1\n2,,,0\n", &spec).unwrap();
    assert_eq!(ds.num_features(), 3);
    assert!(!summary.columns[1].is_constant());
    assert!(summary.columns[2].is_constant());
    assert!(summary.columns[2].describe().contains("constant"));
}

#[test]
fn a_class_code_outside_the_range_is_an_error_not_a_wider_head() {
    // Codes 0..2 and one stray 6 made a 7-class head.
    let spec = one_target("c", TargetKind::Classes);
    let message = parse_message(parse_csv(b"a,c\n1,0\n2,1\n3,2\n4,6\n5,1\n", &spec), 5);
    assert!(
        message.contains("`6`") && message.contains("`3`"),
        "{message}"
    );
    // A huge code is the same error, not a huge allocation.
    let message = parse_message(parse_csv(b"a,c\n1,0\n2,99999999999\n", &spec), 3);
    assert!(message.contains("99999999999"), "{message}");
    // 1-based codes need their first class named.
    let message = parse_message(parse_csv(b"a,c\n1,1\n2,2\n3,3\n", &spec), 4);
    assert!(message.contains("`0`"), "{message}");
    let spec = CsvSpec::new(vec![
        CsvTarget::new("c", TargetKind::Classes).with_first_class(1)
    ]);
    let ds = parse_csv(b"a,c\n1,1\n2,3\n3,2\n", &spec).unwrap();
    assert_eq!(
        ds.tasks()[0].data,
        TargetData::Classes {
            labels: array![0, 2, 1],
            classes: 3
        }
    );
    let message = parse_message(parse_csv(b"a,c\n1,1\n2,0\n", &spec), 3);
    assert!(message.contains("first_class"), "{message}");
}

#[test]
fn nan_or_a_fraction_in_a_class_column_is_an_error_not_a_class() {
    let spec = one_target("c", TargetKind::Classes);
    for bad in ["NaN", "1.5", "inf"] {
        let text = format!("a,c\n1,0\n2,1\n3,{bad}\n");
        let message = parse_message(parse_csv(text.as_bytes(), &spec), 4);
        assert!(message.contains(&format!("`{bad}`")), "{message}");
    }
    // Names with a NaN: also an error, not a class called NaN.
    parse_message(parse_csv(b"a,c\n1,cat\n2,NaN\n", &spec), 3);
    // Codes written as whole floats (as pandas writes them) are codes.
    let ds = parse_csv(b"a,c\n1,0.0\n2,1.0\n3,\n", &spec).unwrap();
    assert_eq!(ds.tasks()[0].data.output_dim(), 2);
    // Codes and names in one column.
    let message = parse_message(parse_csv(b"a,c\n1,0\n2,dog\n", &spec), 3);
    assert!(message.contains("mixes"), "{message}");
}

#[test]
fn declared_classes_fix_the_head_and_reject_other_labels() {
    let target = CsvTarget::new("c", TargetKind::Classes).with_classes(["low", "mid", "high"]);
    let spec = CsvSpec::new(vec![target]);
    let ds = parse_csv(b"a,c\n1,high\n2,low\n3,\n", &spec).unwrap();
    assert_eq!(
        ds.tasks()[0].data,
        TargetData::Classes {
            labels: array![2, 0, 0],
            classes: 3
        }
    );
    assert_eq!(ds.class_names(0).unwrap(), ["low", "mid", "high"]);
    let message = parse_message(parse_csv(b"a,c\n1,high\n2,huge\n", &spec), 3);
    assert!(
        message.contains("`huge`") && message.contains("low, mid, high"),
        "{message}"
    );
    // Declared integer codes: 7 is outside them.
    let spec = CsvSpec::new(vec![
        CsvTarget::new("c", TargetKind::Classes).with_classes(["0", "1", "2"])
    ]);
    parse_message(parse_csv(b"a,c\n1,0\n2,7\n", &spec), 3);
    // Classes are for class targets only, and must be distinct.
    let spec = CsvSpec::new(vec![
        CsvTarget::new("c", TargetKind::Regression).with_classes(["a"])
    ]);
    assert!(matches!(
        parse_csv(b"a,c\n1,0\n", &spec),
        Err(Error::Config(_))
    ));
    let spec = CsvSpec::new(vec![
        CsvTarget::new("c", TargetKind::Classes).with_classes(["a", "a"])
    ]);
    assert!(matches!(
        parse_csv(b"a,c\n1,a\n", &spec),
        Err(Error::Config(_))
    ));
}
