//! Named arrays read from one file (an `.npz` archive, a safetensors file), in file
//! order.

use crate::array::DenseArray;
use mtl_core::{Error, Result};

/// The arrays of one file, by name, in the order the file stores them.
#[derive(Debug, Default)]
pub struct NamedArrays {
    entries: Vec<(String, DenseArray)>,
}

impl NamedArrays {
    /// Adds an array; names must be unique.
    pub(crate) fn push(&mut self, name: String, array: DenseArray) -> Result<()> {
        if self.entries.iter().any(|(n, _)| *n == name) {
            return Err(Error::config(format!("two arrays are named `{name}`")));
        }
        self.entries.push((name, array));
        Ok(())
    }

    /// The number of arrays.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The array called `name`.
    pub fn get(&self, name: &str) -> Result<&DenseArray> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
            .ok_or_else(|| self.unknown(name))
    }

    /// Removes and returns the array called `name` (to move it into a tensor).
    pub fn take(&mut self, name: &str) -> Result<DenseArray> {
        match self.entries.iter().position(|(n, _)| n == name) {
            Some(i) => Ok(self.entries.remove(i).1),
            None => Err(self.unknown(name)),
        }
    }

    /// The arrays, in file order.
    pub fn into_vec(self) -> Vec<(String, DenseArray)> {
        self.entries
    }

    fn unknown(&self, name: &str) -> Error {
        Error::Unknown {
            kind: "array",
            name: name.to_string(),
            known: self.names().join(", "),
        }
    }
}
