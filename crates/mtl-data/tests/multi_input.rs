//! Heterogeneous tasks: `MultiInputData` and the task schedules.

use mtl_core::Error;
use mtl_data::{
    MultiInputData, MultiTaskDataset, ScheduleConfig, TargetData, TaskData, TaskSampling,
};
use ndarray::{Array1, Array2};

/// Task `name` with `n` rows of width `f`; feature 0 holds the row index, so batches
/// show which rows they hold.
fn task(name: &str, n: usize, f: usize, kind: u8) -> MultiTaskDataset {
    let x = Array2::from_shape_fn((n, f), |(r, c)| if c == 0 { r as f32 } else { 0.5 });
    let t = match kind {
        0 => TaskData::classes(name, Array1::from_shape_fn(n, |i| (i % 3) as i64), 3),
        1 => TaskData::binary(name, Array1::from_shape_fn(n, |i| (i % 2) as f32)),
        _ => TaskData::regression(name, Array2::from_shape_fn((n, 2), |(r, c)| (r + c) as f32)),
    };
    MultiTaskDataset::new(x, vec![t]).unwrap()
}

fn data(sizes: [usize; 3], widths: [usize; 3]) -> MultiInputData {
    MultiInputData::new(vec![
        task("a", sizes[0], widths[0], 0),
        task("b", sizes[1], widths[1], 1),
        task("c", sizes[2], widths[2], 2),
    ])
    .unwrap()
}

fn frequencies(d: &MultiInputData, sampling: TaskSampling, steps: usize) -> Vec<f64> {
    let mut s = d
        .schedule(ScheduleConfig::new(sampling, 4).seed(11))
        .unwrap();
    let mut counts = vec![0usize; d.num_tasks()];
    for step in s.by_ref().take(steps) {
        for (t, _) in step.unwrap() {
            counts[t] += 1;
        }
    }
    counts.iter().map(|&c| c as f64 / steps as f64).collect()
}

#[test]
fn construction_is_validated() {
    assert!(matches!(
        MultiInputData::new(vec![]),
        Err(Error::TaskCount { .. })
    ));
    assert!(matches!(
        MultiInputData::new(vec![task("a", 3, 2, 0), task("a", 4, 2, 1)]),
        Err(Error::Config(_))
    ));
    let two = MultiTaskDataset::new(
        Array2::zeros((2, 1)),
        vec![
            TaskData::binary("x", Array1::zeros(2)),
            TaskData::binary("y", Array1::zeros(2)),
        ],
    )
    .unwrap();
    assert!(matches!(
        MultiInputData::new(vec![two]),
        Err(Error::TaskCount {
            expected: 1,
            got: 2,
            ..
        })
    ));
    let d = data([5, 7, 9], [2, 3, 4]);
    assert_eq!(d.task_names(), ["a", "b", "c"]);
    assert_eq!(d.output_dims().unwrap(), [3, 1, 2]);
    assert!(d.dataset(3).is_err());
}

#[test]
fn from_dataset_keeps_each_tasks_labelled_rows() {
    let ds = MultiTaskDataset::new(
        Array2::from_shape_fn((6, 1), |(r, _)| r as f32),
        vec![
            TaskData::classes("p", Array1::from(vec![0, 1, 0, 1, 0, 1]), 2)
                .with_mask(Array1::from(vec![true, true, false, false, true, false])),
            TaskData::binary("q", Array1::from(vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]))
                .with_mask(Array1::from(vec![false, false, true, true, false, true])),
        ],
    )
    .unwrap();
    let d = MultiInputData::from_dataset(&ds).unwrap();
    assert_eq!(d.sizes(), [3, 3]);
    let x: Vec<f32> = d.dataset(1).unwrap().features().column(0).to_vec();
    assert_eq!(x, [2.0, 3.0, 5.0]);
}

#[test]
fn to_masked_labels_each_task_on_its_own_rows() {
    let d = data([2, 3, 1], [2, 2, 2]);
    let m = d.to_masked().unwrap();
    assert_eq!((m.len(), m.num_tasks()), (6, 3));
    assert_eq!(m.tasks()[0].labelled(), 2);
    assert_eq!(
        m.tasks()[1].mask.as_ref().unwrap().to_vec(),
        [false, false, true, true, true, false]
    );
    match &m.tasks()[2].data {
        TargetData::Regression(v) => assert_eq!(v.row(5).to_vec(), [0.0, 1.0]),
        other => panic!("{other:?}"),
    }
    assert!(data([2, 3, 1], [2, 3, 2]).to_masked().is_err());
}

#[test]
fn all_round_robin_and_batches_hold_own_rows() {
    let d = data([10, 6, 3], [2, 3, 4]);
    let mut all = d
        .schedule(ScheduleConfig::new(TaskSampling::All, 4))
        .unwrap();
    let step = all.next_step().unwrap();
    assert_eq!(step.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0, 1, 2]);
    for (t, b) in &step {
        assert_eq!(b.x.size()[1], [2, 3, 4][*t]);
        assert_eq!(b.targets.len(), 1);
        assert_eq!(b.len(), [4, 4, 3][*t]);
        let first: Vec<f32> = Vec::try_from(b.x.select(1, 0)).unwrap();
        assert_eq!(first, b.rows.iter().map(|&r| r as f32).collect::<Vec<_>>());
    }
    let mut rr = d
        .schedule(ScheduleConfig::new(TaskSampling::RoundRobin, 4).tasks_per_step(2))
        .unwrap();
    let order: Vec<Vec<usize>> = (0..3)
        .map(|_| {
            rr.next_step()
                .unwrap()
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        })
        .collect();
    assert_eq!(order, [vec![0, 1], vec![0, 2], vec![1, 2]]);
}

#[test]
fn every_row_is_visited_once_per_pass() {
    let d = data([10, 6, 3], [2, 2, 2]);
    let mut s = d
        .schedule(ScheduleConfig::new(TaskSampling::All, 4).seed(5))
        .unwrap();
    // Task 0 has batches of 4, 4, 2 per pass.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let step = s.next_step().unwrap();
        seen.extend(step[0].1.rows.iter().copied());
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    assert_eq!(s.task_epochs(), [1, 1, 3]);
    assert_eq!(s.steps_per_epoch(), (3 + 2 + 1u64).div_ceil(3));
}

#[test]
fn sampling_frequencies_follow_the_probabilities() {
    let d = data([800, 150, 50], [2, 2, 2]);
    let steps = 4000;
    let prop = frequencies(&d, TaskSampling::Proportional, steps);
    for (f, p) in prop.iter().zip([0.8, 0.15, 0.05]) {
        assert!((f - p).abs() < 0.03, "{prop:?}");
    }
    // T = 2: p ∝ √n.
    let root: Vec<f64> = [800f64, 150.0, 50.0].iter().map(|n| n.sqrt()).collect();
    let total: f64 = root.iter().sum();
    let temp = frequencies(&d, TaskSampling::Temperature(2.0), steps);
    for (f, r) in temp.iter().zip(&root) {
        assert!((f - r / total).abs() < 0.03, "{temp:?}");
    }
    let hot = frequencies(&d, TaskSampling::Temperature(1e6), steps);
    assert!(hot.iter().all(|f| (f - 1.0 / 3.0).abs() < 0.03), "{hot:?}");
}

#[test]
fn annealing_moves_from_proportional_to_flat() {
    let d = data([900, 90, 10], [2, 2, 2]);
    let sampling = TaskSampling::Annealed {
        start: 1.0,
        end: 1e9,
        steps: 100,
    };
    let mut s = d.schedule(ScheduleConfig::new(sampling, 2)).unwrap();
    let p0 = s.probabilities();
    assert!((p0[0] - 0.9).abs() < 1e-12);
    s.by_ref().take(50).for_each(drop);
    let mid = s.probabilities();
    // Exponent ½ half-way: p ∝ √n.
    let root: f64 = [900f64, 90.0, 10.0].iter().map(|n| n.sqrt()).sum();
    assert!((mid[0] - 30.0 / root).abs() < 1e-6, "{mid:?}");
    s.by_ref().take(100).for_each(drop);
    assert!(s
        .probabilities()
        .iter()
        .all(|p| (p - 1.0 / 3.0).abs() < 1e-6));
}

#[test]
fn schedules_are_seeded() {
    let d = data([50, 30, 20], [2, 2, 2]);
    let run = |seed| {
        let mut s = d
            .schedule(ScheduleConfig::new(TaskSampling::Temperature(3.0), 5).seed(seed))
            .unwrap();
        (0..20)
            .flat_map(|_| s.next_step().unwrap())
            .map(|(t, b)| (t, b.rows))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn merged_steps_mask_other_tasks() {
    let d = data([10, 6, 3], [2, 2, 2]);
    let mut s = d
        .schedule(ScheduleConfig::new(TaskSampling::All, 4))
        .unwrap();
    let b = s.next_merged().unwrap();
    assert_eq!(b.x.size(), [11, 2]);
    assert_eq!(b.targets.len(), 3);
    let labelled: Vec<i64> = b.targets.iter().map(|t| t.labelled()).collect();
    assert_eq!(labelled, [4, 4, 3]);
    let mask_c: Vec<bool> = Vec::try_from(b.targets[2].mask.as_ref().unwrap()).unwrap();
    assert_eq!(mask_c, [[false; 8].as_slice(), &[true; 3]].concat());
    assert_eq!(b.targets[0].values.kind(), tch::Kind::Int64);
    assert_eq!(b.targets[2].values.size(), [11, 2]);
    let wide = data([10, 6, 3], [2, 3, 2]);
    let mut s = wide
        .schedule(ScheduleConfig::new(TaskSampling::All, 4))
        .unwrap();
    assert!(matches!(s.next_merged(), Err(Error::Shape { .. })));
}

#[test]
fn bad_configurations_are_rejected() {
    let d = data([10, 6, 3], [2, 2, 2]);
    let bad = [
        ScheduleConfig::new(TaskSampling::Proportional, 0),
        ScheduleConfig::new(TaskSampling::Proportional, 4).tasks_per_step(4),
        ScheduleConfig::new(TaskSampling::RoundRobin, 4).tasks_per_step(0),
        ScheduleConfig::new(TaskSampling::Temperature(0.0), 4),
        ScheduleConfig::new(TaskSampling::Temperature(f64::NAN), 4),
        ScheduleConfig::new(
            TaskSampling::Annealed {
                start: 1.0,
                end: -1.0,
                steps: 5,
            },
            4,
        ),
    ];
    for config in bad {
        assert!(d.schedule(config.clone()).is_err(), "{config:?}");
    }
    let empty = MultiInputData::new(vec![task("a", 3, 2, 0), task("b", 0, 2, 1)]).unwrap();
    assert!(empty
        .schedule(ScheduleConfig::new(TaskSampling::All, 2))
        .is_err());
}

#[test]
fn split_is_per_task() {
    let d = data([20, 10, 10], [2, 2, 2]);
    let s = d.split(0.2, 0.1, 3).unwrap();
    assert_eq!(s.train.sizes(), [14, 7, 7]);
    assert_eq!(s.validation.sizes(), [4, 2, 2]);
    assert_eq!(s.test.sizes(), [2, 1, 1]);
}

#[test]
fn skipping_steps_reaches_the_same_position_as_taking_them() {
    let d = data([37, 11, 23], [3, 2, 4]);
    for sampling in [
        TaskSampling::All,
        TaskSampling::RoundRobin,
        TaskSampling::Temperature(2.0),
        TaskSampling::Annealed {
            start: 1.0,
            end: 4.0,
            steps: 30,
        },
    ] {
        let config = ScheduleConfig::new(sampling, 5).tasks_per_step(2).seed(3);
        let mut taken = d.schedule(config.clone()).unwrap();
        let mut skipped = d.schedule(config).unwrap();
        for _ in 0..41 {
            taken.next_step().unwrap();
        }
        skipped.skip_steps(41);
        assert_eq!(skipped.step(), taken.step());
        assert_eq!(skipped.task_epochs(), taken.task_epochs());
        for _ in 0..25 {
            let (a, b) = (taken.next_step().unwrap(), skipped.next_step().unwrap());
            let rows = |s: &[(usize, mtl_data::Batch)]| -> Vec<(usize, Vec<usize>)> {
                s.iter().map(|(t, b)| (*t, b.rows.clone())).collect()
            };
            assert_eq!(rows(&a), rows(&b), "{sampling:?}");
        }
    }
}
