//! Clients exchange parameters only: no raw row of any client (its features' bytes or
//! text, its labels) appears in any byte that crosses between parties, and the server
//! refuses a message that carries anything but the global model's parameters.

use mtl::core::{torch_rng_lock, Checkpoint, OptimizerConfig};
use mtl::data::{MultiTaskDataset, TargetData, TaskData};
use mtl::heads::RegressionLoss;
use mtl::ndarray::{Array1, Array2};
use mtl::{HeadSpec, ModelSpec};
use mtl_federated::{
    split_clients, ClientSplit, ClientUpdate, Ditto, FederatedConfig, Federation, GlobalModel,
    Party, Server,
};
use rand::{Rng, SeedableRng};
use tch::Tensor;

fn dataset() -> MultiTaskDataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let n = 96;
    // Features with full-precision mantissas, so a row's bytes cannot turn up by chance.
    let x = Array2::from_shape_fn((n, 5), |_| rng.gen_range(-3.0f32..3.0));
    let class = Array1::from_shape_fn(n, |i| {
        i64::from(x[[i, 0]] > 0.0) + i64::from(x[[i, 1]] > 1.0)
    });
    let value = Array2::from_shape_fn((n, 1), |(i, _)| {
        x[[i, 2]] * 0.7 + rng.gen_range(-0.1f32..0.1)
    });
    MultiTaskDataset::new(
        x,
        vec![
            TaskData::classes("class", class, 3),
            TaskData::regression("value", value),
        ],
    )
    .unwrap()
}

/// Byte patterns that would betray one of `data`'s rows or its labels.
fn secrets(data: &MultiTaskDataset) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for row in data.features().rows() {
        // The row as f32 (how the client holds it), as f64, and each value as text.
        out.push(row.iter().flat_map(|v| v.to_le_bytes()).collect());
        out.push(
            row.iter()
                .flat_map(|v| f64::from(*v).to_le_bytes())
                .collect(),
        );
        out.extend(row.iter().map(|v| v.to_string().into_bytes()));
    }
    for task in data.tasks() {
        // A label is a small number, so the column of a client's labels is the pattern,
        // in the dtypes a batch would carry it (i64 classes, f32 values).
        match &task.data {
            TargetData::Classes { labels, .. } => {
                out.push(labels.iter().flat_map(|v| v.to_le_bytes()).collect());
                out.push(
                    labels
                        .iter()
                        .flat_map(|v| (*v as f32).to_le_bytes())
                        .collect(),
                );
            }
            TargetData::Binary(v) => out.push(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            TargetData::Regression(v) => {
                out.push(v.iter().flat_map(|x| x.to_le_bytes()).collect());
                out.extend(v.iter().map(|x| x.to_le_bytes().to_vec()));
                out.extend(v.iter().map(|x| x.to_string().into_bytes()));
            }
        }
    }
    out
}

fn leaks(bytes: &[u8], secrets: &[Vec<u8>]) -> Option<usize> {
    secrets
        .iter()
        .position(|s| bytes.windows(s.len()).any(|w| w == s.as_slice()))
}

fn spec(data: &MultiTaskDataset) -> ModelSpec {
    let heads = data
        .tasks()
        .iter()
        .map(|t| HeadSpec::for_task(t, RegressionLoss::Mse))
        .collect();
    ModelSpec::hard_sharing(5, &[16], heads)
}

#[test]
fn no_raw_row_of_any_client_crosses_the_wire() {
    let _rng = torch_rng_lock();
    let data = dataset();
    let clients = split_clients(
        &data,
        4,
        ClientSplit::Dirichlet {
            task: 0,
            alpha: 0.5,
        },
        0.25,
        3,
    )
    .unwrap();
    let per_client: Vec<Vec<Vec<u8>>> = clients
        .iter()
        .map(|c| {
            let mut s = secrets(&c.train);
            if !c.test.is_empty() {
                s.extend(secrets(&c.test));
            }
            s
        })
        .collect();
    let config = FederatedConfig::default()
        .rounds(3)
        .client_fraction(0.75)
        .batch_size(8)
        .optimizer(OptimizerConfig::adam(1e-2))
        .proximal_mu(0.01)
        .ditto(Ditto::default())
        .seed(5);
    let mut fed = Federation::new(&spec(&data), clients, config).unwrap();
    let (mut messages, mut to_server, mut to_clients) = (0, 0, 0);
    let mut leaked = Vec::new();
    fed.run_observed(|m| {
        messages += 1;
        match (m.from, m.to) {
            (Party::Client(_), Party::Server) => to_server += 1,
            (Party::Server, Party::Client(_)) => to_clients += 1,
            other => panic!("a message between {other:?}: only client and server talk"),
        }
        // Every client's secrets, not only the sender's: a row must reach neither the
        // server nor, through a broadcast, another client.
        for (c, s) in per_client.iter().enumerate() {
            if let Some(i) = leaks(m.bytes, s) {
                leaked.push(format!(
                    "round {}: client {c}'s secret {i} in {:?} → {:?}",
                    m.round, m.from, m.to
                ));
            }
        }
        // And each message is exactly a parameter message: it parses as one.
        match m.to {
            Party::Server => drop(ClientUpdate::from_bytes(m.bytes).unwrap()),
            Party::Client(_) => drop(GlobalModel::from_bytes(m.bytes).unwrap()),
        }
    })
    .unwrap();
    assert!(leaked.is_empty(), "{leaked:#?}");
    // 3 rounds of 3 sampled clients: 9 updates up, 9 broadcasts plus 12 evaluation copies down.
    assert_eq!((messages, to_server, to_clients), (30, 9, 21));
}

/// The scan above can fail: a message that does carry a row is caught, and the server
/// refuses a message holding anything besides the global model's parameters.
#[test]
fn a_message_smuggling_a_row_is_caught_and_refused() {
    let _rng = torch_rng_lock();
    tch::manual_seed(0);
    let data = dataset();
    let secrets = secrets(&data);
    let mut server = Server::new(&spec(&data)).unwrap();
    let global = GlobalModel::from_bytes(&server.broadcast().unwrap()).unwrap();
    assert_eq!(leaks(&server.broadcast().unwrap(), &secrets), None);

    let row: Vec<f32> = data.features().row(7).to_vec();
    let mut parameters = global.parameters;
    parameters.push(("rows".into(), Tensor::from_slice(&row)));
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    let smuggler = ClientUpdate {
        client: 0,
        round: 0,
        rows: 10,
        labelled: vec![10, 10],
        parameters,
    }
    .to_bytes()
    .unwrap();
    assert!(
        leaks(&smuggler, &secrets).is_some(),
        "the scan missed a row"
    );
    let err = server.aggregate(&[smuggler]).unwrap_err();
    assert!(err.to_string().contains("tensors"), "{err}");

    // A document of another kind (a checkpoint with the data in its state) is refused too.
    let mut doc = Checkpoint::new(serde_json::json!({ "features": row }));
    doc.extend(None, [("w".to_string(), Tensor::from_slice(&[1.0f32]))]);
    assert!(server.aggregate(&[doc.to_bytes().unwrap()]).is_err());
    assert_eq!(server.round(), 0, "a refused round must not advance");
}
