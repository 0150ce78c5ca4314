//! Saved model bundles and predictions: the spec, preprocessing and weights come back
//! exactly; targets come back in their own terms; a damaged bundle is a typed error.

use mtl::core::{Error, MlpBuilder, MmoeConfig};
use mtl::data::{MultiTaskDataset, Standardizer, TaskData};
use mtl::heads::RegressionLoss;
use mtl::prelude::*;
use mtl::{
    ArchSpec, Bundle, HeadSpec, ModelSpec, Predicted, Preprocessing, TargetEncoding, MANIFEST_FILE,
    WEIGHTS_FILE,
};
use ndarray::{array, Array2, Axis};
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-bundle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn close(a: ndarray::ArrayView2<f32>, b: ndarray::ArrayView2<f32>, tol: f32) -> bool {
    a.dim() == b.dim()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

fn rows(n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 5.0 - 1.0)
}

fn three_task_spec() -> ModelSpec {
    ModelSpec::hard_sharing(
        3,
        &[8, 6],
        vec![
            HeadSpec::Classification {
                name: "kind".into(),
                classes: 3,
            },
            HeadSpec::Binary {
                name: "flag".into(),
            },
            HeadSpec::Regression {
                name: "size".into(),
                outputs: 2,
                loss: RegressionLoss::Mse,
            },
        ],
    )
}

#[test]
fn a_bundle_round_trips_spec_preprocessing_and_weights() {
    let dir = temp("round-trip");
    seed_everything(3);
    let mut model = three_task_spec().build(tch::Device::Cpu).unwrap();
    let x = rows(50);
    let prep = Preprocessing {
        feature_names: Some(vec!["a".into(), "b".into(), "c".into()]),
        table: None,
        features: Some(
            Standardizer::from_parts(array![0.5, -1.0, 2.0], array![2.0, 1.0, 0.5]).unwrap(),
        ),
        targets: vec![
            TargetEncoding::Labels {
                labels: vec!["x".into(), "y".into(), "z".into()],
            },
            TargetEncoding::Identity,
            TargetEncoding::Standardized {
                scaler: Standardizer::from_parts(array![100.0, -3.0], array![10.0, 0.1]).unwrap(),
            },
        ],
    };
    model.set_preprocessing(prep.clone()).unwrap();
    let files = Bundle::save(&dir, &model, "pcgrad").unwrap();
    assert_eq!(files, [dir.join(MANIFEST_FILE), dir.join(WEIGHTS_FILE)]);

    let loaded = Bundle::load(&dir).unwrap();
    assert_eq!(loaded.method(), "pcgrad");
    assert_eq!(loaded.mtl_version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(loaded.model().spec(), model.spec());
    assert_eq!(loaded.model().preprocessing(), &prep);
    let (a, b) = (model.snapshot(), loaded.model().snapshot());
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na}");
    }
    let expected = model.predict(x.view()).unwrap();
    assert_eq!(loaded.predict(x.view()).unwrap(), expected);
    assert_eq!(expected[0].labels.as_deref().unwrap(), ["x", "y", "z"]);
    // Saving again over our own bundle is fine.
    Bundle::save(&dir, &model, "pcgrad").unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn predictions_undo_the_preprocessing() {
    seed_everything(4);
    let mut model = three_task_spec().build(tch::Device::Cpu).unwrap();
    let x = rows(9);
    let raw = model.predict(x.view()).unwrap();
    let features = Standardizer::from_parts(array![0.5, -1.0, 2.0], array![2.0, 1.0, 0.5]).unwrap();
    let targets = Standardizer::from_parts(array![1000.0, -3.0], array![50.0, 0.1]).unwrap();
    model
        .set_preprocessing(Preprocessing {
            feature_names: None,
            table: None,
            features: Some(features.clone()),
            targets: vec![
                TargetEncoding::Identity,
                TargetEncoding::Identity,
                TargetEncoding::Standardized {
                    scaler: targets.clone(),
                },
            ],
        })
        .unwrap();
    let out = model.predict(x.view()).unwrap();
    // The features are standardised first: predicting the raw model on standardised rows
    // gives the same classes; regression comes back through the target scaling.
    let bare = {
        let mut m = three_task_spec().build(tch::Device::Cpu).unwrap();
        m.restore(&model.snapshot()).unwrap();
        m.predict(features.transform(&x).unwrap().view()).unwrap()
    };
    assert_eq!(out[0], bare[0]);
    let (Predicted::Values(scaled), Predicted::Values(unscaled)) =
        (&out[2].output, &bare[2].output)
    else {
        panic!("values")
    };
    let back = targets.inverse_transform(unscaled).unwrap();
    assert!(
        close(scaled.view(), back.view(), 1e-5),
        "{scaled} vs {back}"
    );
    assert!(
        scaled.column(0).iter().all(|v| (v - 1000.0).abs() < 1000.0),
        "{scaled}"
    );
    assert_ne!(&raw[2], &out[2]);

    // Classes: probabilities sum to one and the class is the arg-max; binary decisions
    // follow the probability.
    let Predicted::Classes {
        probabilities,
        classes,
    } = &out[0].output
    else {
        panic!("classes")
    };
    for (p, &c) in probabilities.axis_iter(Axis(0)).zip(classes) {
        assert!((p.sum() - 1.0).abs() < 1e-5);
        assert!(p.iter().all(|&v| v <= p[c]));
    }
    let Predicted::Binary {
        probability,
        positive,
    } = &out[1].output
    else {
        panic!("binary")
    };
    assert_eq!(positive, &probability.mapv(|p| p > 0.5));
    let cols = out[2].columns().unwrap();
    assert_eq!(
        cols.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["size[0]", "size[1]"]
    );

    // Bad input: wrong width, non-finite values.
    assert!(matches!(
        model.predict(Array2::<f32>::zeros((2, 4)).view()),
        Err(Error::Shape { .. })
    ));
    let mut nan = rows(2);
    nan[[1, 2]] = f32::NAN;
    let e = model.predict(nan.view()).unwrap_err();
    assert!(
        matches!(e, Error::NonFinite { .. }) && e.to_string().contains("row 1"),
        "{e}"
    );
    // Encodings for another number of tasks are refused.
    assert!(model
        .set_preprocessing(Preprocessing {
            targets: vec![TargetEncoding::Identity],
            ..Default::default()
        })
        .is_err());
}

#[test]
fn a_large_input_is_predicted_in_chunks_with_the_same_answers() {
    seed_everything(5);
    let model = three_task_spec().build(tch::Device::Cpu).unwrap();
    let x = rows(10_000);
    let all = model.predict(x.view()).unwrap();
    let tail = model.predict(x.slice(ndarray::s![9_990.., ..])).unwrap();
    let Predicted::Values(v) = &all[2].output else {
        panic!()
    };
    let Predicted::Values(t) = &tail[2].output else {
        panic!()
    };
    assert_eq!(v.nrows(), 10_000);
    assert!(close(v.slice(ndarray::s![9_990.., ..]), t.view(), 1e-6));
    assert_eq!(
        model.predict(Array2::<f32>::zeros((0, 3)).view()).unwrap()[0].task,
        "kind"
    );
}

#[test]
fn an_mmoe_model_from_a_spec_round_trips_too() {
    let dir = temp("mmoe");
    let spec = ModelSpec {
        architecture: ArchSpec::Mmoe {
            config: MmoeConfig::new(3, 4, 2),
            expert: MlpBuilder::new([8]),
        },
        heads: vec![
            HeadSpec::Binary { name: "a".into() },
            HeadSpec::Regression {
                name: "b".into(),
                outputs: 1,
                loss: RegressionLoss::GaussianNll,
            },
        ],
        input: None,
    };
    seed_everything(6);
    let model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu).unwrap();
    Bundle::save(&dir, &model, "ew").unwrap();
    let x = rows(7);
    assert_eq!(
        Bundle::load(&dir).unwrap().predict(x.view()).unwrap(),
        model.predict(x.view()).unwrap()
    );
    // A spec whose gates do not match its heads is refused.
    let mut wrong = spec.clone();
    wrong.heads.pop();
    assert!(matches!(
        wrong.build(tch::Device::Cpu),
        Err(Error::TaskCount { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn models_without_a_spec_and_damaged_bundles_are_typed_errors() {
    // A hand-assembled model has no spec to rebuild it from.
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let trunk = MlpConfig::new([3, 4])
        .build(&(vs.root() / "trunk"))
        .unwrap();
    let head = mtl::heads::BinaryHead::new(&(task_path(&vs.root(), 0) / "head"), "b", 4).unwrap();
    let hand = MultiTaskModel::new(
        vs,
        HardSharing::new(trunk, 1).unwrap(),
        vec![Box::new(head)],
    )
    .unwrap();
    let dir = temp("damaged");
    let e = Bundle::save(&dir, &hand, "ew").unwrap_err();
    assert!(
        matches!(e, Error::Config(_)) && e.to_string().contains("ModelSpec"),
        "{e}"
    );

    // A bundle.json that is not ours is never overwritten.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(MANIFEST_FILE), "{\"name\": \"my package\"}").unwrap();
    let model = three_task_spec().build(tch::Device::Cpu).unwrap();
    let e = Bundle::save(&dir, &model, "ew").unwrap_err();
    assert!(e.to_string().contains("not an mtl bundle"), "{e}");
    assert_eq!(
        std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap(),
        "{\"name\": \"my package\"}"
    );
    std::fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();

    Bundle::save(&dir, &model, "ew").unwrap();
    let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE)).unwrap();
    let edit = |from: &str, to: &str| {
        assert!(manifest.contains(from), "{from}");
        std::fs::write(dir.join(MANIFEST_FILE), manifest.replacen(from, to, 1)).unwrap();
        Bundle::load(&dir).unwrap_err()
    };
    // An unknown key, another format, a spec that no longer fits the weights.
    let e = edit("\"method\"", "\"methd\": 1, \"method\"");
    assert!(
        matches!(e, Error::Parse { .. }) && e.to_string().contains("methd"),
        "{e}"
    );
    let e = edit("\"version\": 1", "\"version\": 9");
    assert!(matches!(e, Error::Checkpoint { .. }), "{e}");
    let e = edit("\"classes\": 3", "\"classes\": 4");
    assert!(
        matches!(e, Error::Checkpoint { .. }) && e.to_string().contains("task0.head"),
        "{e}"
    );
    let e = edit("\"weights.safetensors\"", "\"../weights.safetensors\"");
    assert!(matches!(e, Error::Checkpoint { .. }), "{e}");
    std::fs::write(dir.join(MANIFEST_FILE), &manifest).unwrap();
    Bundle::load(&dir).unwrap();

    // One flipped bit in the weights.
    let mut bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(dir.join(WEIGHTS_FILE), bytes).unwrap();
    let e = Bundle::load(&dir).unwrap_err();
    assert!(
        matches!(e, Error::Checkpoint { .. }) && e.to_string().contains("SHA-256"),
        "{e}"
    );
    let e = Bundle::load(dir.join("nowhere")).unwrap_err();
    assert!(e.to_string().contains("no model bundle"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_trained_model_predicts_what_it_learned() {
    // y = class of the first feature's sign; the bundle's predictions match the labels.
    let x = rows(200);
    let labels = x.column(0).mapv(|v| i64::from(v > 0.0));
    let data = MultiTaskDataset::new(
        x.clone(),
        vec![TaskData::classes("sign", labels.clone(), 2)],
    )
    .unwrap();
    let spec = ModelSpec::hard_sharing(
        3,
        &[16],
        vec![HeadSpec::for_task(&data.tasks()[0], RegressionLoss::Mse)],
    );
    seed_everything(0);
    let mut model = spec.build(tch::Device::Cpu).unwrap();
    Trainer::new(
        TrainerConfig::default()
            .epochs(30)
            .optimizer(OptimizerConfig::adam(1e-2))
            .progress(false),
    )
    .unwrap()
    .fit(&mut model, &data, None)
    .unwrap();
    let out = model.predict(x.view()).unwrap();
    let Predicted::Classes { classes, .. } = &out[0].output else {
        panic!()
    };
    let right = classes
        .iter()
        .zip(&labels)
        .filter(|(c, l)| **c as i64 == **l)
        .count();
    assert!(right >= 190, "{right}/200");
}

#[test]
fn categorical_encoders_and_embeddings_round_trip_through_a_bundle() {
    use mtl::data::{
        parse_csv_summary, CsvSpec, CsvTarget, EncoderOptions, TableEncoder, TargetKind,
    };
    let dir = temp("categorical");
    let mut text = String::from("age,city,job,y\n");
    for i in 0..60 {
        let city = ["paris", "rome", "oslo", "lima"][i % 4];
        let job = ["cook", "", "pilot"][i % 3];
        text += &format!("{},{city},{job},{}\n", 20 + i % 30, i % 2);
    }
    let spec = CsvSpec::new(vec![CsvTarget::new("y", TargetKind::Binary)]);
    let (data, summary) = parse_csv_summary(text.as_bytes(), &spec).unwrap();
    let options = EncoderOptions {
        one_hot_max: 3,
        ..EncoderOptions::default()
    };
    let encoder = TableEncoder::fit(&data, &summary.columns, &options).unwrap();
    let encoded = encoder.apply(&data, &summary.columns).unwrap();
    let input = encoder.embedding_input();
    // `city` (4 values) is embedded, `job` (3 with missing) one-hot.
    assert_eq!((input.dense, input.tables.len()), (4, 1));
    let scaler = Standardizer::fit(&encoded)
        .keep_last(input.tables.len())
        .unwrap();
    let mut spec = ModelSpec::hard_sharing(
        input.out_dim(),
        &[8],
        vec![HeadSpec::Binary { name: "y".into() }],
    );
    spec.input = Some(input);
    seed_everything(5);
    let mut model = spec.build(tch::Device::Cpu).unwrap();
    assert!(model
        .var_store()
        .variables()
        .keys()
        .any(|n| n.starts_with("input.embed0")));
    Trainer::new(TrainerConfig::default().epochs(2).progress(false))
        .unwrap()
        .fit(&mut model, &scaler.apply(&encoded).unwrap(), None)
        .unwrap();
    model
        .set_preprocessing(Preprocessing {
            feature_names: Some(encoder.feature_names()),
            features: Some(scaler),
            table: Some(encoder.clone()),
            ..Default::default()
        })
        .unwrap();
    Bundle::save(&dir, &model, "ew").unwrap();
    let loaded = Bundle::load(&dir).unwrap();
    assert_eq!(loaded.model().preprocessing(), model.preprocessing());
    assert_eq!(loaded.model().spec(), model.spec());
    // New rows by name, in another column order, with an unseen city and a missing job.
    let rows = dir.join("new.csv");
    std::fs::write(&rows, "job,y,city,age\npilot,0,rome,30\n,1,tokyo,41\n").unwrap();
    let from_csv = loaded.predict_csv(&rows).unwrap();
    let x = encoder.read_csv(&rows, None).unwrap();
    assert_eq!(x[[1, 4]], 0.0, "an unseen city is id 0 (unknown)");
    assert_eq!(from_csv, model.predict(x.view()).unwrap());
    // A number column holding text at prediction names the column, line and text.
    std::fs::write(&rows, "job,city,age\npilot,rome,30\ncook,rome,old\n").unwrap();
    let err = loaded.predict_csv(&rows).unwrap_err();
    assert!(
        matches!(&err, Error::Parse { line: 3, message, .. } if message.contains("`age`") && message.contains("`old`")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
