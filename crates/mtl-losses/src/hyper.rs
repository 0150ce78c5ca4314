//! A method's hyper-parameters as a configuration gives them: a JSON object of named
//! values (`{ "c": 0.4 }` for CAGrad, `{ "weights": [1.0, 0.3] }` for static weights),
//! read by the registry's builder of that method with the paper's value as the default.
//!
//! Why strict: a misspelt or misplaced key that is silently ignored trains with the
//! default and looks like a result about the intended value. Every key a method does not
//! read is an error naming the method, the key, the closest key it does read and the
//! full list; a value of the wrong type or size names the key too.

use mtl_core::{Error, Result};
use serde_json::{Map, Value};

/// The hyper-parameters given for one method, read key by key by its builder.
#[derive(Debug)]
pub struct HyperParams {
    method: String,
    given: Map<String, Value>,
    read: Vec<&'static str>,
}

impl HyperParams {
    /// The values `given` for the method called `method`.
    pub fn new(method: &str, given: &Map<String, Value>) -> Self {
        HyperParams {
            method: method.to_string(),
            given: given.clone(),
            read: Vec::new(),
        }
    }

    fn take(&mut self, key: &'static str) -> Option<Value> {
        self.read.push(key);
        self.given.remove(key)
    }

    fn wrong(&self, key: &str, expected: &str, got: &Value) -> Error {
        Error::config(format!(
            "method `{}`: hyper-parameter `{key}` must be {expected}, got {got}",
            self.method
        ))
    }

    /// A real number, `default` when not given.
    pub fn f64(&mut self, key: &'static str, default: f64) -> Result<f64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.wrong(key, "a number", &v)),
        }
    }

    /// A non-negative whole number, `default` when not given.
    pub fn usize(&mut self, key: &'static str, default: usize) -> Result<usize> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| self.wrong(key, "a whole number ≥ 0", &v)),
        }
    }

    /// `true` or `false`, `default` when not given.
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.wrong(key, "true or false", &v)),
        }
    }

    /// One number per task (`num_tasks` of them), `None` when not given.
    pub fn per_task(&mut self, key: &'static str, num_tasks: usize) -> Result<Option<Vec<f64>>> {
        let Some(v) = self.take(key) else {
            return Ok(None);
        };
        let expected = format!("a list of {num_tasks} numbers, one per task");
        let values = v
            .as_array()
            .map(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
            .unwrap_or(None)
            .ok_or_else(|| self.wrong(key, &expected, &v))?;
        if values.len() != num_tasks {
            return Err(self.wrong(key, &expected, &v));
        }
        Ok(Some(values))
    }

    /// Refuses every key the builder did not read.
    pub fn finish(self) -> Result<()> {
        let Some(key) = self.given.keys().next() else {
            return Ok(());
        };
        if self.read.is_empty() {
            return Err(Error::config(format!(
                "method `{}` takes no hyper-parameters, got `{key}`",
                self.method
            )));
        }
        let closest = self
            .read
            .iter()
            .map(|k| (strsim::levenshtein(k, key), *k))
            .min()
            .filter(|(d, _)| *d <= 2.max(key.len() / 3))
            .map(|(_, k)| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        Err(Error::config(format!(
            "method `{}` has no hyper-parameter `{key}`{closest} (it takes: {})",
            self.method,
            self.read.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn given(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_values_and_refusals() {
        let mut p = HyperParams::new("cagrad", &given(json!({ "c": 0.4 })));
        assert_eq!(p.f64("c", 0.5).unwrap(), 0.4);
        assert_eq!(p.usize("n", 3).unwrap(), 3);
        p.finish().unwrap();

        let mut p = HyperParams::new("cagrad", &given(json!({ "cc": 0.4 })));
        p.f64("c", 0.5).unwrap();
        let e = p.finish().unwrap_err().to_string();
        assert!(e.contains("`cc`") && e.contains("did you mean `c`"), "{e}");

        let p = HyperParams::new("ew", &given(json!({ "c": 1 })));
        assert!(p.finish().unwrap_err().to_string().contains("takes no"));

        let mut p = HyperParams::new("static", &given(json!({ "weights": [1, 0.3] })));
        assert_eq!(p.per_task("weights", 2).unwrap(), Some(vec![1.0, 0.3]));
        let mut p = HyperParams::new("static", &given(json!({ "weights": [1] })));
        let e = p.per_task("weights", 2).unwrap_err().to_string();
        assert!(e.contains("a list of 2 numbers"), "{e}");
        let mut p = HyperParams::new("krum", &given(json!({ "n_selected": -1 })));
        assert!(p.usize("n_selected", 1).is_err());
        let mut p = HyperParams::new("pcgrad", &given(json!({ "skip_self": "yes" })));
        assert!(p.bool("skip_self", true).is_err());
    }
}
