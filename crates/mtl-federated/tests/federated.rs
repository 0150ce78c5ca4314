//! Federated training: FedAvg's arithmetic and its equivalence to centralised SGD,
//! splits, sampling, Ditto's anchor, reproducibility and bad input.

use mtl::core::{torch_rng_lock, OptimizerConfig};
use mtl::data::{MultiTaskDataset, TaskData};
use mtl::heads::RegressionLoss;
use mtl::ndarray::{Array1, Array2};
use mtl::{train_step, GradMode, HeadSpec, ModelSpec, MultiTaskModel, StepData};
use mtl_federated::{
    fedavg, sample_clients, split_clients, ClientData, ClientSplit, ClientUpdate, Ditto,
    FederatedConfig, Federation, GlobalModel, Slot,
};
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// `n` rows of 4 features with a 3-class task and a regression task, from `seed`.
fn dataset(n: usize, seed: u64) -> MultiTaskDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, 4), |_| rng.gen_range(-1.0f32..1.0));
    let class = Array1::from_shape_fn(n, |i| {
        let s = x[[i, 0]] + 0.5 * x[[i, 1]];
        if s < -0.3 {
            0
        } else if s < 0.3 {
            1
        } else {
            2
        }
    });
    let value = Array2::from_shape_fn((n, 1), |(i, _)| x[[i, 2]] - x[[i, 3]]);
    MultiTaskDataset::new(
        x,
        vec![
            TaskData::classes("class", class, 3),
            TaskData::regression("value", value),
        ],
    )
    .unwrap()
}

fn spec(data: &MultiTaskDataset) -> ModelSpec {
    let heads = data
        .tasks()
        .iter()
        .map(|t| HeadSpec::for_task(t, RegressionLoss::Mse))
        .collect();
    ModelSpec::hard_sharing(4, &[8], heads)
}

fn max_abs_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            (ta - tb).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

fn global_parameters(fed: &Federation) -> Vec<(String, Tensor)> {
    GlobalModel::from_bytes(&fed.server().broadcast().unwrap())
        .unwrap()
        .parameters
}

/// Every client takes one full-batch plain-SGD step from the same global model, so the
/// row-weighted average of their parameters is θ − η Σ_c (n_c/N) ∇L_c(θ) = θ − η ∇L(θ)
/// on the union of their rows (each task's loss is a mean over rows, all labelled):
/// one round of FedAvg is one centralised SGD step.
#[test]
fn one_round_of_one_full_batch_sgd_step_is_one_centralised_step() {
    let _rng = torch_rng_lock();
    let data = dataset(50, 1);
    let (a, b): (Vec<usize>, Vec<usize>) = (0..50).partition(|&i| i < 18);
    let empty = data.subset(&[]).unwrap();
    let clients = vec![
        ClientData::new("a", data.subset(&a).unwrap(), empty.clone()).unwrap(),
        ClientData::new("b", data.subset(&b).unwrap(), empty).unwrap(),
    ];
    let lr = 0.3;
    let config = FederatedConfig::default()
        .rounds(1)
        .batch_size(64)
        .optimizer(OptimizerConfig::sgd(lr))
        .seed(3);
    let spec = spec(&data);
    let mut fed = Federation::new(&spec, clients, config).unwrap();
    let initial = global_parameters(&fed);
    fed.run().unwrap();
    let federated = global_parameters(&fed);

    let mut central = MultiTaskModel::from_spec(&spec, Device::Cpu).unwrap();
    central.restore(&initial).unwrap();
    let groups = central.param_groups().unwrap();
    let mut method = mtl::losses::by_name("ew", 2, 0).unwrap();
    let mut opt = OptimizerConfig::sgd(lr)
        .build(groups.all_tensors())
        .unwrap();
    let rows: Vec<usize> = (0..50).collect();
    let step = StepData::Joint(data.batch(&rows).unwrap());
    opt.zero_grad();
    train_step(
        &central,
        &groups,
        &mut method,
        GradMode::Parameters,
        &step,
        0,
        0,
    )
    .unwrap();
    opt.step().unwrap();
    let mut centralised = central.snapshot();
    centralised.retain(|(n, _)| federated.iter().any(|(m, _)| m == n));

    let moved = max_abs_diff(&initial, &federated);
    assert!(moved > 1e-3, "the round changed nothing ({moved})");
    let gap = max_abs_diff(&federated, &centralised);
    assert!(gap < 1e-5, "FedAvg vs centralised SGD differ by {gap}");
}

fn update(client: usize, rows: usize, labelled: Vec<usize>, values: [f32; 2]) -> ClientUpdate {
    ClientUpdate {
        client,
        round: 0,
        rows,
        labelled,
        parameters: vec![
            ("task0.head.weight".into(), Tensor::from_slice(&[values[0]])),
            ("trunk.weight".into(), Tensor::from_slice(&[values[1]])),
        ],
    }
}

fn slots() -> Vec<Slot> {
    vec![
        Slot {
            name: "task0.head.weight".into(),
            value: Tensor::from_slice(&[-7.0f32]),
            task: Some(0),
        },
        Slot {
            name: "trunk.weight".into(),
            value: Tensor::from_slice(&[0.0f32]),
            task: None,
        },
    ]
}

#[test]
fn fedavg_weights_shared_parameters_by_rows_and_heads_by_labels() {
    let slots = slots();
    // Shared: (1·1 + 3·5) / 4 = 4. Head: only client 1 labels task 0 (2 labels) → 6.
    let out = fedavg(
        &slots,
        1,
        &[
            update(0, 1, vec![0], [2.0, 1.0]),
            update(1, 3, vec![2], [6.0, 5.0]),
        ],
    )
    .unwrap();
    assert!((out[0].double_value(&[0]) - 6.0).abs() < 1e-6);
    assert!((out[1].double_value(&[0]) - 4.0).abs() < 1e-6);
    // Labels 1 and 3 → head (1·2 + 3·6) / 4 = 5.
    let out = fedavg(
        &slots,
        1,
        &[
            update(0, 1, vec![1], [2.0, 1.0]),
            update(1, 3, vec![3], [6.0, 5.0]),
        ],
    )
    .unwrap();
    assert!((out[0].double_value(&[0]) - 5.0).abs() < 1e-6);
    // No sampled client labels the task: its head keeps the global value.
    let out = fedavg(&slots, 1, &[update(0, 2, vec![0], [2.0, 1.0])]).unwrap();
    assert!((out[0].double_value(&[0]) + 7.0).abs() < 1e-6);
    assert_eq!(out[0].kind(), Kind::Float);
}

#[test]
fn fedavg_refuses_empty_rounds_and_malformed_updates() {
    let slots = slots();
    assert!(fedavg(&slots, 1, &[]).is_err());
    let err = fedavg(&slots, 1, &[update(4, 0, vec![0], [1.0, 1.0])]).unwrap_err();
    assert!(err.to_string().contains("client 4"), "{err}");
    assert!(fedavg(&slots, 1, &[update(0, 2, vec![3], [1.0, 1.0])]).is_err());
    assert!(fedavg(&slots, 2, &[update(0, 2, vec![1], [1.0, 1.0])]).is_err());
    let mut extra = update(0, 2, vec![1], [1.0, 1.0]);
    extra.parameters[1].0 = "rows".into();
    let err = fedavg(&slots, 1, &[extra]).unwrap_err();
    assert!(err.to_string().contains("`rows`"), "{err}");
}

#[test]
fn zero_clients_and_clients_without_rows_are_errors() {
    let _rng = torch_rng_lock();
    let data = dataset(30, 2);
    let spec = spec(&data);
    let err = split_clients(&data, 0, ClientSplit::Iid, 0.2, 0).unwrap_err();
    assert!(err.to_string().contains("zero clients"), "{err}");
    let err = Federation::new(&spec, Vec::new(), FederatedConfig::default()).unwrap_err();
    assert!(err.to_string().contains("zero clients"), "{err}");
    assert!(sample_clients(0, 0.5, 0, 0).is_err());

    let empty = data.subset(&[]).unwrap();
    let err = ClientData::new("idle", empty.clone(), data.clone()).unwrap_err();
    assert!(
        err.to_string().contains("`idle` has no training rows"),
        "{err}"
    );
    // Built field by field, past ClientData::new: the federation still refuses it.
    let sneaky = ClientData {
        name: "sneaky".into(),
        train: empty,
        test: data.clone(),
    };
    let err = Federation::new(&spec, vec![sneaky], FederatedConfig::default()).unwrap_err();
    assert!(err.to_string().contains("no training rows"), "{err}");
    // More clients than rows leaves one empty.
    let err = split_clients(
        &data.subset(&[0, 1, 2]).unwrap(),
        5,
        ClientSplit::Iid,
        0.0,
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("received no rows"), "{err}");
    let bad = FederatedConfig::default().client_fraction(0.0);
    let clients = split_clients(&data, 2, ClientSplit::Iid, 0.2, 0).unwrap();
    assert!(Federation::new(&spec, clients, bad).is_err());
}

#[test]
fn client_sampling_is_seeded_and_reproducible() {
    let a: Vec<Vec<usize>> = (0..20)
        .map(|r| sample_clients(10, 0.3, 5, r).unwrap())
        .collect();
    let b: Vec<Vec<usize>> = (0..20)
        .map(|r| sample_clients(10, 0.3, 5, r).unwrap())
        .collect();
    assert_eq!(a, b);
    for s in &a {
        assert_eq!(s.len(), 3);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s[2] < 10);
    }
    assert!(
        a.iter().any(|s| s != &a[0]),
        "every round drew the same clients"
    );
    let other: Vec<Vec<usize>> = (0..20)
        .map(|r| sample_clients(10, 0.3, 6, r).unwrap())
        .collect();
    assert_ne!(a, other);
    assert_eq!(sample_clients(10, 0.01, 5, 0).unwrap().len(), 1);
    assert_eq!(sample_clients(4, 1.0, 5, 0).unwrap(), [0, 1, 2, 3]);
}

#[test]
fn splits_cover_every_row_once_and_skew_or_mask_as_asked() {
    let data = dataset(120, 4);
    for split in [
        ClientSplit::Iid,
        ClientSplit::Dirichlet {
            task: 0,
            alpha: 0.3,
        },
        ClientSplit::OneTaskPerClient,
    ] {
        let clients = split_clients(&data, 4, split, 0.25, 9).unwrap();
        let again = split_clients(&data, 4, split, 0.25, 9).unwrap();
        let mut rows: Vec<Vec<u32>> = Vec::new();
        for (c, d) in clients.iter().zip(&again) {
            assert_eq!(
                c.train.features(),
                d.train.features(),
                "{split:?} is not seeded"
            );
            for part in [&c.train, &c.test] {
                rows.extend(
                    part.features()
                        .rows()
                        .into_iter()
                        .map(|r| r.iter().map(|v| v.to_bits()).collect()),
                );
            }
        }
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 120, "{split:?} lost or repeated rows");
    }
    // Dirichlet(0.3): the clients' class mixes differ far more than IID shares would.
    let share = |split| -> Vec<f64> {
        split_clients(&data, 4, split, 0.0, 9)
            .unwrap()
            .iter()
            .map(|c| c.train.class_counts(0).unwrap()[0] as f64 / c.train.len() as f64)
            .collect()
    };
    let spread = |v: Vec<f64>| {
        v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min)
    };
    assert!(
        spread(share(ClientSplit::Dirichlet {
            task: 0,
            alpha: 0.3
        })) > 2.0 * spread(share(ClientSplit::Iid))
    );
    // One task per client: client c trains on task c mod 2 only; its held-out rows
    // keep both labels for the report.
    for (c, client) in split_clients(&data, 4, ClientSplit::OneTaskPerClient, 0.25, 9)
        .unwrap()
        .iter()
        .enumerate()
    {
        let labelled: Vec<usize> = client.train.tasks().iter().map(|t| t.labelled()).collect();
        assert_eq!(labelled[c % 2], client.train.len());
        assert_eq!(labelled[1 - c % 2], 0);
        let test = &client.test;
        assert!(test.tasks().iter().all(|t| t.labelled() == test.len()));
    }
    assert!(split_clients(
        &data,
        3,
        ClientSplit::Dirichlet {
            task: 1,
            alpha: 1.0
        },
        0.2,
        0
    )
    .is_err());
    assert!(split_clients(
        &data,
        3,
        ClientSplit::Dirichlet {
            task: 0,
            alpha: 0.0
        },
        0.2,
        0
    )
    .is_err());
}

fn distance(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| (x - y).square().sum(Kind::Double).double_value(&[]))
        .sum::<f64>()
        .sqrt()
}

/// Ditto's λ/2 ‖v − θ̄‖² pulls the personalised model toward the global model it
/// received: after one round from the same start and batches, the stronger the anchor,
/// the closer the personalised weights stay.
#[test]
fn the_ditto_anchor_pulls_personalised_weights_toward_the_global_model() {
    let _rng = torch_rng_lock();
    let data = dataset(80, 5);
    let spec = spec(&data);
    let mut distances = Vec::new();
    for lambda in [0.0, 1.0, 20.0] {
        let clients = split_clients(&data, 2, ClientSplit::Iid, 0.25, 1).unwrap();
        let config = FederatedConfig::default()
            .rounds(1)
            .local_epochs(3)
            .batch_size(8)
            .optimizer(OptimizerConfig::sgd(0.04))
            .ditto(Ditto {
                lambda,
                epochs: None,
            })
            .seed(11);
        let mut fed = Federation::new(&spec, clients, config).unwrap();
        let anchor = global_parameters(&fed);
        let report = fed.run().unwrap();
        assert!(report.clients.iter().all(|c| c.personal.is_some()));
        let personal = fed.clients()[0].personal_parameters().unwrap().unwrap();
        distances.push(distance(&personal, &anchor));
    }
    assert!(
        distances[0] > 0.05,
        "local training did not move: {distances:?}"
    );
    assert!(
        distances[1] < distances[0] && distances[2] < 0.5 * distances[1],
        "{distances:?}"
    );
}

/// Same seed, same run: the report and the final global weights, with clients trained
/// in parallel (no dropout in the model).
#[test]
fn a_federated_run_is_reproducible_from_its_seed() {
    let _rng = torch_rng_lock();
    let data = dataset(90, 6);
    let spec = spec(&data);
    let run = |seed: u64| {
        let clients = split_clients(
            &data,
            3,
            ClientSplit::Dirichlet {
                task: 0,
                alpha: 0.5,
            },
            0.2,
            2,
        )
        .unwrap();
        let config = FederatedConfig::default()
            .rounds(3)
            .client_fraction(0.67)
            .batch_size(8)
            .proximal_mu(0.01)
            .ditto(Ditto::default())
            .seed(seed);
        let mut fed = Federation::new(&spec, clients, config).unwrap();
        let report = fed.run().unwrap();
        (report, global_parameters(&fed))
    };
    let (a, wa) = run(21);
    let (b, wb) = run(21);
    assert_eq!(a, b);
    assert_eq!(max_abs_diff(&wa, &wb), 0.0);
    assert!(a.rounds.iter().all(|r| r.sampled.len() == 2));
    let (c, _) = run(22);
    assert_ne!(a, c);
    let json = a.to_json().unwrap();
    assert!(json.contains("\"test_primary\"") && json.contains("\"personal\""));
}

/// With dropout (draws from libtorch's one generator) a sequential run is reproducible
/// too (the generator is seeded at the start and per (round, client)); dropout acts.
#[test]
fn a_sequential_run_with_dropout_is_reproducible() {
    let _rng = torch_rng_lock();
    let data = dataset(60, 8);
    let mut spec = spec(&data);
    let with_dropout = |spec: &mut ModelSpec, p: f64| {
        if let mtl::ArchSpec::HardSharing { trunk } = &mut spec.architecture {
            trunk.dropout = p;
        }
    };
    let run = |spec: &ModelSpec| {
        let clients = split_clients(&data, 2, ClientSplit::Iid, 0.2, 0).unwrap();
        let config = FederatedConfig::default()
            .rounds(2)
            .batch_size(8)
            .parallel(false)
            .seed(4);
        let mut fed = Federation::new(spec, clients, config).unwrap();
        fed.run().unwrap();
        global_parameters(&fed)
    };
    with_dropout(&mut spec, 0.3);
    let (a, b) = (run(&spec), run(&spec));
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    with_dropout(&mut spec, 0.0);
    assert!(
        max_abs_diff(&a, &run(&spec)) > 1e-4,
        "dropout changed nothing"
    );
}

/// Local steps go through the library's engine, so any registered method runs on the
/// clients: a gradient aggregator, and a weighting with parameters of its own (which
/// stay on the client).
#[test]
fn clients_train_with_any_registered_method() {
    let _rng = torch_rng_lock();
    let data = dataset(60, 9);
    let spec = spec(&data);
    for method in ["pcgrad", "uw", "mgda"] {
        let clients = split_clients(&data, 2, ClientSplit::Iid, 0.2, 0).unwrap();
        let config = FederatedConfig::default()
            .rounds(2)
            .batch_size(8)
            .method(method)
            .seed(1);
        let report = Federation::new(&spec, clients, config)
            .unwrap()
            .run()
            .unwrap();
        let losses: Vec<f64> = report.rounds.iter().map(|r| r.train_loss).collect();
        assert!(
            losses.iter().all(|l| l.is_finite() && *l > 0.0),
            "{method}: {losses:?}"
        );
    }
    let clients = split_clients(&data, 2, ClientSplit::Iid, 0.2, 0).unwrap();
    let err =
        Federation::new(&spec, clients, FederatedConfig::default().method("nope")).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}
