//! The run report: its JSON schema round-trips with every section filled, and its plots
//! are written as PNG files.

mod common;

use common::{config, model, synthetic, torch_lock};
use mtl::prelude::*;
use mtl::DiagnosticsConfig;

fn full_report() -> RunReport {
    let data = synthetic(96, 41);
    let split = data.split(0.25, 0.0, 2).unwrap();
    let mut m = model(6);
    let mut report = Trainer::new(
        config("gradnorm")
            .epochs(3)
            .lr_schedule(LrSchedule::warmup_cosine(3, 0.1))
            .clip_grad_norm(10.0)
            .diagnostics(DiagnosticsConfig::every(3).with_affinity()),
    )
    .unwrap()
    .fit(&mut m, &split.train, Some(&split.validation))
    .unwrap();
    report.test = Some(evaluate(&m, &split.validation, 64).unwrap());
    report.delta_m = Some(
        DeltaM::from_values(&[
            ("sign".into(), "accuracy".into(), true, 0.9, 0.8),
            ("linear".into(), "mse".into(), false, 0.3, 0.25),
        ])
        .unwrap(),
    );
    report
}

#[test]
fn the_json_schema_round_trips_with_every_section() {
    let _torch = torch_lock();
    let report = full_report();
    let json = report.to_json();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);

    // The sections a reader of the file relies on, by name.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["config"]["method"], "gradnorm");
    assert_eq!(v["config"]["lr_schedule"]["kind"], "warmup");
    assert_eq!(v["tasks"], serde_json::json!(["sign", "linear"]));
    let epoch = &v["epochs"][2];
    assert_eq!(epoch["train_losses"].as_array().unwrap().len(), 2);
    assert_eq!(epoch["task_weights"].as_array().unwrap().len(), 2);
    assert!(epoch["validation"]["metrics"][0][0]["name"].is_string());
    assert!(epoch["seconds"].as_f64().unwrap() > 0.0);
    assert!(epoch["lr"].as_f64().unwrap() > 0.0);
    assert!(epoch["grad_norm"].as_f64().unwrap() > 0.0);
    assert!((v["delta_m"]["delta_m"].as_f64().unwrap() - 3.75).abs() < 1e-12);
    assert_eq!(v["delta_m"]["tasks"][1]["negative_transfer"], true);
    assert_eq!(v["diagnostics"][0]["cosine"].as_array().unwrap().len(), 2);
    assert!(v["diagnostics"][0]["affinity"].is_array());

    // A report written before the newer sections existed still reads.
    let mut old = v.clone();
    for key in ["test", "delta_m", "diagnostics"] {
        old.as_object_mut().unwrap().remove(key);
    }
    for e in old["epochs"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("lr");
        e.as_object_mut().unwrap().remove("grad_norm");
    }
    let old: RunReport = serde_json::from_value(old).unwrap();
    assert!(old.diagnostics.is_empty() && old.delta_m.is_none());
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn plots_are_written_as_png() {
    let _torch = torch_lock();
    let report = full_report();
    let dir = std::env::temp_dir().join(format!("mtl-plots-{}", std::process::id()));
    let written = report.write_plots(&dir).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "losses.png",
            "task_weights.png",
            "conflict.png",
            "affinity.png"
        ]
    );
    for p in &written {
        let bytes = std::fs::read(p).unwrap();
        let (w, h) = png_size(&bytes);
        assert!(w >= 700 && h >= 500, "{p:?}: {w}×{h}");
        // A blank image compresses to almost nothing; curves, text and cells do not.
        assert!(bytes.len() > 8_000, "{p:?} is only {} bytes", bytes.len());
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // No diagnostics: no heatmap, and asking for one is an error.
    let mut plain = report.clone();
    plain.diagnostics.clear();
    let err = mtl::plots::plot_conflict(&plain, std::env::temp_dir().join("never.png"));
    assert!(matches!(err, Err(Error::Config(_))));
}

#[test]
fn a_program_s_own_chart_gets_the_bundled_font() {
    use plotters::prelude::*;
    mtl::plots::register_font();
    let (w, h) = (240u32, 60u32);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        root.draw(&Text::new("test MSE, Δm", (8, 16), ("sans-serif", 24)))
            .unwrap();
        root.present().unwrap();
    }
    let inked = pixels.iter().filter(|&&p| p < 128).count();
    assert!(
        inked > 100,
        "only {inked} dark subpixels: no text was drawn"
    );
}
