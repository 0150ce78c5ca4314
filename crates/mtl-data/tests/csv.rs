//! `read_csv`: parsing, missing labels, and errors that point at file, line and column.

use mtl_core::Error;
use mtl_data::{read_csv, CsvSpec, CsvTarget, TargetData, TargetKind};
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
    let err = read_csv(&f.0, &spec()).unwrap_err();
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
            assert!(message.contains("Utf8"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
