//! Categorical columns: typed over every row, encoded by encoders fitted on the
//! training rows (one-hot, embedding ids, hashing), unseen and missing categories, and
//! the errors of bad input.

use mtl_core::Error;
use mtl_data::{
    parse_csv_summary, ColumnEncoding, ColumnKind, CsvSpec, CsvTarget, EncoderOptions,
    HighCardinality, MissingValues, Standardizer, TableEncoder, TargetKind,
};
use ndarray::array;

fn spec() -> CsvSpec {
    CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Binary)])
}

fn parse_error(result: mtl_core::Result<impl std::fmt::Debug>) -> (u64, String) {
    match result {
        Err(Error::Parse { line, message, .. }) => (line, message),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn a_column_numeric_for_1000_rows_then_text_is_categorical() {
    let mut text = String::from("x,code,y\n");
    for i in 0..1000 {
        text += &format!("{i},{},1\n", i % 3);
    }
    text += "1000,unknown,0\n";
    let (ds, summary) = parse_csv_summary(text.as_bytes(), &spec()).unwrap();
    assert_eq!(ds.num_features(), 2);
    assert!(matches!(
        summary.columns[0].kind,
        ColumnKind::Numeric { .. }
    ));
    let ColumnKind::Categorical { categories, exact } = &summary.columns[1].kind else {
        panic!("{:?}", summary.columns[1]);
    };
    // The numbers before the text are categories too, keyed by their value.
    assert_eq!(categories, &["0", "1", "2", "unknown"]);
    assert!(!exact);
    assert_eq!(
        summary.columns[1].mixed,
        Some((1002, "unknown".to_string()))
    );
    assert_eq!(ds.features()[[1000, 1]], 3.0);
    assert_eq!(ds.features()[[4, 1]], 1.0);

    // Declared numeric: the text is an error naming the column, line and text.
    let mut declared = spec();
    declared.numeric = vec!["code".into()];
    let (line, message) = parse_error(parse_csv_summary(text.as_bytes(), &declared));
    assert_eq!(line, 1002);
    assert!(
        message.contains("`code`") && message.contains("`unknown`"),
        "{message}"
    );
}

#[test]
fn yes_no_words_are_boolean_and_codes_can_be_declared_categorical() {
    let mut s = spec();
    s.categorical = vec!["region".into()];
    let text = b"smoker,region,y\nYes,01,1\nno,2,0\nyes,1,1\n";
    let (ds, summary) = parse_csv_summary(text, &s).unwrap();
    assert_eq!(
        summary.columns[0].kind,
        ColumnKind::Boolean { indicator: false }
    );
    assert_eq!(ds.features().column(0).to_vec(), [1.0, 0.0, 1.0]);
    // Declared: the text as written, so `01` and `1` differ.
    assert_eq!(
        summary.columns[1].kind,
        ColumnKind::Categorical {
            categories: vec!["01".into(), "2".into(), "1".into()],
            exact: true
        }
    );
}

#[test]
fn a_declared_column_that_does_not_exist_names_it_and_the_columns() {
    let mut s = spec();
    s.categorical = vec!["colour".into()];
    let err = parse_csv_summary(b"a,b,y\n1,2,1\n", &s).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("`colour`") && message.contains("a, b, y"),
        "{message}"
    );
    let mut s = spec();
    s.numeric = vec!["a".into()];
    s.categorical = vec!["a".into()];
    assert!(matches!(
        parse_csv_summary(b"a,b,y\n1,2,1\n", &s),
        Err(Error::Config(_))
    ));
}

#[test]
fn unseen_categories_are_unknown_one_hot_and_embedded() {
    let text = b"city,y\nparis,1\nrome,0\nparis,1\noslo,0\n";
    let (ds, summary) = parse_csv_summary(text, &spec()).unwrap();
    let train = ds.subset(&[0, 1, 2]).unwrap();

    let one_hot = TableEncoder::fit(&train, &summary.columns, &EncoderOptions::default()).unwrap();
    assert_eq!(one_hot.feature_names(), ["city=paris", "city=rome"]);
    let all = one_hot.apply(&ds, &summary.columns).unwrap();
    assert_eq!(all.features().row(3).to_vec(), [0.0, 0.0]);
    assert!(one_hot.describe(&EncoderOptions::default())[0].contains("1 categories only outside"));

    let options = EncoderOptions {
        one_hot_max: 1,
        embedding_dim: Some(4),
        ..EncoderOptions::default()
    };
    let embedded = TableEncoder::fit(&train, &summary.columns, &options).unwrap();
    assert!(embedded.has_embeddings());
    let input = embedded.embedding_input();
    assert_eq!(
        (input.dense, input.tables[0].rows, input.tables[0].dim),
        (0, 3, 4)
    );
    let all = embedded.apply(&ds, &summary.columns).unwrap();
    // Ids: 1 paris, 2 rome, 0 unknown.
    assert_eq!(all.features().column(0).to_vec(), [1.0, 2.0, 1.0, 0.0]);
    let x = embedded.encode_csv(b"city\nrome\nlima\n\n", None);
    // A blank line is skipped; a missing city in a column trained without one is unknown.
    assert_eq!(x.unwrap(), array![[2.0f32], [0.0]]);
    let x = embedded
        .encode_csv(b"city,other\nrome,1\n,2\n", None)
        .unwrap();
    assert_eq!(x, array![[2.0f32], [0.0]]);

    // Hashing: a city never seen still lands in a learned bucket, the same every time.
    let hashed = TableEncoder::fit(
        &train,
        &summary.columns,
        &EncoderOptions {
            high_cardinality: HighCardinality::Hash,
            hash_buckets: 8,
            ..options.clone()
        },
    )
    .unwrap();
    let a = hashed.encode_csv(b"city\nlima\nlima\n", None).unwrap();
    assert_eq!(a[[0, 0]], a[[1, 0]]);
    assert!((1.0..=8.0).contains(&a[[0, 0]]));
}

#[test]
fn more_categories_than_one_hot_takes_switch_or_refuse() {
    let text = b"c,y\na,1\nb,0\nc,1\n";
    let (ds, summary) = parse_csv_summary(text, &spec()).unwrap();
    let options = EncoderOptions {
        one_hot_max: 2,
        ..EncoderOptions::default()
    };
    let e = TableEncoder::fit(&ds, &summary.columns, &options).unwrap();
    assert!(matches!(
        e.columns()[0].encoding,
        ColumnEncoding::Embedding { .. }
    ));
    assert!(e.describe(&options)[0].contains("more than one_hot_max = 2"));
    let refuse = EncoderOptions {
        high_cardinality: HighCardinality::Error,
        ..options
    };
    let err = TableEncoder::fit(&ds, &summary.columns, &refuse).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("`c`") && m.contains("3 categories")),
        "{err}"
    );
}

#[test]
fn missing_values_are_a_category_or_imputed_with_an_indicator() {
    let mut s = spec();
    s.missing = MissingValues::Indicator;
    let text = b"age,job,y\n20,,1\n,cook,0\n40,cook,1\n100,,0\n";
    let (ds, summary) = parse_csv_summary(text, &s).unwrap();
    assert_eq!(summary.features, ["age", "age=<missing>", "job"]);
    // Fitted on the first three rows: the mean age is 30, missing is a job category.
    let train = ds.subset(&[0, 1, 2]).unwrap();
    let e = TableEncoder::fit(&train, &summary.columns, &EncoderOptions::default()).unwrap();
    assert_eq!(
        e.feature_names(),
        ["age", "age=<missing>", "job=cook", "job=<missing>"]
    );
    let all = e.apply(&ds, &summary.columns).unwrap();
    assert_eq!(
        all.features(),
        &array![
            [20.0f32, 0.0, 0.0, 1.0],
            [30.0, 1.0, 1.0, 0.0],
            [40.0, 0.0, 1.0, 0.0],
            [100.0, 0.0, 0.0, 1.0]
        ]
    );
    let x = e.encode_csv(b"job,age\n,\ncook,50\n", None).unwrap();
    assert_eq!(x, array![[30.0f32, 1.0, 0.0, 1.0], [50.0, 0.0, 1.0, 0.0]]);

    // Without an indicator a missing number at prediction is an error naming it.
    let plain = parse_csv_summary(b"age,y\n20,1\n40,0\n", &spec()).unwrap();
    let e = TableEncoder::fit(&plain.0, &plain.1.columns, &EncoderOptions::default()).unwrap();
    let (line, message) = parse_error(e.encode_csv(b"age\n3\n\"\"\n", None));
    assert_eq!(line, 3);
    assert!(message.contains("`age`"), "{message}");
}

#[test]
fn text_in_a_column_numeric_in_training_names_column_row_and_value() {
    let (ds, summary) = parse_csv_summary(b"age,y\n20,1\n40,0\n", &spec()).unwrap();
    let e = TableEncoder::fit(&ds, &summary.columns, &EncoderOptions::default()).unwrap();
    let (line, message) = parse_error(e.encode_csv(b"age\n30\n31\nold\n", None));
    assert_eq!(line, 4);
    assert!(
        message.contains("`age`")
            && message.contains("numeric in training")
            && message.contains("`old`"),
        "{message}"
    );
    // A column the model reads, absent from the file.
    let (line, message) = parse_error(e.encode_csv(b"height\n3\n", None));
    assert_eq!(line, 1);
    assert!(
        message.contains("`age`") && message.contains("height"),
        "{message}"
    );
}

#[test]
fn a_constant_column_is_kept_and_reported() {
    let (ds, summary) = parse_csv_summary(b"a,k,y\n1,same,1\n2,same,0\n", &spec()).unwrap();
    assert_eq!(ds.num_features(), 2);
    assert!(summary.columns[1].is_constant());
    let e = TableEncoder::fit(&ds, &summary.columns, &EncoderOptions::default()).unwrap();
    assert!(e.describe(&EncoderOptions::default())[1].contains("constant"));
}

#[test]
fn the_encoder_and_unscaled_ids_survive_serialisation() {
    let text = b"n,c,y\n1,a,1\n2,b,0\n3,c,1\n";
    let (ds, summary) = parse_csv_summary(text, &spec()).unwrap();
    let options = EncoderOptions {
        one_hot_max: 1,
        ..EncoderOptions::default()
    };
    let e = TableEncoder::fit(&ds, &summary.columns, &options).unwrap();
    let json = serde_json::to_string(&e).unwrap();
    let back: TableEncoder = serde_json::from_str(&json).unwrap();
    let rows = b"c,n\nb,5\nz,6\n";
    assert_eq!(
        back.encode_csv(rows, None).unwrap(),
        e.encode_csv(rows, None).unwrap()
    );

    let encoded = e.apply(&ds, &summary.columns).unwrap();
    let scaler = Standardizer::fit(&encoded)
        .with_clip(1.0)
        .unwrap()
        .keep_last(1)
        .unwrap();
    let scaled = scaler.apply(&encoded).unwrap();
    assert_eq!(scaled.features().column(1).to_vec(), [1.0, 2.0, 3.0]);
    let json = serde_json::to_string(&scaler).unwrap();
    assert_eq!(serde_json::from_str::<Standardizer>(&json).unwrap(), scaler);
}

#[test]
fn a_binary_target_from_text_labels() {
    let target = CsvTarget::new("income", TargetKind::Binary).with_positive(["50000+."]);
    let s = CsvSpec::new(vec![target]);
    let (ds, _) = parse_csv_summary(b"a,income\n1,- 50000.\n2,50000+.\n3,\n", &s).unwrap();
    assert_eq!(ds.tasks()[0].labelled(), 2);
}

#[test]
fn a_headerless_file_takes_its_names_from_the_spec() {
    let mut s = spec();
    s.headerless = true;
    assert!(matches!(
        parse_csv_summary(b"1,1\n2,0\n", &s),
        Err(Error::Config(_))
    ));
    s.header = Some(vec!["a".into(), "y".into()]);
    let (ds, _) = parse_csv_summary(b"1,1\n2,0\n", &s).unwrap();
    assert_eq!(ds.len(), 2);
}
