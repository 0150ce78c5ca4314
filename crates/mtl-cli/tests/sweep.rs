//! `mtl sweep` and `mtl group` end to end on tiny olive-oil runs (one epoch each):
//! a sweep writes its summary and restarts without redoing finished runs; an unknown
//! method is refused before anything runs, listing the valid names; `mtl group` trains
//! its groups and compares them with all-in-one and single-task training.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mtl-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The olive-oil example with one epoch, no plots, and `extra` targets.
fn tiny_config(dir: &Path, extra_targets: &str) -> PathBuf {
    let csv = mtl::data::data_dir().join("olive-oil/olive.csv");
    let text = format!(
        r#"
[data]
csv = "{}"
header = ["id", "area_name", "region_code", "area_code", "palmitic", "palmitoleic",
          "stearic", "oleic", "linoleic", "linolenic", "arachidic", "eicosenoic"]
exclude = ["id", "area_code"]
targets = [
  {{ column = "region_code", name = "region", kind = "classes", first_class = 1 }},
  {{ column = "area_name", name = "area", kind = "classes" }},
  {extra_targets}
]
validation = 0.2
test = 0.2
[model]
hidden = [16]
[train]
epochs = 1
batch_size = 64
seed = 3
optimizer = {{ kind = "adam", lr = 1e-2 }}
[output]
plots = false
# The sweep and group runs train baselines only where they need them.
baselines = true
"#,
        csv.display()
    );
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mtl(args: &[&str], config: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtl"))
        .args(&args[..1])
        .arg(config)
        .args(&args[1..])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_sweep_summarises_and_resumes_without_redoing_finished_runs() {
    let dir = temp("resume");
    let config = tiny_config(&dir, "");
    let out = dir.join("sweep");
    let args = [
        "sweep",
        "--methods",
        "pcgrad",
        "--seeds",
        "2",
        "--static-grid",
        "2",
        "--jobs",
        "2",
    ];
    let first = mtl(&args, &config, &out);
    assert!(first.status.success(), "{}", text(&first));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let rows = summary["summary"]["methods"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for n in ["ew", "pcgrad", "static*"] {
        assert!(names.contains(&n), "{names:?}");
    }
    for m in rows {
        assert_eq!(m["seeds"], serde_json::json!([3, 4]));
        assert!(m["delta_m"]["mean"].as_f64().unwrap().is_finite());
        assert!(m["delta_m"]["half_width"].as_f64().is_some());
    }
    // One grid point for two tasks at G = 2: equal weights.
    assert_eq!(summary["static_weights"], serde_json::json!([1.0, 1.0]));
    let png = std::fs::read(out.join("ranking.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("pick: "), "{stdout}");

    // An interruption: one run's report lost, the others finished.
    let kept = out.join("pcgrad/seed3/report.json");
    let kept_before = std::fs::metadata(&kept).unwrap().modified().unwrap();
    std::fs::remove_file(out.join("pcgrad/seed4/report.json")).unwrap();
    let again = mtl(&args, &config, &out);
    let log = text(&again);
    assert!(again.status.success(), "{log}");
    assert!(
        log.contains("pcgrad seed 3: finished earlier, kept"),
        "{log}"
    );
    assert!(log.contains("ew seed 4: finished earlier, kept"), "{log}");
    assert!(log.contains("pcgrad seed 4 finished in"), "{log}");
    assert_eq!(log.matches(" finished in ").count(), 1, "{log}");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        kept_before
    );
    assert!(out.join("pcgrad/seed4/report.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unknown_method_is_refused_before_anything_runs() {
    let dir = temp("unknown");
    let config = tiny_config(&dir, "");
    let out = dir.join("sweep");
    let o = mtl(
        &["sweep", "--methods", "pcgrad,pcgard", "--seeds", "2"],
        &config,
        &out,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown method `pcgard`"), "{err}");
    for valid in ["ew", "pcgrad", "mgda", "nash_mtl", "upgrad"] {
        assert!(err.contains(valid), "{err}");
    }
    assert!(!out.exists(), "nothing may run or be written");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn group_trains_the_grouping_and_compares_it() {
    let dir = temp("group");
    // A third task: the oleic acid share, a regression on the other fatty acids.
    let config = tiny_config(&dir, r#"{ column = "oleic", kind = "regression" },"#);
    let out = dir.join("group");
    let o = mtl(
        &["group", "--max-groups", "2", "--affinity-every", "2"],
        &config,
        &out,
    );
    let log = text(&o);
    assert!(o.status.success(), "{log}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("group.json")).unwrap()).unwrap();
    let z = report["affinity"].as_array().unwrap();
    assert_eq!(z.len(), 3);
    assert!(report["samples"].as_u64().unwrap() >= 1);
    let groups = report["grouping"]["groups"].as_array().unwrap();
    assert!((1..=2).contains(&groups.len()), "{groups:?}");
    let mut covered: Vec<u64> = groups
        .iter()
        .flat_map(|g| g.as_array().unwrap().iter().map(|i| i.as_u64().unwrap()))
        .collect();
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(covered, [0, 1, 2]);
    let arrangements = report["arrangements"].as_array().unwrap();
    let names: Vec<&str> = arrangements
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["single-task", "all-in-one", "grouping"]);
    assert_eq!(arrangements[0]["delta_m"]["delta_m"], 0.0);
    for a in arrangements {
        assert!(a["delta_m"]["delta_m"].as_f64().unwrap().is_finite());
    }
    // Every group of two tasks was trained in its own directory.
    let tasks = ["region", "area", "oleic"];
    for g in groups {
        let members: Vec<&str> = g
            .as_array()
            .unwrap()
            .iter()
            .map(|i| tasks[i.as_u64().unwrap() as usize])
            .collect();
        if members.len() == 2 {
            let d = out.join(format!("group-{}", members.join("+")));
            assert!(d.join("report.json").exists(), "{}", d.display());
        }
    }
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("| grouping |"),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn baselines_of_other_tasks_are_refused_before_training() {
    let dir = temp("baselines-from");
    let two = tiny_config(&dir, "");
    let out = dir.join("two");
    let o = mtl(&["train", "--baselines", "--quiet"], &two, &out);
    assert!(o.status.success(), "{}", text(&o));
    let three_dir = dir.join("three");
    std::fs::create_dir_all(&three_dir).unwrap();
    let three = tiny_config(&three_dir, r#"{ column = "oleic", kind = "regression" },"#);
    let baselines = out.join("baselines.json");
    let o = mtl(
        &["train", "--baselines-from", baselines.to_str().unwrap()],
        &three,
        &dir.join("three-out"),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(r#"the baselines evaluate tasks ["region", "area"], this run's are ["region", "area", "oleic"]"#),
        "{err}"
    );
    assert!(!dir.join("three-out/report.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
