//! The grouped-data reader on the shipped data sets and on malformed files.

use mtl_data::{contraception, data_root, london_schools, radon, radon_uranium};
use mtl_data::{read_grouped_csv, GroupedCsv};
use std::io::Write;

fn root(name: &str) -> std::path::PathBuf {
    data_root(name).expect("the repository ships this data set")
}

#[test]
fn london_schools_has_65_schools_and_full_rank_indicators() {
    let d = london_schools(root("mlmrev")).unwrap();
    assert_eq!((d.n_tasks(), d.n_rows()), (65, 4059));
    // standLRT, sex=M, two vr bands beyond the reference, two intake bands.
    assert_eq!(
        d.feature_names,
        [
            "standLRT",
            "sex=M",
            "vr=mid 50%",
            "vr=top 25%",
            "intake=mid 50%",
            "intake=top 25%"
        ]
    );
    assert_eq!(d.tasks[0].name, "1");
    assert!(!d.binary);
    // Indicator columns hold only 0 and 1.
    for t in &d.tasks {
        assert!(t.x.column(1).iter().all(|&v| v == 0.0 || v == 1.0));
    }
}

#[test]
fn radon_and_contraception_load_with_their_covariates() {
    let r = radon(root("radon")).unwrap();
    assert_eq!((r.n_tasks(), r.n_rows(), r.n_features()), (85, 919, 1));
    let u = radon_uranium(root("radon")).unwrap();
    assert_eq!(u.len(), 85);
    let c = contraception(root("mlmrev")).unwrap();
    assert_eq!((c.n_tasks(), c.n_rows()), (60, 1934));
    assert!(c.binary);
    let ones: f64 = c.tasks.iter().map(|t| t.y.sum()).sum();
    assert!(ones > 500.0 && ones < 1000.0, "{ones} users");
}

#[test]
fn split_keeps_a_training_row_per_task_and_is_seeded() {
    let d = radon(root("radon")).unwrap();
    let (tr, te) = d.split(0.3, 7).unwrap();
    assert_eq!(tr.n_rows() + te.n_rows(), d.n_rows());
    assert!(tr.tasks.iter().all(|t| !t.y.is_empty()));
    assert_eq!(te.n_tasks(), d.n_tasks());
    assert_eq!(d.split(0.3, 7).unwrap().1, te);
    assert_ne!(d.split(0.3, 8).unwrap().1, te);
    assert!(d.split(1.0, 0).is_err());
    let (x, y, task) = d.pooled();
    assert_eq!((x.nrows(), y.len(), task.len()), (919, 919, 919));
}

struct TempCsv(std::path::PathBuf);
impl TempCsv {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for TempCsv {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file(text: &str) -> TempCsv {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mtl-grouped-{}-{}.csv",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap();
    TempCsv(path)
}

fn spec(path: &std::path::Path, positive: Option<&str>) -> GroupedCsv {
    GroupedCsv {
        path: path.to_path_buf(),
        task_column: "g".into(),
        target: "y".into(),
        positive: positive.map(String::from),
        features: vec!["a".into()],
    }
}

#[test]
fn bad_files_name_the_line() {
    let f = file("g,y,a\n1,0.5,2\n1,NA,3\n");
    let e = read_grouped_csv(&spec(f.path(), None))
        .unwrap_err()
        .to_string();
    assert!(e.contains(":3:") && e.contains("`y`"), "{e}");
    let f = file("g,y,a\n1,Y,2\n1,N,3\n2,maybe,1\n");
    let e = read_grouped_csv(&spec(f.path(), Some("Y")))
        .unwrap_err()
        .to_string();
    assert!(e.contains(":4:") && e.contains("maybe"), "{e}");
    let f = file("g,y,b\n1,0.5,2\n");
    let e = read_grouped_csv(&spec(f.path(), None))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no column `a`"), "{e}");
    let f = file("g,y,a\n");
    assert!(read_grouped_csv(&spec(f.path(), None)).is_err());
}
