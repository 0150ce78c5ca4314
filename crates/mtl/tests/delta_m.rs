//! Δm against single-task baselines: a hand-computed example, the evaluation path, and
//! baselines trained by the Trainer itself.

mod common;

use common::{config, model_for, synthetic, torch_lock};
use mtl::heads::MetricValue;
use mtl::prelude::*;
use mtl::Evaluation;

fn eval(tasks: &[(&str, &str, f64, bool)]) -> Evaluation {
    Evaluation {
        tasks: tasks.iter().map(|t| t.0.to_string()).collect(),
        losses: vec![0.0; tasks.len()],
        metrics: tasks
            .iter()
            .map(|(_, m, v, h)| {
                vec![MetricValue {
                    name: m.to_string(),
                    value: *v,
                    higher_is_better: *h,
                }]
            })
            .collect(),
    }
}

#[test]
fn delta_m_matches_a_hand_computed_example() {
    // Task A, accuracy (higher is better): 0.9 against 0.8 → −(0.9 − 0.8)/0.8 = −12.5 %.
    // Task B, MSE (lower is better): 0.3 against 0.25 → +(0.3 − 0.25)/0.25 = +20 %.
    // Δm = (−12.5 + 20)/2 = 3.75 %: worse on average, B shows negative transfer.
    let model = eval(&[("a", "accuracy", 0.9, true), ("b", "mse", 0.3, false)]);
    let baselines = [
        eval(&[("a", "accuracy", 0.8, true)]),
        eval(&[("b", "mse", 0.25, false)]),
    ];
    let d = DeltaM::compute(&model, &baselines).unwrap();
    assert!((d.tasks[0].relative_change + 12.5).abs() < 1e-12);
    assert!((d.tasks[1].relative_change - 20.0).abs() < 1e-12);
    assert!((d.delta_m - 3.75).abs() < 1e-12, "{}", d.delta_m);
    assert_eq!(d.negative_transfer(), ["b"]);

    // A zero baseline or a missing baseline task is an error, not a division by zero.
    let zero = [
        eval(&[("a", "accuracy", 0.0, true)]),
        eval(&[("b", "mse", 0.25, false)]),
    ];
    assert!(DeltaM::compute(&model, &zero).is_err());
    assert!(DeltaM::compute(&model, &baselines[..1]).is_err());
    let swapped = [baselines[1].clone(), baselines[0].clone()];
    assert!(DeltaM::compute(&model, &swapped).is_err());
}

#[test]
fn the_trainer_trains_baselines_and_reports_delta_m() {
    let _torch = torch_lock();
    let data = synthetic(240, 21);
    let split = data.split(0.2, 0.2, 3).unwrap();
    let trainer = Trainer::new(config("ew").epochs(8)).unwrap();
    let baselines = trainer
        .fit_baselines(
            |k, _| Ok(model_for(5, &[k])),
            &split.train,
            Some(&split.validation),
            &split.test,
        )
        .unwrap();
    assert_eq!(baselines.reports.len(), 2);
    assert_eq!(baselines.test[0].tasks, ["sign"]);
    assert_eq!(baselines.test[1].tasks, ["linear"]);
    assert_eq!(baselines.reports[1].epochs.len(), 8);

    let mut m = model_for(5, &[0, 1]);
    let mut report = Trainer::new(config("ew").epochs(8))
        .unwrap()
        .fit(&mut m, &split.train, Some(&split.validation))
        .unwrap();
    let test = evaluate(&m, &split.test, 64).unwrap();
    let d = report
        .compare_to_baselines(test.clone(), &baselines)
        .unwrap()
        .clone();
    let by_hand: f64 = (0..2)
        .map(|k| {
            let metric = &test.metrics[k][0];
            let base = baselines.test[k].metrics[0][0].value;
            let sign = if metric.higher_is_better { -1.0 } else { 1.0 };
            sign * (metric.value - base) / base * 100.0
        })
        .sum::<f64>()
        / 2.0;
    assert!((d.delta_m - by_hand).abs() < 1e-9);
    assert_eq!(report.test.as_ref(), Some(&test));
    let back: RunReport = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back.delta_m, report.delta_m);
}
