//! What crosses between a client and the server, and its bytes on the wire.
//!
//! The two message types hold named model parameters and counts, nothing else, and
//! travel only as bytes: a safetensors document (the checkpoint format of
//! [`mtl::core::Checkpoint`], with its SHA-256 digest) whose JSON state holds the
//! counts. Every byte a client shares is in those documents, so a test can search
//! them for its rows.

use mtl::core::{Checkpoint, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Tensor;

/// The server's broadcast: the global model at the start of a round.
#[derive(Debug)]
pub struct GlobalModel {
    /// The round it opens (0-based).
    pub round: usize,
    /// Every trainable parameter of the global model by var-store name, name-sorted.
    pub parameters: Vec<(String, Tensor)>,
}

/// A client's answer: its locally trained copy of the global model, with the counts
/// the weighted average needs.
#[derive(Debug)]
pub struct ClientUpdate {
    /// The client's index.
    pub client: usize,
    /// The round it answers.
    pub round: usize,
    /// Its number of training rows (FedAvg's `n_c`).
    pub rows: usize,
    /// `labelled[k]`: its training rows labelled for task `k` (task `k`'s own
    /// parameters are averaged with these weights).
    pub labelled: Vec<usize>,
    /// The trained parameters by var-store name.
    pub parameters: Vec<(String, Tensor)>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Header {
    Global {
        round: usize,
    },
    ClientUpdate {
        client: usize,
        round: usize,
        rows: usize,
        labelled: Vec<usize>,
    },
}

fn encode(header: &Header, parameters: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let state = serde_json::to_value(header)
        .map_err(|e| Error::config(format!("federated message header: {e}")))?;
    let mut doc = Checkpoint::new(state);
    doc.extend(
        None,
        parameters
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone())),
    );
    doc.to_bytes()
}

fn decode(bytes: &[u8], what: &str) -> Result<(Header, Vec<(String, Tensor)>)> {
    let doc = Checkpoint::from_bytes(bytes, Path::new(what))?;
    let header = serde_json::from_value(doc.state).map_err(|e| Error::Checkpoint {
        path: what.into(),
        message: format!("not a federated message header: {e}"),
    })?;
    Ok((header, doc.tensors))
}

impl GlobalModel {
    /// The message's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(&Header::Global { round: self.round }, &self.parameters)
    }
    /// Parses bytes written by [`GlobalModel::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match decode(bytes, "federated global model")? {
            (Header::Global { round }, parameters) => Ok(GlobalModel { round, parameters }),
            _ => Err(Error::config(
                "federated message: expected the server's global model, got a client update",
            )),
        }
    }
}

impl ClientUpdate {
    /// The message's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(
            &Header::ClientUpdate {
                client: self.client,
                round: self.round,
                rows: self.rows,
                labelled: self.labelled.clone(),
            },
            &self.parameters,
        )
    }
    /// Parses bytes written by [`ClientUpdate::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match decode(bytes, "federated client update")? {
            (
                Header::ClientUpdate {
                    client,
                    round,
                    rows,
                    labelled,
                },
                parameters,
            ) => Ok(ClientUpdate {
                client,
                round,
                rows,
                labelled,
                parameters,
            }),
            _ => Err(Error::config(
                "federated message: expected a client update, got the server's global model",
            )),
        }
    }
}
