//! The data-set builders on small slices of the real files (`data_root` finds them),
//! and their errors on broken copies.

mod common;

use common::{gzip, slices};
use mtl_core::Error;
use mtl_data::{
    census_income, digits, linnerud, multi_mnist, CensusConfig, CensusGroup, LinnerudTargets,
    MultiMnistConfig, MultiTaskDataset, TargetData,
};
use ndarray::array;
use std::io::Read;
use std::path::PathBuf;

fn labels(ds: &MultiTaskDataset, k: usize) -> Vec<i64> {
    match &ds.tasks()[k].data {
        TargetData::Classes { labels, .. } => labels.to_vec(),
        other => panic!("classes expected, got {}", other.kind_name()),
    }
}

fn binary(ds: &MultiTaskDataset, k: usize) -> Vec<f32> {
    match &ds.tasks()[k].data {
        TargetData::Binary(v) => v.to_vec(),
        other => panic!("binary expected, got {}", other.kind_name()),
    }
}

/// A scratch data root, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mtl-builders-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempRoot(dir)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- MultiMNIST

#[test]
fn multi_mnist_small_is_well_formed_and_reproducible() {
    let root = slices("mnist").unwrap();
    let config = MultiMnistConfig::sized(300, 100).seed(3);
    let a = multi_mnist(&root, &config).unwrap();
    assert_eq!(
        (a.train.len(), a.validation.len(), a.test.len()),
        (300, 0, 100)
    );
    assert_eq!(a.train.num_features(), 28 * 28);
    assert_eq!(a.train.task_names(), ["left", "right"]);
    assert_eq!(a.train.class_names(1).unwrap()[7], "7");
    assert!(a.train.features().iter().all(|v| (0.0..=1.0).contains(v)));
    // Two digits' worth of ink: more lit pixels than a single MNIST digit shrunk by the
    // same 36 → 28 resize (its lit area times (28/36)²) has on average.
    let lit =
        |x: &ndarray::Array2<f32>| x.iter().filter(|&&v| v > 0.1).count() as f64 / x.nrows() as f64;
    let single = lit(mtl_data::mnist(&root).unwrap().train.features()) * (28.0f64 / 36.0).powi(2);
    let two = lit(a.train.features());
    assert!(
        two > 1.3 * single,
        "{two} lit pixels against {single} for one digit"
    );
    // Every class appears among 300 left and 300 right digits.
    for k in 0..2 {
        let mut seen = [false; 10];
        labels(&a.train, k)
            .iter()
            .for_each(|&l| seen[l as usize] = true);
        assert!(seen.iter().all(|&s| s), "task {k}");
    }
    let b = multi_mnist(&root, &config).unwrap();
    assert_eq!(a.train.features(), b.train.features());
    assert_eq!(labels(&a.test, 1), labels(&b.test, 1));
    let c = multi_mnist(&root, &config.clone().seed(4)).unwrap();
    assert_ne!(a.train.features(), c.train.features());
}

#[test]
fn multi_mnist_canvas_and_validation() {
    let root = slices("mnist").unwrap();
    let config = MultiMnistConfig {
        output_side: 36,
        ..MultiMnistConfig::sized(50, 10).validation(20)
    };
    let s = multi_mnist(&root, &config).unwrap();
    assert_eq!(
        (s.train.len(), s.validation.len(), s.test.len()),
        (50, 20, 10)
    );
    assert_eq!(s.train.num_features(), 36 * 36);
    // The left digit sits within 4 px of the top-left corner: the 4-pixel border at the
    // bottom and right edges can only hold the right digit, and the top and left edges
    // only the left digit, so no image is lit in all four corners' outer strips alone.
    let x = s.train.features();
    for row in x.rows() {
        let px = |r: usize, c: usize| row[r * 36 + c];
        assert!(
            (0..36).all(|c| px(35, c) == 0.0 || c >= 4),
            "bottom-left is empty"
        );
        assert!(
            (0..36).all(|r| px(r, 35) == 0.0 || r >= 4),
            "top-right is empty"
        );
    }
    let bad = MultiMnistConfig {
        output_side: 40,
        ..MultiMnistConfig::sized(5, 5)
    };
    assert!(matches!(multi_mnist(&root, &bad), Err(Error::Config(_))));
}

#[test]
fn multi_mnist_reports_a_broken_mnist_file() {
    let tmp = TempRoot::new("mnist");
    let real = slices("mnist").unwrap().join("mnist");
    let dir = tmp.0.join("mnist");
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(&real).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    let cut = dir.join("t10k-labels-idx1-ubyte.gz");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    match multi_mnist(&tmp.0, &MultiMnistConfig::sized(5, 5)) {
        Err(Error::Format { path, .. }) => assert_eq!(path, cut),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- Census-Income

#[test]
fn census_groups_on_the_first_rows() {
    let root = slices("census-income-kdd").unwrap();
    let c = census_income(
        &root,
        &CensusConfig::new(CensusGroup::Income).rows(3000, 1000),
    )
    .unwrap();
    let s = &c.split;
    assert_eq!(
        (s.train.len(), s.validation.len(), s.test.len()),
        (3000, 500, 500)
    );
    assert_eq!(s.train.task_names(), ["income", "never_married"]);
    assert_eq!(c.feature_names.len(), s.train.num_features());
    assert_eq!(&c.feature_names[..2], ["age", "wage_per_hour"]);
    for banned in ["instance_weight", "marital_stat", "income"] {
        assert!(
            !c.feature_names
                .iter()
                .any(|n| n.split('=').next() == Some(banned)),
            "{banned}"
        );
    }
    assert!(c.feature_names.iter().any(|n| n.starts_with("education=")));
    // One hot entry per categorical column: 42 columns less 7 numeric, the weight, the
    // income label and marital_stat.
    let row = s.train.features().row(0);
    let ones = row.iter().skip(7).filter(|&&v| v == 1.0).count();
    assert_eq!(ones, 32);
    // The first training row (age 73, widowed, low income).
    assert_eq!(row[0], 73.0);
    assert_eq!(binary(&s.train, 0)[0], 0.0);
    assert_eq!(binary(&s.train, 1)[0], 0.0);
    let income_rate = binary(&s.train, 0).iter().sum::<f32>() / 3000.0;
    let never_rate = binary(&s.train, 1).iter().sum::<f32>() / 3000.0;
    assert!((0.02..0.15).contains(&income_rate), "{income_rate}");
    assert!((0.3..0.6).contains(&never_rate), "{never_rate}");

    let e = census_income(
        &root,
        &CensusConfig::new(CensusGroup::Education).rows(3000, 1000),
    )
    .unwrap();
    assert_eq!(e.split.train.task_names(), ["education", "never_married"]);
    assert!(!e.feature_names.iter().any(|n| n.starts_with("education=")));
    // Group 2 drops exactly the education columns of group 1.
    let education_cols = c
        .feature_names
        .iter()
        .filter(|n| n.starts_with("education="))
        .count();
    assert_eq!(
        e.feature_names.len() + education_cols,
        c.feature_names.len()
    );
    // Same rows, same never-married labels in both groups; the seed picks the halves.
    assert_eq!(binary(&e.split.train, 1), binary(&s.train, 1));
    let other = census_income(
        &root,
        &CensusConfig::new(CensusGroup::Income)
            .rows(3000, 1000)
            .seed(1),
    )
    .unwrap();
    assert_ne!(binary(&other.split.test, 1), binary(&s.test, 1));
}

fn write_gz(path: &std::path::Path, text: &[u8]) {
    std::fs::write(path, gzip(text)).unwrap();
}

fn first_lines(path: &std::path::Path, n: usize) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .take(200_000)
        .read_to_string(&mut text)
        .unwrap_or_default();
    text.lines().take(n).map(|l| format!("{l}\n")).collect()
}

#[test]
fn census_errors_name_file_and_line() {
    let real = slices("census-income-kdd")
        .unwrap()
        .join("census-income-kdd");
    let train = first_lines(&real.join("census_income_1994_1995_train.csv.gz"), 5);
    let test = first_lines(&real.join("census_income_1994_1995_test.csv.gz"), 4);
    let tmp = TempRoot::new("census");
    let dir = tmp.0.join("census-income-kdd");
    std::fs::create_dir_all(&dir).unwrap();
    let train_path = dir.join("census_income_1994_1995_train.csv.gz");
    let test_path = dir.join("census_income_1994_1995_test.csv.gz");
    write_gz(&test_path, test.as_bytes());
    let config = CensusConfig::new(CensusGroup::Income);

    write_gz(&train_path, train.as_bytes());
    let ok = census_income(&tmp.0, &config).unwrap();
    assert_eq!(
        (
            ok.split.train.len(),
            ok.split.validation.len() + ok.split.test.len()
        ),
        (5, 4)
    );

    // A ragged row (a field dropped on line 3).
    let mut lines: Vec<String> = train.lines().map(str::to_string).collect();
    lines[2] = lines[2].split_once(", ").unwrap().1.to_string();
    write_gz(&train_path, (lines.join("\n") + "\n").as_bytes());
    match census_income(&tmp.0, &config) {
        Err(Error::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!((path, line), (train_path.clone(), 3));
            assert!(message.contains("expected 42"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // An unparsable number: age `seventy` on line 2.
    let mut lines: Vec<String> = train.lines().map(str::to_string).collect();
    lines[1] = lines[1].replacen("58,", "seventy,", 1);
    write_gz(&train_path, (lines.join("\n") + "\n").as_bytes());
    match census_income(&tmp.0, &config) {
        Err(Error::Parse { line, message, .. }) => {
            assert_eq!(line, 2);
            assert!(message.contains("`seventy`"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // A gzip stream cut short.
    let full = std::fs::read(real.join("census_income_1994_1995_test.csv.gz")).unwrap();
    std::fs::write(&train_path, &full[..40_000]).unwrap();
    match census_income(&tmp.0, &config) {
        Err(Error::Parse {
            path,
            line,
            message,
        }) => {
            assert_eq!(path, train_path);
            assert!(line > 100, "{line}");
            assert!(message.contains("gzip"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- scikit-learn sets

#[test]
fn linnerud_both_orientations() {
    let root = slices("sklearn-bundled").unwrap();
    let p = linnerud(&root, LinnerudTargets::Physiological).unwrap();
    assert_eq!(p.features().row(0), array![5.0f32, 162.0, 60.0]);
    assert_eq!(p.task_names(), ["Weight", "Waist", "Pulse"]);
    match &p.tasks()[0].data {
        TargetData::Regression(v) => assert_eq!((v.dim(), v[[1, 0]]), ((20, 1), 189.0)),
        other => panic!("{other:?}"),
    }
    let e = linnerud(&root, LinnerudTargets::Exercise).unwrap();
    assert_eq!(e.features().row(0), array![191.0f32, 36.0, 50.0]);
    assert_eq!(e.task_names(), ["Chins", "Situps", "Jumps"]);
    match &e.tasks()[1].data {
        TargetData::Regression(v) => assert_eq!((v.dim(), v[[0, 0]]), ((20, 1), 162.0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn digits_with_derived_tasks() {
    let ds = digits(slices("sklearn-bundled").unwrap()).unwrap();
    assert_eq!(
        ds.class_counts(0).unwrap(),
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    let d = labels(&ds, 0);
    let odd = binary(&ds, 1);
    let ge5 = binary(&ds, 2);
    for i in 0..ds.len() {
        assert_eq!(odd[i], (d[i] % 2) as f32);
        assert_eq!(ge5[i], if d[i] >= 5 { 1.0 } else { 0.0 });
    }
    assert!(ds.features().iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(ds.features().iter().cloned().fold(0.0f32, f32::max), 1.0);
}
